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

	"github.com/machineflow/machineflow/internal/kubevirtsim"
	"github.com/machineflow/machineflow/internal/stack"
	"github.com/machineflow/machineflow/workflows"
)

// Two workers on the task queue and one of them killed with SIGKILL in
// the middle of a batch of 50 provisions: the other one finishes the
// killed one's work once Temporal times it out, and there are 50 VMs, one
// per Machine. The one killed is the one with activities in flight at
// that moment (Temporal decides which worker gets what; a workflow stays
// with the worker that ran it first).
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
	b.create(t, st, map[string]string{kubevirtsim.BootDelayAnnotation: "3s"})
	var ids []string
	for _, name := range b.names {
		ids = append(ids, workflows.ProvisionWorkflowID(b.ns, name))
	}
	workers := map[string]*stack.Service{identity(first): first, identity(added): added}
	var victim *stack.Service
	require.Eventually(t, func() bool {
		for id, count := range inFlight(t, st, ids) {
			if w := workers[id]; w != nil && count >= 3 {
				victim = w
				return true
			}
		}
		return false
	}, settleTimeout, 100*time.Millisecond, "a worker has activities of the batch in flight")
	require.NoError(t, victim.Kill())
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
	interrupted := 0
	for _, id := range ids {
		if len(timedOut(t, st, id)) > 0 {
			interrupted++
		}
	}
	t.Logf("%d of %d provisions had an activity in flight on the killed worker", interrupted, n)
	assert.Positive(t, interrupted, "Temporal retried the killed worker's activities after their timeouts")
	assert.True(t, survivor.Running())

	b.deleteAll(t, st)
	b.assertClean(t, st)
	b.assertOneRunEach(t, st, workflows.DeprovisionMachineName, workflows.DeprovisionWorkflowID)
	assertNoOpenWorkflows(t, st, b.ns)
}

// identity is the Temporal identity of a worker process: "<pid>@<host>@".
func identity(w *stack.Service) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s@", w.Pid(), host)
}

// inFlight counts the started activities of the workflows by the identity
// of the worker that has them.
func inFlight(t *testing.T, st *stack.Stack, ids []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, id := range ids {
		desc, err := st.Temporal().DescribeWorkflow(t.Context(), id, "")
		if err != nil {
			continue // not started yet
		}
		for _, p := range desc.RawResponse.GetPendingActivities() {
			if p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				out[p.GetLastWorkerIdentity()]++
			}
		}
	}
	return out
}
