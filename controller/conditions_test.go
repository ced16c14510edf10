package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWorkflowCondition(t *testing.T) {
	retryAt := time.Date(2026, 12, 4, 10, 30, 0, 0, time.FixedZone("CET", 3600))
	failure := &Failure{Reason: "InvalidMachineSpec", Message: "Machine ns/m: spec.memory: must be positive"}
	run := func(state State, mod func(*Run)) Run {
		r := Run{WorkflowID: "wf", RunID: "run-1", State: state, Attempt: 2}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	for _, tt := range []struct {
		name string
		kind workflowKind
		run  Run
		want condition
	}{
		{"a running provision", provisionKind, run(StateRunning, nil),
			condition{ConditionLifecycleWorkflow, "Unknown", ReasonProvisionRunning, "ProvisionMachine wf run run-1 (attempt 2) is running"}},
		{"a provision retrying a step", provisionKind, run(StateRunning, func(r *Run) {
			r.Retrying = &Failure{Reason: "ClusterUnreachable", Message: "EnsureVirtualMachine: dial tcp"}
		}),
			condition{ConditionLifecycleWorkflow, "Unknown", ReasonProvisionRetrying,
				"ProvisionMachine wf run run-1 (attempt 2) is running and retrying a step that failed: ClusterUnreachable: EnsureVirtualMachine: dial tcp"}},
		{"a completed provision", provisionKind, run(StateCompleted, nil),
			condition{ConditionLifecycleWorkflow, "True", ReasonProvisionCompleted, "ProvisionMachine wf run run-1 (attempt 2) completed"}},
		{"a failed provision with its failure and next attempt, in UTC", provisionKind, run(StateFailed, func(r *Run) { r.Failure, r.RetryAt = failure, retryAt }),
			condition{ConditionLifecycleWorkflow, "False", ReasonProvisionFailed,
				"ProvisionMachine wf run run-1 (attempt 2) failed: InvalidMachineSpec: Machine ns/m: spec.memory: must be positive; next attempt at 2026-12-04T09:30:00Z"}},
		{"a failed run without a failure or retry", provisionKind, run(StateFailed, nil),
			condition{ConditionLifecycleWorkflow, "False", ReasonProvisionFailed, "ProvisionMachine wf run run-1 (attempt 2) failed"}},
		{"attempt 0 reads as the first", provisionKind, run(StateRunning, func(r *Run) { r.Attempt = 0 }),
			condition{ConditionLifecycleWorkflow, "Unknown", ReasonProvisionRunning, "ProvisionMachine wf run run-1 (attempt 1) is running"}},
		{"a running deprovision", deprovisionKind, run(StateRunning, nil),
			condition{ConditionLifecycleWorkflow, "Unknown", ReasonDeprovisionRunning, "DeprovisionMachine wf run run-1 (attempt 2) is running"}},
		{"a retrying deprovision", deprovisionKind, run(StateRunning, func(r *Run) { r.Retrying = failure }),
			condition{ConditionLifecycleWorkflow, "Unknown", ReasonDeprovisionRetrying,
				"DeprovisionMachine wf run run-1 (attempt 2) is running and retrying a step that failed: InvalidMachineSpec: Machine ns/m: spec.memory: must be positive"}},
		{"a failed deprovision", deprovisionKind, run(StateFailed, func(r *Run) { r.Failure = failure }),
			condition{ConditionLifecycleWorkflow, "False", ReasonDeprovisionFailed,
				"DeprovisionMachine wf run run-1 (attempt 2) failed: InvalidMachineSpec: Machine ns/m: spec.memory: must be positive"}},
		{"an ISO ejection has a condition of its own", ejectISOKind, run(StateCompleted, nil),
			condition{ConditionISOEjected, "True", ReasonISOEjectCompleted, "EjectISO wf run run-1 (attempt 2) completed"}},
		{"a retrying ISO ejection", ejectISOKind, run(StateRunning, func(r *Run) { r.Retrying = failure }),
			condition{ConditionISOEjected, "Unknown", ReasonISOEjectRetrying,
				"EjectISO wf run run-1 (attempt 2) is running and retrying a step that failed: InvalidMachineSpec: Machine ns/m: spec.memory: must be positive"}},
		{"a failed ISO ejection", ejectISOKind, run(StateFailed, nil),
			condition{ConditionISOEjected, "False", ReasonISOEjectFailed, "EjectISO wf run run-1 (attempt 2) failed"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, workflowCondition(tt.kind, tt.run))
		})
	}
}

func TestSpecAppliedCondition(t *testing.T) {
	m := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	assert.Equal(t, condition{ConditionSpecApplied, "True", ReasonSpecApplied, "generation 3 is applied"},
		specAppliedCondition(m, Run{Generation: 3}))
	got := specAppliedCondition(m, Run{Generation: 2})
	assert.Equal(t, ConditionSpecApplied, got.Type)
	assert.Equal(t, "False", got.Status)
	assert.Equal(t, ReasonUpdateNotSupported, got.Reason)
	assert.Contains(t, got.Message, "generation 3 observed, generation 2 applied")
}

func TestSetConditionMovesTheTransitionTimeOnlyWithTheStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	var conds []v1alpha1.MachineCondition

	require.True(t, setCondition(&conds, condition{"A", "Unknown", "Running", "is running"}, t0), "a new type is added")
	require.True(t, setCondition(&conds, condition{"B", "True", "Applied", "applied"}, t0))
	require.Len(t, conds, 2)

	assert.False(t, setCondition(&conds, condition{"A", "Unknown", "Running", "is running"}, t1), "the same condition is no change")
	assert.Equal(t, t0, conds[0].LastTransitionTime.Time)

	require.True(t, setCondition(&conds, condition{"A", "Unknown", "Retrying", "retrying"}, t1), "a new reason is a change")
	assert.Equal(t, t0, conds[0].LastTransitionTime.Time, "same status: the transition time stays")
	assert.Equal(t, "Retrying", conds[0].Reason)

	require.True(t, setCondition(&conds, condition{"A", "True", "Completed", "completed"}, t2))
	assert.Equal(t, t2, conds[0].LastTransitionTime.Time, "a new status moves it")
	assert.Equal(t, v1alpha1.MachineCondition{Type: "B", Status: "True", Reason: "Applied", Message: "applied", LastTransitionTime: metav1.NewTime(t0)}, conds[1],
		"other types are left alone")
	require.Len(t, conds, 2, "unique by type")

	got := conditionOfType(conds, "A")
	require.NotNil(t, got)
	assert.Equal(t, "Completed", got.Reason)
	got.Reason = "changed"
	assert.Equal(t, "Completed", conds[0].Reason, "conditionOfType returns a copy")
	assert.Nil(t, conditionOfType(conds, "C"))
}

func TestConditionQuiet(t *testing.T) {
	retrying := workflowCondition(provisionKind, Run{WorkflowID: "wf", RunID: "r1", Retrying: &Failure{Reason: "ClusterUnreachable", Message: "attempt 3"}})
	prev := &v1alpha1.MachineCondition{Type: retrying.Type, Status: retrying.Status, Reason: retrying.Reason, Message: retrying.Message}

	again := workflowCondition(provisionKind, Run{WorkflowID: "wf", RunID: "r1", Retrying: &Failure{Reason: "ClusterUnreachable", Message: "attempt 4"}})
	assert.True(t, again.quiet(prev), "the same run retrying with another message")
	recovered := workflowCondition(provisionKind, Run{WorkflowID: "wf", RunID: "r1"})
	assert.True(t, recovered.quiet(prev), "the same run no longer retrying: its end will be announced")

	otherRun := workflowCondition(provisionKind, Run{WorkflowID: "wf", RunID: "r2", Retrying: &Failure{Reason: "ClusterUnreachable", Message: "attempt 1"}})
	assert.False(t, otherRun.quiet(prev), "another run is news")
	failed := workflowCondition(provisionKind, Run{WorkflowID: "wf", RunID: "r1", State: StateFailed})
	assert.False(t, failed.quiet(prev), "the run's end is news")
	assert.False(t, again.quiet(nil), "a first condition is news")
	running := &v1alpha1.MachineCondition{Reason: ReasonProvisionRunning, Message: recovered.Message}
	assert.False(t, again.quiet(running), "starting to retry is news")
}

func TestConditionEvent(t *testing.T) {
	for reason, want := range map[string][2]string{
		ReasonProvisionRunning:    {corev1.EventTypeNormal, EventProvisionStarted},
		ReasonProvisionCompleted:  {corev1.EventTypeNormal, EventProvisionCompleted},
		ReasonProvisionFailed:     {corev1.EventTypeWarning, EventProvisionFailed},
		ReasonProvisionRetrying:   {corev1.EventTypeWarning, EventProvisionRetrying},
		ReasonDeprovisionRunning:  {corev1.EventTypeNormal, EventDeprovisionStarted},
		ReasonDeprovisionFailed:   {corev1.EventTypeWarning, EventDeprovisionFailed},
		ReasonDeprovisionRetrying: {corev1.EventTypeWarning, EventDeprovisionRetrying},
		ReasonUpdateNotSupported:  {corev1.EventTypeWarning, EventUpdateNotSupported},
		ReasonISOEjectRunning:     {corev1.EventTypeNormal, EventISOEjectStarted},
		ReasonISOEjectCompleted:   {corev1.EventTypeNormal, EventISOEjected},
		ReasonISOEjectFailed:      {corev1.EventTypeWarning, EventISOEjectFailed},
		ReasonISOEjectRetrying:    {corev1.EventTypeWarning, EventISOEjectRetrying},
	} {
		typ, got, ok := condition{Reason: reason}.event()
		assert.True(t, ok, reason)
		assert.Equal(t, want, [2]string{typ, got}, reason)
	}
	_, _, ok := condition{Reason: ReasonSpecApplied}.event()
	assert.False(t, ok, "an applied spec is the normal case, not an Event")
}
