package kubevirtadmission_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// KubeVirt's admission reads its configuration from the KubeVirt CR, as
// in a real install: feature gates are off until the CR turns one on, and
// a change applies without restarting anything.
func TestFeatureGatesComeFromTheKubeVirtCR(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1})
	ctx := t.Context()
	c := env.Clusters[0].Client

	// An empty CD-ROM needs the DeclarativeHotplugVolumes gate.
	vm := kubevirtadmission.MinimalVM("default", "empty-cdrom")
	vm.Spec.Template.Spec.Domain.Devices.Disks = []kubevirtv1.Disk{{Name: "cdrom", DiskDevice: kubevirtv1.DiskDevice{CDRom: &kubevirtv1.CDRomTarget{Bus: kubevirtv1.DiskBusSATA}}}}
	err := c.Create(ctx, vm.DeepCopy(), client.DryRunAll)
	require.ErrorContains(t, err, "DeclarativeHotplugVolumes feature gate not enabled")

	kv := &kubevirtv1.KubeVirt{}
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: kubevirtadmission.Namespace, Name: "kubevirt"}, kv), "a default install's KubeVirt CR")
	assert.Empty(t, kv.Spec.Configuration.DeveloperConfiguration.FeatureGates, "no feature gates by default")
	gate := []byte(`{"spec":{"configuration":{"developerConfiguration":{"featureGates":["DeclarativeHotplugVolumes"]}}}}`)
	require.NoError(t, c.Patch(ctx, kv, client.RawPatch(types.MergePatchType, gate)))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.NoError(ct, c.Create(ctx, vm.DeepCopy(), client.DryRunAll))
	}, 30*time.Second, 200*time.Millisecond, "the gate applies once the CR has it")

	require.NoError(t, kubevirtadmission.Probe(ctx, c), "the rest of KubeVirt's validation still applies")
}
