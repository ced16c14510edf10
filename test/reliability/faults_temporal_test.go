package reliability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// The Temporal dev server restarted on its database file in the middle of
// a batch: the open workflows go on where they were, the worker and the
// controller reconnect by themselves, every Machine runs once and is
// deleted cleanly.
func TestTemporalRestartDuringBatch(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	b := newBatch(t, st, "rel-temporal", "vm", 12)
	start := time.Now()
	// Boots slow enough that the restart finds most runs open.
	b.create(t, st, map[string]string{kubevirtsim.BootDelayAnnotation: "4s"})
	b.midway(t, st, 3, 2)
	require.NoError(t, st.RestartTemporal(ctx, 5*time.Second))
	t.Logf("Temporal restarted %s into the batch", time.Since(start).Round(100*time.Millisecond))

	b.waitRunning(t, st)
	t.Logf("%d Machines Running %s after the batch began", len(b.names), time.Since(start).Round(100*time.Millisecond))
	b.assertOneVMEach(t, st)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
	b.deleteAll(t, st)
	b.assertClean(t, st)
	b.assertOneRunEach(t, st, workflows.DeprovisionMachineName, workflows.DeprovisionWorkflowID)
	assertNoOpenWorkflows(t, st, b.ns)
	require.True(t, st.Workers[0].Running() && st.Controller.Running(), "the worker and the controller lived through the restart")
}
