package vmplan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/names"
)

// credentialedISO is an image URL of the kind that must stay out of history:
// a password and a signed query.
const credentialedISO = "https://user:s3cret@img.example/os.iso?X-Amz-Signature=abc123"

func isoMachine(imageID string) *v1alpha1.Machine {
	m := testMachine()
	m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume}
	m.Spec.OS.ImageID = imageID
	return m
}

func TestBootPlanKeepsTheImageURLOutOfItsJSON(t *testing.T) {
	plan, err := Plan(isoMachine(credentialedISO), nil, nil)
	require.NoError(t, err)
	require.Equal(t, contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}, plan.Boot)
	raw, err := json.Marshal(plan)
	require.NoError(t, err)
	for _, part := range []string{"img.example", "s3cret", "abc123"} {
		require.NotContains(t, string(raw), part)
	}
}

func TestBootImage(t *testing.T) {
	isoPlan := contract.BootPlan{HasImage: true, ISO: true, ISOSourceType: "http"}
	t.Run("the Machine's URL when it still boots as planned", func(t *testing.T) {
		url, err := BootImage(isoMachine(credentialedISO), isoPlan)
		require.NoError(t, err)
		require.Equal(t, credentialedISO, url)

		url, err = BootImage(testMachine(), contract.BootPlan{})
		require.NoError(t, err)
		require.Empty(t, url, "PXE boot has no image")
	})
	t.Run("another URL booting the same way is used", func(t *testing.T) {
		url, err := BootImage(isoMachine("http://mirror.example/os-2.iso"), isoPlan)
		require.NoError(t, err)
		require.Equal(t, "http://mirror.example/os-2.iso", url)
	})
	for _, tc := range []struct {
		name    string
		machine *v1alpha1.Machine
		plan    contract.BootPlan
		message string
	}{
		{"imageID removed from an ISO Machine", isoMachine(""), isoPlan,
			"spec.os.imageID: changed since LoadMachine: the Machine now boots from its disks and PXE (no image), the plan from an ISO (http source)"},
		{"imageID added to a PXE Machine", isoMachine(credentialedISO), contract.BootPlan{},
			"spec.os.imageID: changed since LoadMachine: the Machine now boots from an ISO (http source), the plan from its disks and PXE (no image)"},
		{"boot-source annotation removed", func() *v1alpha1.Machine {
			m := isoMachine(credentialedISO)
			m.Annotations = nil
			return m
		}(), isoPlan,
			"metadata.annotations[kubevirt.io/boot-source]: changed since LoadMachine: the Machine now boots from an image without ISO boot, the plan from an ISO (http source)"},
		{"boot-source type changed", func() *v1alpha1.Machine {
			m := isoMachine("docker://quay.io/os:1")
			m.Annotations[names.BootSourceTypeAnnotation] = "registry"
			return m
		}(), isoPlan,
			"metadata.annotations[kubevirt.io/boot-source-type]: changed since LoadMachine: the Machine now boots from an ISO (registry source), the plan from an ISO (http source)"},
		{"ISO URL no longer valid, quoted without its password", isoMachine("ftp://user:s3cret@img.example/os.iso"), isoPlan,
			`spec.os.imageID: "ftp://user:xxxxx@img.example/os.iso" is not an http(s) URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, err := BootImage(tc.machine, tc.plan)
			require.Empty(t, url)
			specErr := requireSpecError(t, err)
			require.Equal(t, "Machine ns1/vm1: "+tc.message, specErr.Message)
			require.NotContains(t, specErr.Error(), "s3cret")
		})
	}
}

func TestISOSizeFor(t *testing.T) {
	const gi = 1 << 30
	for bytes, want := range map[int64]string{
		1:            "1Gi",
		900 << 20:    "1Gi",
		gi:           "2Gi", // 1.1 Gi rounds up
		3 * gi:       "4Gi",
		5*gi + 1<<20: "6Gi",
		10 * gi:      "11Gi",
	} {
		require.Equal(t, want, ptr.To(ISOSize(bytes)).String(), "%d bytes", bytes)
	}
}
