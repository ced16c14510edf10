// Package simulated runs internal/sim/kubevirtsim on the KubeVirt clusters of an
// internal/harness/testenv Env: the two are always used together, but neither can
// import the other (kubevirtsim's own tests run on testenv).
package simulated

import (
	"context"
	"testing"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
)

// Targets returns env's KubeVirt clusters, in order, as simulator targets.
func Targets(env *testenv.Env) []kubevirtsim.Target {
	targets := make([]kubevirtsim.Target, len(env.Clusters))
	for i, c := range env.Clusters {
		targets[i] = kubevirtsim.Target{Name: c.Name, Client: c.VirtController}
	}
	return targets
}

// Start runs a simulator on each of env's clusters until the test ends, and
// fails the test if one of them failed. opts.AddressPool is the first
// cluster's pool; see kubevirtsim.NewFleet.
func Start(t testing.TB, env *testenv.Env, opts kubevirtsim.Options) *kubevirtsim.Fleet {
	t.Helper()
	fleet, err := kubevirtsim.NewFleet(Targets(env), opts)
	if err != nil {
		t.Fatalf("simulators: %v", err)
	}
	// Not t.Context(): it ends before cleanups, and the simulators must
	// outlive the test's own cleanups that delete VMs.
	stop := fleet.Start(context.Background())
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("simulators: %v", err)
		}
	})
	return fleet
}
