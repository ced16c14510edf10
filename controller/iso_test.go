package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/machineflow/machineflow/internal/names"
)

// installed is a provisioned, Running Machine whose OS is installed.
func installed(m *v1alpha1.Machine) {
	withFinalizer(m)
	m.Annotations = map[string]string{names.OSInstalledAnnotation: "true"}
	m.Status.Phase = v1alpha1.MachinePhaseRunning
}

// newISORig is a rig whose Machines' provisions have completed.
func newISORig(t *testing.T, objs ...client.Object) *rig {
	t.Helper()
	g := newRig(t, nil, objs...)
	for _, o := range objs {
		g.trigger.SetProvision(o.GetNamespace(), o.GetName(), Run{RunID: "p1", State: StateCompleted, Generation: 1, Attempt: 1})
	}
	return g
}

func (g *rig) annotate(t *testing.T, name, key, value string) {
	t.Helper()
	m := g.get(t, name)
	base := m.DeepCopy()
	m.Annotations[key] = value
	require.NoError(t, g.c.Patch(context.Background(), m, client.MergeFrom(base)))
}

func TestISOEjectionRunsAndIsAnnouncedOnCompletion(t *testing.T) {
	g := newISORig(t, machine("m1", installed))
	res := g.reconcile(t, "m1")
	assert.Equal(t, time.Second, res.RequeueAfter, "an open EjectISO is looked at again")
	assert.Equal(t, []MachineCall{{Machine: "ns/m1", Generation: 1}}, g.trigger.Snapshot().EnsureISOEjected)
	c := conditionOf(g.get(t, "m1"), ConditionISOEjected)
	require.NotNil(t, c)
	assert.Equal(t, "Unknown", c.Status)
	assert.Equal(t, ReasonISOEjectRunning, c.Reason)
	assert.Equal(t, []string{
		"Normal ProvisionCompleted ProvisionMachine provision/ns/m1 run p1 (attempt 1) completed",
		"Normal EjectISOStarted EjectISO eject-iso/ns/m1 run mock-eject-iso/ns/m1 (attempt 1) is running",
	}, g.drain())

	// The run annotates the Machine before it completes; the reconcile
	// that annotation causes still sees the run end.
	g.annotate(t, "m1", names.ISOCleanedUpAnnotation, "true")
	g.trigger.SetEjectISO("ns", "m1", Run{RunID: "e1", State: StateCompleted, Attempt: 1})
	g.now = t0.Add(time.Minute)
	assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"), "a completed EjectISO is not requeued")
	c = conditionOf(g.get(t, "m1"), ConditionISOEjected)
	assert.Equal(t, "True", c.Status)
	assert.Equal(t, ReasonISOEjectCompleted, c.Reason)
	assert.Equal(t, []string{"Normal ISOEjected EjectISO eject-iso/ns/m1 run e1 (attempt 1) completed"}, g.drain())

	for range 2 {
		assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"))
	}
	assert.Len(t, g.trigger.Snapshot().EnsureISOEjected, 2, "nothing is asked once the ISO is gone and the run was seen to end")
	assert.Empty(t, g.drain())
}

func TestISOEjectionWaitsForItsTrigger(t *testing.T) {
	for name, mutate := range map[string]func(*v1alpha1.Machine){
		"no trigger annotation": func(m *v1alpha1.Machine) { delete(m.Annotations, names.OSInstalledAnnotation) },
		"trigger not true":      func(m *v1alpha1.Machine) { m.Annotations[names.OSInstalledAnnotation] = "false" },
		"already cleaned up":    func(m *v1alpha1.Machine) { m.Annotations[names.ISOCleanedUpAnnotation] = "true" },
		"not Running yet":       func(m *v1alpha1.Machine) { m.Status.Phase = v1alpha1.MachinePhaseCreating },
	} {
		t.Run(name, func(t *testing.T) {
			g := newISORig(t, machine("m1", installed, mutate))
			assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"))
			assert.Empty(t, g.trigger.Snapshot().EnsureISOEjected)
			assert.Nil(t, conditionOf(g.get(t, "m1"), ConditionISOEjected))
		})
	}

	t.Run("provision still open", func(t *testing.T) {
		g := newRig(t, nil, machine("m1", installed))
		g.reconcile(t, "m1")
		assert.Len(t, g.trigger.Snapshot().EnsureProvisioned, 1)
		assert.Empty(t, g.trigger.Snapshot().EnsureISOEjected, "the ISO stays until the provision is done")
	})

	t.Run("cdrom-ejected triggers too", func(t *testing.T) {
		g := newISORig(t, machine("m1", installed, func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{names.CDROMEjectedAnnotation: "true"}
		}))
		g.reconcile(t, "m1")
		assert.Len(t, g.trigger.Snapshot().EnsureISOEjected, 1)
	})
}

func TestISOEjectionFailureIsVisibleAndWaitsForTheRetry(t *testing.T) {
	g := newISORig(t, machine("m1", installed))
	retry := t0.Add(2 * time.Minute)
	g.trigger.SetEjectISO("ns", "m1", Run{RunID: "e1", State: StateFailed, Attempt: 1, RetryAt: retry,
		Failure: &Failure{Reason: "ClusterUnreachable", Message: "get VirtualMachine ns/m1 on kv: connection refused"}})
	assert.Equal(t, 2*time.Minute, g.reconcile(t, "m1").RequeueAfter, "requeued when the Trigger will retry")
	c := conditionOf(g.get(t, "m1"), ConditionISOEjected)
	require.NotNil(t, c)
	assert.Equal(t, "False", c.Status)
	assert.Equal(t, ReasonISOEjectFailed, c.Reason)
	assert.Contains(t, c.Message, "ClusterUnreachable: get VirtualMachine ns/m1 on kv: connection refused; next attempt at 2026-05-01T12:02:00Z")
	evs := g.drain()
	require.Len(t, evs, 2)
	assert.Contains(t, evs[1], "Warning EjectISOFailed EjectISO eject-iso/ns/m1 run e1 (attempt 1) failed")

	g.now = retry.Add(time.Second)
	g.trigger.SetEjectISO("ns", "m1", Run{RunID: "e2", State: StateRunning, Started: true, Attempt: 2, StartTime: g.now})
	assert.Equal(t, time.Second, g.reconcile(t, "m1").RequeueAfter)
	assert.Equal(t, []string{"Normal EjectISOStarted EjectISO eject-iso/ns/m1 run e2 (attempt 2) is running"}, g.drain())
}

func TestISOEjectionTriggerErrorIsReturned(t *testing.T) {
	g := newISORig(t, machine("m1", installed))
	g.trigger.EnsureISOEjectedError = errors.New("describe workflow eject-iso/ns/m1: connection refused")
	_, err := g.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "m1"}})
	require.ErrorContains(t, err, "ensure the ISO of Machine ns/m1 is ejected: describe workflow eject-iso/ns/m1: connection refused")
	assert.Nil(t, conditionOf(g.get(t, "m1"), ConditionISOEjected))
}

func TestMachinePredicatePassesISOAnnotations(t *testing.T) {
	p := MachinePredicate()
	base := machine("m1", withFinalizer)
	for _, key := range []string{names.CDROMEjectedAnnotation, names.OSInstalledAnnotation, names.ISOCleanedUpAnnotation} {
		m := base.DeepCopy()
		m.Annotations = map[string]string{key: "true"}
		assert.True(t, p.Update(event.UpdateEvent{ObjectOld: base, ObjectNew: m}), key)
		assert.False(t, p.Update(event.UpdateEvent{ObjectOld: m, ObjectNew: m.DeepCopy()}), "%s unchanged", key)
	}
}

func TestMockTriggerEjectISO(t *testing.T) {
	ctx := context.Background()
	mock := NewMockTrigger()
	m := testMachine("m1")
	run, err := mock.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.True(t, run.Started)
	assert.Equal(t, "eject-iso/ns/m1", run.WorkflowID)
	run, err = mock.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.False(t, run.Started, "the default run is started once")

	mock.SetEjectISO("ns", "m1", Run{RunID: "e1", State: StateCompleted})
	run, err = mock.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.Equal(t, Run{WorkflowID: "eject-iso/ns/m1", RunID: "e1", State: StateCompleted}, run)

	mock.EnsureISOEjectedError = errors.New("injected")
	_, err = mock.EnsureISOEjected(ctx, m)
	require.EqualError(t, err, "injected")
	mock.EnsureISOEjectedFunc = func(context.Context, *v1alpha1.Machine) (Run, error) { return Run{RunID: "hooked"}, nil }
	run, err = mock.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.Equal(t, "hooked", run.RunID, "the hook wins over the injected error")

	assert.Len(t, mock.Snapshot().EnsureISOEjected, 5)
	mock.ResetCallTracking()
	assert.Empty(t, mock.Snapshot().EnsureISOEjected)
}

// testEjectISOTrigger runs TemporalTrigger.EnsureISOEjected against the
// stub EjectISO of the triggerRig.
func testEjectISOTrigger(t *testing.T, g *triggerRig) {
	ctx := context.Background()
	m := testMachine("block-iso")
	first, err := g.trigger.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.True(t, first.Started)
	assert.Equal(t, "eject-iso/ns/block-iso", first.WorkflowID)
	again, err := g.trigger.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.False(t, again.Started)
	assert.Equal(t, first.RunID, again.RunID, "one open run per Machine")

	require.NoError(t, g.c.SignalWorkflow(ctx, first.WorkflowID, first.RunID, releaseSignal, nil))
	g.waitClosed(t, first)
	done, err := g.trigger.EnsureISOEjected(ctx, m)
	require.NoError(t, err)
	assert.Equal(t, StateCompleted, done.State)
	assert.Equal(t, first.RunID, done.RunID, "a completed run stands")
	g.runs(t, first.WorkflowID, 1)

	recreated := testMachine("block-iso")
	recreated.UID = "uid-2-block-iso"
	next, err := g.trigger.EnsureISOEjected(ctx, recreated)
	require.NoError(t, err)
	assert.True(t, next.Started, "the completed run was for an earlier Machine of that name")
	require.NoError(t, g.c.SignalWorkflow(ctx, next.WorkflowID, next.RunID, releaseSignal, nil))
	g.waitClosed(t, next)

	bad := testMachine("fail-iso")
	run, err := g.trigger.EnsureISOEjected(ctx, bad)
	require.NoError(t, err)
	g.waitClosed(t, run)
	failed, err := g.trigger.EnsureISOEjected(ctx, bad)
	require.NoError(t, err)
	assert.Equal(t, StateFailed, failed.State)
	require.NotNil(t, failed.Failure)
	assert.Equal(t, "ObjectConflict", failed.Failure.Reason)
	assert.Equal(t, failed.CloseTime.Add(time.Minute), failed.RetryAt)
	bad.Generation = 2
	same, err := g.trigger.EnsureISOEjected(ctx, bad)
	require.NoError(t, err)
	assert.Equal(t, failed.RunID, same.RunID, "a new generation does not matter to EjectISO: the backoff does")

	g.skew.Store(int64(61 * time.Second))
	defer g.skew.Store(0)
	retried, err := g.trigger.EnsureISOEjected(ctx, bad)
	require.NoError(t, err)
	assert.True(t, retried.Started)
	assert.Equal(t, 2, retried.Attempt)
	g.waitClosed(t, retried)
	g.runs(t, run.WorkflowID, 2)
}
