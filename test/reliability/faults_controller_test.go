package reliability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// The controller killed in the middle of a mass create and again in the
// middle of a mass delete, and started again: one provision and one
// deprovision run per Machine, no more (the workflow IDs and the memo of
// the last run are the controller's memory), and every finalizer
// released.
func TestControllerRestartDuringMassCreateAndDelete(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	const n = 30
	b := newBatch(t, st, "rel-controller", "vm", n)
	first, second := b.names[:n/2], b.names[n/2:]
	annotations := map[string]string{kubevirtsim.BootDelayAnnotation: "2s"}
	kill := func(what string) {
		t.Helper()
		require.NoError(t, st.Controller.Kill())
		t.Logf("controller killed during %s", what)
	}

	start := time.Now()
	b.create(t, st, annotations, first...)
	waitRuns(t, st, b.ns, workflows.ProvisionMachineName, 1)
	kill("mass create")
	b.create(t, st, annotations, second...)
	require.NoError(t, st.Controller.Start(ctx))
	b.waitRunning(t, st)
	t.Logf("%d Machines Running %s after the first was created", n, time.Since(start).Round(100*time.Millisecond))
	b.assertOneVMEach(t, st)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)

	start = time.Now()
	b.startDelete(t, st, first...)
	waitRuns(t, st, b.ns, workflows.DeprovisionMachineName, 1)
	kill("mass delete")
	b.startDelete(t, st, second...)
	require.NoError(t, st.Controller.Start(ctx))
	b.waitGone(t, st)
	t.Logf("%d Machines deleted %s after the first delete", n, time.Since(start).Round(100*time.Millisecond))
	b.assertClean(t, st)
	b.assertOneRunEach(t, st, workflows.DeprovisionMachineName, workflows.DeprovisionWorkflowID)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
	assertNoOpenWorkflows(t, st, b.ns)
}
