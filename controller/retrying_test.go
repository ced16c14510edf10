package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An open run that retries a failing step names the failure in its
// condition; the Event announces the first failure only, not every new
// wording of it, nor the step's recovery.
func TestRetryingStepIsNamedAndAnnouncedOnce(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	run := Run{WorkflowID: "provision/ns/m1", RunID: "r1", State: StateRunning, Generation: 1, Attempt: 1, StartTime: t0}
	g.trigger.SetProvision("ns", "m1", run)
	g.reconcile(t, "m1")
	require.Equal(t, []string{"Normal ProvisionStarted ProvisionMachine provision/ns/m1 run r1 (attempt 1) is running"}, g.drain())

	for _, next := range []string{"next probe in 29s", "next probe in 12s"} {
		run.Retrying = &Failure{Reason: "ClusterUnreachable",
			Message: `ValidateCluster: validate KubevirtConfig "kv": circuit breaker open after 5 consecutive failures, ` + next}
		g.trigger.SetProvision("ns", "m1", run)
		g.now = g.now.Add(10 * time.Second)
		g.reconcile(t, "m1")
		c := conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow)
		require.NotNil(t, c)
		assert.Equal(t, "Unknown", c.Status)
		assert.Equal(t, ReasonProvisionRetrying, c.Reason)
		assert.Equal(t, `ProvisionMachine provision/ns/m1 run r1 (attempt 1) is running and retrying a step that failed: ClusterUnreachable: `+
			`ValidateCluster: validate KubevirtConfig "kv": circuit breaker open after 5 consecutive failures, `+next, c.Message)
	}
	assert.Equal(t, []string{`Warning ProvisionRetrying ProvisionMachine provision/ns/m1 run r1 (attempt 1) is running and retrying a step that failed: ` +
		`ClusterUnreachable: ValidateCluster: validate KubevirtConfig "kv": circuit breaker open after 5 consecutive failures, next probe in 29s`}, g.drain())

	run.Retrying = nil
	g.trigger.SetProvision("ns", "m1", run)
	g.reconcile(t, "m1")
	assert.Equal(t, ReasonProvisionRunning, conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow).Reason, "the step recovered")
	assert.Empty(t, g.drain(), "a recovery is not a new start")

	run.State, run.Retrying = StateCompleted, nil
	g.trigger.SetProvision("ns", "m1", run)
	g.reconcile(t, "m1")
	assert.Equal(t, []string{"Normal ProvisionCompleted ProvisionMachine provision/ns/m1 run r1 (attempt 1) completed"}, g.drain())
}

// A retrying run's next run, started by the Trigger, is announced.
func TestNewRunAfterRetryingIsAnnounced(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	g.trigger.SetProvision("ns", "m1", Run{WorkflowID: "provision/ns/m1", RunID: "r1", State: StateRunning, Attempt: 1, StartTime: t0,
		Retrying: &Failure{Reason: "WaitingForDependency", Message: "LoadMachine: Secret ns/ud does not exist yet"}})
	g.reconcile(t, "m1")
	assert.Len(t, g.drain(), 1)
	g.trigger.SetProvision("ns", "m1", Run{WorkflowID: "provision/ns/m1", RunID: "r2", State: StateRunning, Started: true, Attempt: 2, StartTime: t0})
	g.reconcile(t, "m1")
	assert.Equal(t, []string{"Normal ProvisionStarted ProvisionMachine provision/ns/m1 run r2 (attempt 2) is running"}, g.drain())
}

// The TemporalTrigger reads the retried step's last failure from the
// server: the step's name, the error type and message.
func TestTemporalTriggerReportsTheRetriedStep(t *testing.T) {
	g := newTriggerRig(t)
	ctx := context.Background()
	m := testMachine("retry-1")
	first, err := g.trigger.EnsureProvisioned(ctx, m)
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.c.TerminateWorkflow(context.Background(), first.WorkflowID, first.RunID, "test over") })

	var run Run
	require.Eventually(t, func() bool {
		run, err = g.trigger.EnsureProvisioned(ctx, m)
		require.NoError(t, err)
		return run.Retrying != nil
	}, 10*time.Second, 50*time.Millisecond, "the retried step shows")
	assert.Equal(t, StateRunning, run.State)
	assert.Equal(t, first.RunID, run.RunID)
	assert.Equal(t, &Failure{Reason: "ClusterUnreachable",
		Message: `ValidateCluster: validate KubevirtConfig "kv": dial tcp 127.0.0.1:1: connect: connection refused`}, run.Retrying)

	done, err := g.trigger.EnsureProvisioned(ctx, testMachine("ok-retry"))
	require.NoError(t, err)
	g.waitClosed(t, done)
	done, err = g.trigger.EnsureProvisioned(ctx, testMachine("ok-retry"))
	require.NoError(t, err)
	assert.Nil(t, done.Retrying, "a closed run retries nothing")
}
