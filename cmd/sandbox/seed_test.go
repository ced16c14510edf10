package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/machineflow/machineflow/internal/harness/runner/manifest"
)

// The examples rely on these classes and networks, and the worker of
// `make run` on the Vitistack; the API server checks the schema when the
// sandbox applies them (the smoke test in test/sandbox).
func TestSeedHasTheExamplesClassesAndNetworks(t *testing.T) {
	objs, err := manifest.Decode(bytes.NewReader(seedYAML), "seed.yaml")
	require.NoError(t, err)

	classes := map[string]v1alpha1.MachineClass{}
	var networks, vitistacks []string
	defaults := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "MachineClass":
			var c v1alpha1.MachineClass
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &c), o.Source)
			classes[c.Name] = c
			if c.Spec.Default {
				defaults++
			}
		case "NetworkNamespace":
			networks = append(networks, o.GetNamespace()+"/"+o.GetName())
		case "Vitistack":
			var v v1alpha1.Vitistack
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v), o.Source)
			vitistacks = append(vitistacks, v.Name)
			assert.NotEmpty(t, v.Spec.Region, "Vitistack %s has the region a registered MachineProvider gets", v.Name)
			assert.Empty(t, v.Spec.MachineProviders, "Vitistack %s lists no provider, so the worker registers its own", v.Name)
		default:
			t.Errorf("%s: unexpected kind %s", o.Source, o.GetKind())
		}
	}
	for _, name := range []string{"small", "medium", "large"} {
		c, ok := classes[name]
		if assert.True(t, ok, "MachineClass %s", name) {
			assert.True(t, c.Spec.Enabled, "MachineClass %s is enabled", name)
			assert.False(t, c.Spec.Memory.Quantity.IsZero(), "MachineClass %s has memory", name)
			assert.NotZero(t, c.Spec.CPU.Cores, "MachineClass %s has cores", name)
		}
	}
	assert.Equal(t, 1, defaults, "exactly one default MachineClass")
	assert.Equal(t, []string{"default/default", "default/vlan-100"}, networks)
	assert.Equal(t, []string{"sandbox"}, vitistacks, "the VITISTACK_NAME that cmd/run gives the worker")
}
