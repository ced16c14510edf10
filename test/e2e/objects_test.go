package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/names"
)

// namespace creates a supervisor namespace for one test: tests do not see
// each other's Machines.
func (st *suite) namespace(t *testing.T, name string) string {
	t.Helper()
	require.NoError(t, st.Namespace(t.Context(), name))
	return name
}

// machine creates a Machine of the stack's class with a 5 GB boot disk;
// config, when set, is its placement annotation.
func (st *suite) machine(t *testing.T, ns, name, config string, annotations map[string]string) {
	t.Helper()
	m := stack.NewMachine(ns, name)
	for k, v := range annotations {
		m.Annotations[k] = v
	}
	if config != "" {
		m.Annotations[names.PlacementAnnotation] = config
	}
	require.NoError(t, st.Env.Supervisor.Client.Create(t.Context(), m))
}

func (st *suite) getMachine(t *testing.T, ns, name string) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, st.Env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, m))
	return m
}

// remains lists what is left of a Machine on every KubeVirt cluster.
func (st *suite) remains(t *testing.T, ns, name string) []string {
	t.Helper()
	left, err := st.Leftovers(t.Context(), ns, name)
	require.NoError(t, err)
	return left
}

// vm returns the Machine's VM on the named cluster, or nil.
func (st *suite) vm(t *testing.T, config, ns, name string) *kubevirtv1.VirtualMachine {
	t.Helper()
	cl := st.Env.Cluster(config)
	require.NotNil(t, cl, "cluster %s", config)
	vm := &kubevirtv1.VirtualMachine{}
	err := cl.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vm)
	if err != nil {
		require.True(t, client.IgnoreNotFound(err) == nil, "get VM %s/%s on %s: %v", ns, name, config, err)
		return nil
	}
	return vm
}
