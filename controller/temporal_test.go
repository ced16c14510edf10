package controller

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/workflows"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{Initial: time.Minute, Max: 5 * time.Minute}
	var got []time.Duration
	for attempt := 0; attempt <= 5; attempt++ {
		got = append(got, b.Delay(attempt))
	}
	assert.Equal(t, []time.Duration{time.Minute, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}, got)
	assert.Equal(t, 5*time.Minute, b.Delay(1<<30), "no overflow on huge attempts")
}

func TestNewTemporalTriggerRejectsBadOptions(t *testing.T) {
	srvless := mocks.NewClient(t) // fails the test if the trigger calls it
	_, err := NewTemporalTrigger(nil, TemporalTriggerOptions{})
	require.EqualError(t, err, "controller.NewTemporalTrigger: Temporal client is nil")

	_, err = NewTemporalTrigger(srvless, TemporalTriggerOptions{
		RetryBackoff: Backoff{Initial: time.Hour, Max: time.Minute},
		BootTimeout:  48 * time.Hour,
		QueryTimeout: -time.Second,
	})
	require.Error(t, err)
	for _, want := range []string{
		"retry backoff: initial 1h0m0s and max 1m0s: want 0 < initial <= max",
		"boot timeout 48h0m0s: want 0 (the default) up to 24h0m0s",
		"query timeout -1s: must not be negative",
	} {
		assert.ErrorContains(t, err, want)
	}
}

// Stub workflows under the real type names, steered by the Machine name:
// "ok-*" completes, "fail-*" fails with an application error (a
// deprovision only when not forced), "block-*" waits for the release
// signal (a deprovision also takes the force update while it waits),
// "retry-*" (a provision) retries stubUnreachable until it is cancelled.
const releaseSignal = "release"

// stubUnreachable is a step that fails like an unreachable cluster.
func stubUnreachable(context.Context) error {
	return temporal.NewApplicationError(`validate KubevirtConfig "kv": dial tcp 127.0.0.1:1: connect: connection refused`, "ClusterUnreachable")
}

func stubProvision(ctx workflow.Context, in workflows.ProvisionInput) (workflows.ProvisionResult, error) {
	step := workflows.Progress{Step: "Started"}
	if err := workflow.SetQueryHandler(ctx, workflows.StatusQuery, func() (workflows.Progress, error) { return step, nil }); err != nil {
		return workflows.ProvisionResult{}, err
	}
	switch {
	case strings.HasPrefix(in.Name, "fail-"):
		return workflows.ProvisionResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Machine %s/%s: spec.machineClass: MachineClass \"huge\" not found", in.Namespace, in.Name), "InvalidMachineSpec", nil)
	case strings.HasPrefix(in.Name, "block-"):
		step.Step = "WaitForVirtualMachine"
		workflow.GetSignalChannel(ctx, releaseSignal).Receive(ctx, nil)
	case strings.HasPrefix(in.Name, "retry-"):
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Second,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 50 * time.Millisecond, MaximumInterval: 100 * time.Millisecond},
		})
		return workflows.ProvisionResult{}, workflow.ExecuteActivity(actx, "ValidateCluster").Get(ctx, nil)
	}
	return workflows.ProvisionResult{KubevirtConfig: "kv", VMNamespace: in.Namespace, VMName: in.Name}, nil
}

func stubDeprovision(ctx workflow.Context, in workflows.DeprovisionInput) (workflows.DeprovisionResult, error) {
	forced := in.Force
	if err := workflow.SetQueryHandler(ctx, workflows.StatusQuery, func() (workflows.Progress, error) {
		return workflows.Progress{Step: "DeleteVirtualMachine"}, nil
	}); err != nil {
		return workflows.DeprovisionResult{}, err
	}
	if err := workflow.SetUpdateHandler(ctx, workflows.ForceUpdate, func(workflow.Context) error { forced = true; return nil }); err != nil {
		return workflows.DeprovisionResult{}, err
	}
	switch {
	case strings.HasPrefix(in.Name, "fail-") && !forced:
		return workflows.DeprovisionResult{}, temporal.NewNonRetryableApplicationError(
			"could not delete the VirtualMachine "+in.Namespace+"/"+in.Name+" on kv", workflows.ErrTypeRemoteCleanupFailed, nil)
	case strings.HasPrefix(in.Name, "block-"):
		workflow.GetSignalChannel(ctx, releaseSignal).Receive(ctx, nil)
	}
	return workflows.DeprovisionResult{Forced: forced}, nil
}

func stubEjectISO(ctx workflow.Context, in workflows.EjectISOInput) (workflows.EjectISOResult, error) {
	switch {
	case strings.HasPrefix(in.Name, "fail-"):
		return workflows.EjectISOResult{}, temporal.NewNonRetryableApplicationError(
			"VirtualMachine "+in.Namespace+"/"+in.Name+" on kv exists and is not managed by machineflow", "ObjectConflict", nil)
	case strings.HasPrefix(in.Name, "block-"):
		workflow.GetSignalChannel(ctx, releaseSignal).Receive(ctx, nil)
	}
	return workflows.EjectISOResult{KubevirtConfig: "kv"}, nil
}

// triggerRig is a dev server with a worker running the stubs and a
// TemporalTrigger whose clock runs ahead of real time by skew.
type triggerRig struct {
	c       client.Client
	trigger *TemporalTrigger
	skew    atomic.Int64
}

func newTriggerRig(t *testing.T) *triggerRig {
	t.Helper()
	srv := devtemporal.New(t)
	w := worker.New(srv.Client(), "controller-test", worker.Options{})
	w.RegisterWorkflowWithOptions(stubProvision, workflow.RegisterOptions{Name: workflows.ProvisionMachineName})
	w.RegisterWorkflowWithOptions(stubDeprovision, workflow.RegisterOptions{Name: workflows.DeprovisionMachineName})
	w.RegisterWorkflowWithOptions(stubEjectISO, workflow.RegisterOptions{Name: workflows.EjectISOName})
	w.RegisterActivityWithOptions(stubUnreachable, activity.RegisterOptions{Name: "ValidateCluster"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	g := &triggerRig{c: srv.Client()}
	var err error
	g.trigger, err = NewTemporalTrigger(srv.Client(), TemporalTriggerOptions{
		TaskQueue:    "controller-test",
		RetryBackoff: Backoff{Initial: time.Minute, Max: 4 * time.Minute},
		Clock:        func() time.Time { return time.Now().Add(time.Duration(g.skew.Load())) },
	})
	require.NoError(t, err)
	return g
}

func testMachine(name string) *v1alpha1.Machine {
	return &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: name, UID: types.UID("uid-1-" + name), Generation: 1,
		CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Minute)),
	}}
}

// runs counts the executions of a workflow ID the server knows.
func (g *triggerRig) runs(t *testing.T, id string, want int) {
	t.Helper()
	var got int
	ok := assert.Eventually(t, func() bool {
		resp, err := g.c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", id),
		})
		require.NoError(t, err)
		got = len(resp.Executions)
		return got == want
	}, 10*time.Second, 100*time.Millisecond)
	if !ok {
		t.Fatalf("workflow %s has %d runs, want %d", id, got, want)
	}
}

func (g *triggerRig) waitClosed(t *testing.T, r Run) {
	t.Helper()
	_ = g.c.GetWorkflow(context.Background(), r.WorkflowID, r.RunID).Get(context.Background(), nil)
}

func TestTemporalTrigger(t *testing.T) {
	g := newTriggerRig(t)
	ctx := context.Background()

	t.Run("starts once and reports the open run", func(t *testing.T) {
		m := testMachine("block-1")
		first, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.True(t, first.Started)
		assert.Equal(t, StateRunning, first.State)
		assert.Equal(t, "provision/ns/block-1", first.WorkflowID)
		assert.Equal(t, 1, first.Attempt)

		again, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.False(t, again.Started)
		assert.Equal(t, first.RunID, again.RunID)
		assert.Equal(t, StateRunning, again.State)
		assert.Equal(t, int64(1), again.Generation, "read back from the memo")

		p, err := g.trigger.Progress(ctx, "ns", "block-1")
		require.NoError(t, err)
		require.NotNil(t, p.Provision)
		assert.Nil(t, p.Deprovision)
		require.NotNil(t, p.Step, "the open run answered its status query")
		assert.Equal(t, "WaitForVirtualMachine", p.Step.Step)

		require.NoError(t, g.c.SignalWorkflow(ctx, first.WorkflowID, first.RunID, releaseSignal, nil))
		g.waitClosed(t, first)
		done, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, StateCompleted, done.State)
		assert.Equal(t, first.RunID, done.RunID)
		assert.False(t, done.CloseTime.IsZero())

		// A spec change does not re-run a completed provision: the run
		// reports the generation it applied.
		m.Generation = 2
		done, err = g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, StateCompleted, done.State)
		assert.Equal(t, int64(1), done.Generation)
		g.runs(t, first.WorkflowID, 1)

		p, err = g.trigger.Progress(ctx, "ns", "block-1")
		require.NoError(t, err)
		assert.Nil(t, p.Step, "nothing open, nothing to query")
		assert.Equal(t, StateCompleted, p.Provision.State)
	})

	t.Run("a Machine re-created under the same name is provisioned again", func(t *testing.T) {
		m := testMachine("ok-1")
		first, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		g.waitClosed(t, first)

		m.UID = "uid-2-ok-1"
		second, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.True(t, second.Started)
		assert.NotEqual(t, first.RunID, second.RunID)
		g.runs(t, first.WorkflowID, 2)
	})

	t.Run("a run without memo counts when it started after the Machine was created", func(t *testing.T) {
		starter := workflows.Starter{Client: g.c, TaskQueue: "controller-test"}
		for _, name := range []string{"ok-cli-old", "ok-cli-new"} {
			cli, err := starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: "ns", Name: name})
			require.NoError(t, err)
			require.NoError(t, cli.Get(ctx, nil))
		}

		created := testMachine("ok-cli-new")
		run, err := g.trigger.EnsureProvisioned(ctx, created)
		require.NoError(t, err)
		assert.False(t, run.Started)
		assert.Equal(t, StateCompleted, run.State)
		assert.Zero(t, run.Generation, "unknown without a memo")

		later := testMachine("ok-cli-old")
		later.CreationTimestamp = metav1.NewTime(time.Now().Add(2 * time.Second))
		run, err = g.trigger.EnsureProvisioned(ctx, later)
		require.NoError(t, err)
		assert.True(t, run.Started, "the CLI run predates this Machine")
		g.waitClosed(t, run)
		g.runs(t, run.WorkflowID, 2)
	})

	t.Run("a memo of the wrong shape counts as no memo", func(t *testing.T) {
		id := workflows.ProvisionWorkflowID("ns", "ok-badmemo")
		run, err := g.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "controller-test",
			Memo: map[string]any{MemoGeneration: "three", MemoMachineUID: 42}},
			workflows.ProvisionMachineName, workflows.ProvisionInput{Namespace: "ns", Name: "ok-badmemo"})
		require.NoError(t, err)
		require.NoError(t, run.Get(ctx, nil))

		got, err := g.trigger.EnsureProvisioned(ctx, testMachine("ok-badmemo"))
		require.NoError(t, err)
		assert.Equal(t, StateCompleted, got.State, "judged by its start time: after the Machine's creation")
		assert.Zero(t, got.Generation)
		assert.False(t, got.Started)
	})

	t.Run("a failed run waits for the backoff or a new generation", func(t *testing.T) {
		m := testMachine("fail-1")
		first, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		g.waitClosed(t, first)

		failed, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, StateFailed, failed.State)
		assert.False(t, failed.Started)
		require.NotNil(t, failed.Failure)
		assert.Equal(t, Failure{Reason: "InvalidMachineSpec", Message: `Machine ns/fail-1: spec.machineClass: MachineClass "huge" not found`}, *failed.Failure)
		assert.Equal(t, failed.CloseTime.Add(time.Minute), failed.RetryAt, "first retry after RetryBackoff.Initial")
		for range 3 {
			again, err := g.trigger.EnsureProvisioned(ctx, m)
			require.NoError(t, err)
			assert.Equal(t, first.RunID, again.RunID, "no restart before RetryAt")
		}

		g.skew.Store(int64(61 * time.Second))
		second, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.True(t, second.Started)
		assert.Equal(t, 2, second.Attempt)
		g.waitClosed(t, second)
		failed, err = g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, 2, failed.Attempt)
		assert.Equal(t, failed.CloseTime.Add(2*time.Minute), failed.RetryAt, "the wait doubles")

		m.Generation = 2
		third, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.True(t, third.Started, "a new generation is tried at once")
		assert.Equal(t, 1, third.Attempt)
		assert.Equal(t, int64(2), third.Generation)
		g.waitClosed(t, third)
		g.runs(t, first.WorkflowID, 3)
		g.skew.Store(0)
	})

	t.Run("EjectISO runs once, stands when completed, retries a failure after the backoff", func(t *testing.T) { testEjectISOTrigger(t, g) })

	t.Run("force reaches an open deprovision once", func(t *testing.T) {
		m := testMachine("block-2")
		run, err := g.trigger.EnsureDeprovisioned(ctx, m, false)
		require.NoError(t, err)
		assert.True(t, run.Started)
		assert.False(t, run.Force)

		for range 2 {
			forced, err := g.trigger.EnsureDeprovisioned(ctx, m, true)
			require.NoError(t, err)
			assert.True(t, forced.Force)
			assert.Equal(t, run.RunID, forced.RunID)
		}
		p, err := g.trigger.Progress(ctx, "ns", "block-2")
		require.NoError(t, err)
		require.NotNil(t, p.Deprovision)
		assert.Equal(t, StateRunning, p.Deprovision.State)
		require.NotNil(t, p.Step)
		assert.Equal(t, "DeleteVirtualMachine", p.Step.Step, "the open deprovision is queried")

		require.NoError(t, g.c.SignalWorkflow(ctx, run.WorkflowID, run.RunID, releaseSignal, nil))
		var res workflows.DeprovisionResult
		require.NoError(t, g.c.GetWorkflow(ctx, run.WorkflowID, run.RunID).Get(ctx, &res))
		assert.True(t, res.Forced, "the workflow took the force update")
		assert.Equal(t, 1, countEvents(t, g.c, run, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED), "one update for two forced calls")

		done, err := g.trigger.EnsureDeprovisioned(ctx, m, true)
		require.NoError(t, err)
		assert.Equal(t, StateCompleted, done.State)
	})

	t.Run("force restarts a failed deprovision at once", func(t *testing.T) {
		m := testMachine("fail-2")
		first, err := g.trigger.EnsureDeprovisioned(ctx, m, false)
		require.NoError(t, err)
		g.waitClosed(t, first)
		failed, err := g.trigger.EnsureDeprovisioned(ctx, m, false)
		require.NoError(t, err)
		assert.Equal(t, StateFailed, failed.State)
		assert.Equal(t, workflows.ErrTypeRemoteCleanupFailed, failed.Failure.Reason)

		forced, err := g.trigger.EnsureDeprovisioned(ctx, m, true)
		require.NoError(t, err)
		assert.True(t, forced.Started)
		assert.True(t, forced.Force)
		g.waitClosed(t, forced)
		done, err := g.trigger.EnsureDeprovisioned(ctx, m, true)
		require.NoError(t, err)
		assert.Equal(t, StateCompleted, done.State)
	})

	t.Run("a terminated run is a failure with its reason", func(t *testing.T) {
		m := testMachine("block-3")
		run, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		require.NoError(t, g.c.TerminateWorkflow(ctx, run.WorkflowID, run.RunID, "operator"))
		failed, err := g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		assert.Equal(t, StateFailed, failed.State)
		assert.Equal(t, &Failure{Reason: ReasonTerminated, Message: "the workflow was terminated"}, failed.Failure)

		p, err := g.trigger.Progress(ctx, "ns", "block-3")
		require.NoError(t, err)
		assert.Equal(t, failed.Failure, p.Provision.Failure)
	})

	t.Run("AwaitClose returns when the run closes, however it ends", func(t *testing.T) {
		await := func(run Run, within time.Duration) error {
			actx, cancel := context.WithTimeout(ctx, within)
			defer cancel()
			return g.trigger.AwaitClose(actx, run)
		}
		open, err := g.trigger.EnsureProvisioned(ctx, testMachine("block-await"))
		require.NoError(t, err)
		require.Error(t, await(open, 500*time.Millisecond), "the run is open")

		closed := make(chan error, 1)
		go func() { closed <- await(open, time.Minute) }()
		require.NoError(t, g.c.SignalWorkflow(ctx, open.WorkflowID, open.RunID, releaseSignal, nil))
		require.NoError(t, <-closed, "completed")

		failed, err := g.trigger.EnsureProvisioned(ctx, testMachine("fail-await"))
		require.NoError(t, err)
		require.NoError(t, await(failed, time.Minute), "failed")

		terminated, err := g.trigger.EnsureProvisioned(ctx, testMachine("block-await-2"))
		require.NoError(t, err)
		require.NoError(t, g.c.TerminateWorkflow(ctx, terminated.WorkflowID, terminated.RunID, "operator"))
		require.NoError(t, await(terminated, time.Minute), "terminated")

		require.Error(t, await(Run{WorkflowID: open.WorkflowID, RunID: "00000000-0000-0000-0000-000000000000"}, time.Minute),
			"a run that does not exist is not followed")
	})

	t.Run("progress of a Machine that never ran", func(t *testing.T) {
		p, err := g.trigger.Progress(ctx, "ns", "never")
		require.NoError(t, err)
		assert.Equal(t, Progress{}, p)
	})
}

func countEvents(t *testing.T, c client.Client, r Run, typ enumspb.EventType) int {
	t.Helper()
	n := 0
	it := c.GetWorkflowHistory(context.Background(), r.WorkflowID, r.RunID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if e.EventType == typ {
			n++
		}
	}
	return n
}
