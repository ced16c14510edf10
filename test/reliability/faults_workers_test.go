package reliability

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// Two workers on the task queue and one of them killed with SIGKILL in
// the middle of a batch of 50 provisions: the other one finishes the
// killed one's work once Temporal times it out, and there are 50 VMs, one
// per Machine. The one killed is one that waits for boots at that moment
// (Temporal decides which worker gets what; a workflow stays with the
// worker that ran it first), and those waits are retried on the other
// worker once their heartbeat timeout tells Temporal the worker is gone.
func TestWorkerKilledBesideAnotherDuringBatch(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	first := st.Workers[0]
	added, err := st.AddWorker(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		// Back to the suite's shape: the first worker alone.
		if !first.Running() {
			assert.NoError(t, first.Start(context.Background()))
		}
		assert.NoError(t, added.Stop(stack.StopTimeout))
	})

	const n = 50
	b := newBatch(t, st, "rel-two-workers", "vm", n)
	start := time.Now()
	b.create(t, st, map[string]string{kubevirtsim.BootDelayAnnotation: "5s"})
	var ids []string
	for _, name := range b.names {
		ids = append(ids, workflows.ProvisionWorkflowID(b.ns, name))
	}
	workers := map[string]*services.Service{identity(first): first, identity(added): added}
	// Waits for a boot last seconds: those in flight on a worker a moment
	// ago still are when it is killed.
	var victim *services.Service
	var victimID string
	var seen []killPoint // the victim's waits, by workflow ID, before the kill
	require.Eventually(t, func() bool {
		for worker, running := range inFlight(t, st, ids, contract.WaitForVirtualMachineName) {
			if w := workers[worker]; w != nil && len(running) >= 3 {
				victim, victimID, seen = w, worker, running
				return true
			}
		}
		return false
	}, settleTimeout, 100*time.Millisecond, "a worker waits for boots of the batch")
	require.NoError(t, victim.Kill())
	// Describing 50 workflows takes a while on a loaded machine: a wait
	// seen early in that scan may have ended before the kill. Only those
	// still held by the dead worker are lost and must time out.
	lost := inFlight(t, st, workflowIDs(seen), contract.WaitForVirtualMachineName)[victimID]
	require.NotEmpty(t, lost, "waits for a boot still held by the killed worker")
	survivor := first
	if victim == first {
		survivor = added
	}
	t.Logf("%s killed %s into the batch; %s goes on alone", victim.Name(), time.Since(start).Round(100*time.Millisecond), survivor.Name())

	b.waitRunning(t, st)
	t.Logf("%d Machines Running %s after the batch began", n, time.Since(start).Round(100*time.Millisecond))
	assert.Equal(t, n, vmCount(t, st, b.ns), "one VM per Machine")
	b.assertOneVMEach(t, st)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
	t.Logf("%d waits for a boot were in flight on the killed worker", len(lost))
	for _, a := range lost {
		assert.Contains(t, timedOut(t, st, a.workflow), a.activity, "%s: retried on the other worker after its heartbeat timeout", a.workflow)
	}
	assert.True(t, survivor.Running())

	b.deleteAll(t, st)
	b.assertClean(t, st)
	b.assertOneRunEach(t, st, workflows.DeprovisionMachineName, workflows.DeprovisionWorkflowID)
	assertNoOpenWorkflows(t, st, b.ns)
}

// workflowIDs lists the workflows of the kill points.
func workflowIDs(points []killPoint) []string {
	out := make([]string, 0, len(points))
	for _, p := range points {
		out = append(out, p.workflow)
	}
	return out
}

// identity is the Temporal identity of a worker process: "<pid>@<host>@".
func identity(w *services.Service) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s@", w.Pid(), host)
}

// inFlight lists the started activities of the given type of the
// workflows (as workflow ID and activity type) by the identity of the
// worker that has them.
func inFlight(t *testing.T, st *stack.Stack, ids []string, activity string) map[string][]killPoint {
	t.Helper()
	out := map[string][]killPoint{}
	for _, id := range ids {
		desc, err := st.Temporal().DescribeWorkflow(t.Context(), id, "")
		if err != nil {
			continue // not started yet
		}
		for _, p := range desc.RawResponse.GetPendingActivities() {
			if p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED && p.GetActivityType().GetName() == activity {
				out[p.GetLastWorkerIdentity()] = append(out[p.GetLastWorkerIdentity()], killPoint{id, p.GetActivityType().GetName()})
			}
		}
	}
	return out
}
