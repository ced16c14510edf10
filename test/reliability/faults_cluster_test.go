package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// clusterDowntime is how long the KubeVirt cluster stays down.
const clusterDowntime = 30 * time.Second

// A KubeVirt cluster (API server and etcd) down for 30 s in the middle of
// provisioning and started again on the same data: the workflows on it
// wait and then complete, those on the other cluster are not held up,
// Machines created meanwhile wait too, and ClusterHealthCheck reports the
// cluster unhealthy while it is down and healthy after, in its result and
// on the KubevirtConfig. The cluster keeps its address and credentials, as
// a real one does across a restart, and its simulator carries on.
func TestClusterDownDuringProvisioning(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	down, up := st.Env.Cluster(testenv.ClusterName(1)), st.Env.Cluster(testenv.ClusterName(2))
	b := newBatch(t, st, "rel-cluster-down", "vm", 12)
	b.create(t, st, map[string]string{kubevirtsim.BootDelayAnnotation: "4s"})
	b.midway(t, st, 4, 2)

	stopped := time.Now()
	require.NoError(t, down.Stop())
	restarted := false
	t.Cleanup(func() {
		// A failed test must not leave the suite without the cluster.
		if !restarted {
			assert.NoError(t, down.Start(context.Background()))
		}
	})
	late := b.add("late", 4, func(int) string { return down.Name })
	b.create(t, st, nil, late...)

	report := healthCheck(t, st)
	assertHealth(t, st, report, map[string]bool{down.Name: false, up.Name: true})
	ms, err := b.machines(ctx, st)
	require.NoError(t, err)
	t.Logf("with %s down: %s", down.Name, phases(ms))
	for name, m := range ms {
		assert.NotEqual(t, v1alpha1.MachinePhaseFailed, m.Status.Phase, "%s failed while its cluster was down: %s", name, deref(m.Status.FailureMessage))
	}

	time.Sleep(time.Until(stopped.Add(clusterDowntime)))
	require.NoError(t, down.Start(ctx))
	restarted = true
	t.Logf("%s down for %s", down.Name, time.Since(stopped).Round(100*time.Millisecond))
	b.waitRunning(t, st)
	t.Logf("%d Machines Running %s after the cluster came back", len(b.names), time.Since(stopped.Add(clusterDowntime)).Round(100*time.Millisecond))
	assertHealth(t, st, healthCheck(t, st), map[string]bool{down.Name: true, up.Name: true})

	b.assertOneVMEach(t, st)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
	b.deleteAll(t, st)
	b.assertClean(t, st)
	assertNoOpenWorkflows(t, st, b.ns)
}

// healthCheck runs ClusterHealthCheck now, as the Schedule would, and
// returns its report.
func healthCheck(t *testing.T, st *stack.Stack) workflows.HealthReport {
	t.Helper()
	run, err := workflows.Starter{Client: st.Temporal()}.StartHealthCheck(t.Context())
	require.NoError(t, err)
	var report workflows.HealthReport
	require.NoError(t, run.Get(t.Context(), &report), "ClusterHealthCheck %s", run.GetRunID())
	return report
}

// assertHealth checks the report and the KubevirtConfigs' status for the
// given clusters (others may exist).
func assertHealth(t *testing.T, st *stack.Stack, report workflows.HealthReport, want map[string]bool) {
	t.Helper()
	got := map[string]contract.ClusterHealth{}
	for _, c := range report.Clusters {
		got[c.KubevirtConfig] = c
	}
	for name, healthy := range want {
		h, ok := got[name]
		require.True(t, ok, "the report covers %s", name)
		assert.Equal(t, healthy, h.Healthy, "%s in the report: %s", name, h.Reason)
		if !healthy {
			assert.NotEmpty(t, h.Reason, "an unhealthy cluster comes with its reason")
		}
		kvc := &v1alpha1.KubevirtConfig{}
		require.NoError(t, st.Env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Name: name}, kvc))
		wantPhase, wantStatus := "Ready", "Healthy"
		if !healthy {
			wantPhase, wantStatus = "NotReady", "Unhealthy"
		}
		assert.Equal(t, wantPhase, kvc.Status.Phase, "KubevirtConfig %s status: %s", name, kvc.Status.Message)
		assert.Equal(t, wantStatus, kvc.Status.Status, "KubevirtConfig %s status", name)
	}
}
