package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// rig is a reconciler on a fake client with a MockTrigger, a fake
// recorder and a clock the test moves.
type rig struct {
	r       *MachineReconciler
	c       client.Client
	trigger *MockTrigger
	events  *events.FakeRecorder
	now     time.Time
}

func newRig(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) *rig {
	t.Helper()
	s, err := scheme.New()
	require.NoError(t, err)
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithStatusSubresource(&v1alpha1.Machine{})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	g := &rig{c: b.Build(), trigger: NewMockTrigger(), events: events.NewFakeRecorder(100), now: t0}
	g.r = &MachineReconciler{Client: g.c, Trigger: g.trigger, Recorder: g.events,
		RequeueMin: time.Second, RequeueMax: 2 * time.Minute, Clock: func() time.Time { return g.now }}
	g.trigger.Clock = g.r.Clock
	return g
}

func machine(name string, mutate ...func(*v1alpha1.Machine)) *v1alpha1.Machine {
	m := &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec:       v1alpha1.MachineSpec{Provider: v1alpha1.MachineProviderType(names.ProviderKubevirt)},
	}
	for _, f := range mutate {
		f(m)
	}
	return m
}

func withFinalizer(m *v1alpha1.Machine) { m.Finalizers = append(m.Finalizers, names.Finalizer) }

func deleting(m *v1alpha1.Machine) {
	withFinalizer(m)
	m.DeletionTimestamp = &metav1.Time{Time: t0.Add(-time.Minute)}
}

func (g *rig) reconcile(t *testing.T, name string) ctrl.Result {
	t.Helper()
	res, err := g.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}})
	require.NoError(t, err)
	return res
}

func (g *rig) get(t *testing.T, name string) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, g.c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: name}, m))
	return m
}

// drain returns the events emitted since the last drain.
func (g *rig) drain() []string {
	var out []string
	for {
		select {
		case e := <-g.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func conditionOf(m *v1alpha1.Machine, typ string) *v1alpha1.MachineCondition {
	for i := range m.Status.Conditions {
		if m.Status.Conditions[i].Type == typ {
			return &m.Status.Conditions[i]
		}
	}
	return nil
}

func TestFinalizerIsAddedFirstAndAlone(t *testing.T) {
	g := newRig(t, nil, machine("m1"))
	res := g.reconcile(t, "m1")

	assert.Equal(t, ctrl.Result{}, res)
	assert.Equal(t, []string{names.Finalizer}, g.get(t, "m1").Finalizers)
	assert.Empty(t, g.trigger.Snapshot().EnsureProvisioned, "no workflow before the finalizer is stored")
	assert.Empty(t, g.drain())
}

func TestFinalizerKeepsOthersFinalizers(t *testing.T) {
	g := newRig(t, nil, machine("m1", func(m *v1alpha1.Machine) { m.Finalizers = []string{"someone.else/keep"} }))
	g.reconcile(t, "m1")
	assert.ElementsMatch(t, []string{"someone.else/keep", names.Finalizer}, g.get(t, "m1").Finalizers)
}

func TestOtherProviderIsLeftAlone(t *testing.T) {
	g := newRig(t, nil, machine("aws", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" }))
	for range 2 {
		assert.Equal(t, ctrl.Result{}, g.reconcile(t, "aws"))
	}
	m := g.get(t, "aws")
	assert.Empty(t, m.Finalizers)
	assert.Empty(t, m.Status.Conditions)
	calls := g.trigger.Snapshot()
	assert.Empty(t, calls.EnsureProvisioned)
	assert.Empty(t, calls.EnsureDeprovisioned)
	assert.Empty(t, g.drain())
}

func TestGoneMachineIsNotAnError(t *testing.T) {
	g := newRig(t, nil)
	assert.Equal(t, ctrl.Result{}, g.reconcile(t, "absent"))
	assert.Empty(t, g.trigger.Snapshot().EnsureProvisioned)
}

func TestProvisionStartedThenRunningWithGrowingRequeue(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	g.trigger.EnsureProvisionedFunc = func(_ context.Context, m *v1alpha1.Machine) (Run, error) {
		return Run{WorkflowID: "provision/ns/m1", RunID: "r1", State: StateRunning, Started: len(g.trigger.Snapshot().EnsureProvisioned) == 1,
			Generation: m.Generation, Attempt: 1, StartTime: t0}, nil
	}

	res := g.reconcile(t, "m1")
	assert.Equal(t, time.Second, res.RequeueAfter, "a run that just started is looked at after RequeueMin")
	c := conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow)
	require.NotNil(t, c)
	assert.Equal(t, "Unknown", c.Status)
	assert.Equal(t, ReasonProvisionRunning, c.Reason)
	assert.Contains(t, c.Message, "provision/ns/m1 run r1")
	assert.Equal(t, []string{"Normal ProvisionStarted ProvisionMachine provision/ns/m1 run r1 (attempt 1) is running"}, g.drain())

	var waits []time.Duration
	for _, elapsed := range []time.Duration{3 * time.Second, 6 * time.Second, 12 * time.Second, time.Hour} {
		g.now = t0.Add(elapsed)
		waits = append(waits, g.reconcile(t, "m1").RequeueAfter)
	}
	assert.Equal(t, []time.Duration{3 * time.Second, 6 * time.Second, 12 * time.Second, 2 * time.Minute}, waits,
		"the wait grows with the run's age and is capped at RequeueMax")
	assert.Empty(t, g.drain(), "a run that stays open emits nothing more")
	assert.Len(t, g.trigger.Snapshot().EnsureProvisioned, 5)
	assert.Equal(t, MachineCall{Machine: "ns/m1", Generation: 1}, g.trigger.Snapshot().EnsureProvisioned[0])
}

func TestProvisionCompletedIsAnnouncedOnceAndNeverRequeued(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	g.reconcile(t, "m1") // the mock's default: started and running
	require.Equal(t, []string{"Normal ProvisionStarted ProvisionMachine provision/ns/m1 run mock-provision/ns/m1 (attempt 1) is running"}, g.drain())

	g.trigger.SetProvision("ns", "m1", Run{RunID: "r1", State: StateCompleted, Generation: 1, Attempt: 1})
	for range 3 {
		assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"), "a provisioned Machine is not requeued")
	}
	assert.Equal(t, []string{"Normal ProvisionCompleted ProvisionMachine provision/ns/m1 run r1 (attempt 1) completed"}, g.drain())
	m := g.get(t, "m1")
	assert.Equal(t, "True", conditionOf(m, ConditionLifecycleWorkflow).Status)
	applied := conditionOf(m, ConditionSpecApplied)
	require.NotNil(t, applied)
	assert.Equal(t, "True", applied.Status)
	assert.Equal(t, ReasonSpecApplied, applied.Reason)
	assert.Equal(t, "generation 1 is applied", applied.Message)
}

func TestSpecChangeOnRunningMachineIsRecorded(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	g.trigger.SetProvision("ns", "m1", Run{RunID: "r1", State: StateCompleted, Generation: 1, Attempt: 1})
	g.reconcile(t, "m1")
	g.drain()
	before := conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow).LastTransitionTime

	// The user edits the spec: the API server bumps the generation.
	m := g.get(t, "m1")
	m.Generation = 2
	m.Spec.MachineClass = "large"
	require.NoError(t, g.c.Update(context.Background(), m))
	g.now = t0.Add(time.Hour)
	for range 2 {
		assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"))
	}

	m = g.get(t, "m1")
	c := conditionOf(m, ConditionSpecApplied)
	require.NotNil(t, c)
	assert.Equal(t, "False", c.Status)
	assert.Equal(t, ReasonUpdateNotSupported, c.Reason)
	assert.Contains(t, c.Message, "generation 2 observed, generation 1 applied")
	assert.Equal(t, t0.Add(time.Hour), c.LastTransitionTime.UTC())
	assert.Equal(t, before, conditionOf(m, ConditionLifecycleWorkflow).LastTransitionTime, "the workflow condition did not change")
	evs := g.drain()
	require.Len(t, evs, 1, "one Event for the change, not one per reconcile")
	assert.Contains(t, evs[0], "Warning UpdateNotSupported generation 2 observed, generation 1 applied")
	assert.Equal(t, int64(2), g.trigger.Snapshot().EnsureProvisioned[1].Generation)
}

func TestProvisionFailedWaitsForTheRetry(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	retry := t0.Add(4 * time.Minute)
	g.trigger.SetProvision("ns", "m1", Run{RunID: "r1", State: StateFailed, Generation: 1, Attempt: 2,
		Failure: &Failure{Reason: "InvalidMachineSpec", Message: "Machine ns/m1: spec.disks[0].sizeGB: must be positive"}, RetryAt: retry})

	res := g.reconcile(t, "m1")
	assert.Equal(t, 4*time.Minute, res.RequeueAfter, "requeued when the Trigger will retry, not before")
	g.now = t0.Add(time.Minute)
	assert.Equal(t, 3*time.Minute, g.reconcile(t, "m1").RequeueAfter)

	c := conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow)
	require.NotNil(t, c)
	assert.Equal(t, "False", c.Status)
	assert.Equal(t, ReasonProvisionFailed, c.Reason)
	assert.Contains(t, c.Message, "InvalidMachineSpec: Machine ns/m1: spec.disks[0].sizeGB: must be positive")
	assert.Contains(t, c.Message, "next attempt at 2026-05-01T12:04:00Z")
	evs := g.drain()
	require.Len(t, evs, 1)
	assert.Contains(t, evs[0], "Warning ProvisionFailed ProvisionMachine provision/ns/m1 run r1 (attempt 2) failed")
	assert.Nil(t, conditionOf(g.get(t, "m1"), ConditionSpecApplied), "nothing was applied")

	// Past the retry time the Trigger starts attempt 3: a new run, one Event.
	g.now = retry.Add(time.Second)
	g.trigger.SetProvision("ns", "m1", Run{RunID: "r2", State: StateRunning, Started: true, Generation: 1, Attempt: 3, StartTime: g.now})
	assert.Equal(t, time.Second, g.reconcile(t, "m1").RequeueAfter)
	assert.Equal(t, []string{"Normal ProvisionStarted ProvisionMachine provision/ns/m1 run r2 (attempt 3) is running"}, g.drain())
}

func TestTriggerErrorIsReturnedWithoutSideEffects(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer))
	g.trigger.EnsureProvisionedError = errors.New("describe workflow provision/ns/m1: connection refused")
	_, err := g.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "m1"}})
	require.ErrorContains(t, err, "ensure Machine ns/m1 is provisioned: describe workflow provision/ns/m1: connection refused")
	assert.Empty(t, g.get(t, "m1").Status.Conditions)
	assert.Empty(t, g.drain())
}

func TestConflictingStatusWriteEmitsNoEventUntilItLands(t *testing.T) {
	conflicts := 1
	funcs := &interceptor.Funcs{SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
		if conflicts > 0 {
			conflicts--
			return apierrors.NewConflict(schema.GroupResource{Group: "vitistack.io", Resource: "machines"}, obj.GetName(), errors.New("the object has been modified"))
		}
		return c.SubResource(sub).Patch(ctx, obj, p, opts...)
	}}
	g := newRig(t, funcs, machine("m1", withFinalizer))
	_, err := g.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "m1"}})
	require.True(t, apierrors.IsConflict(errors.Unwrap(err)), "got %v", err)
	assert.Empty(t, g.drain(), "no Event for a condition that was not written")

	g.reconcile(t, "m1")
	assert.Len(t, g.drain(), 1)
	assert.NotNil(t, conditionOf(g.get(t, "m1"), ConditionLifecycleWorkflow))
}

func TestDeletionWaitsForDeprovisionThenReleasesTheFinalizer(t *testing.T) {
	g := newRig(t, nil, machine("m1", deleting))

	res := g.reconcile(t, "m1")
	assert.Equal(t, time.Second, res.RequeueAfter)
	assert.Equal(t, []string{"Normal DeprovisionStarted DeprovisionMachine deprovision/ns/m1 run mock-deprovision/ns/m1 (attempt 1) is running"}, g.drain())
	m := g.get(t, "m1")
	assert.Contains(t, m.Finalizers, names.Finalizer, "kept while the deprovision runs")
	assert.Equal(t, ReasonDeprovisionRunning, conditionOf(m, ConditionLifecycleWorkflow).Reason)
	assert.Empty(t, g.trigger.Snapshot().EnsureProvisioned, "a deleted Machine is never provisioned")

	g.trigger.SetDeprovision("ns", "m1", Run{RunID: "d1", State: StateRunning, Attempt: 1, StartTime: t0})
	g.now = t0.Add(20 * time.Second)
	assert.Equal(t, 20*time.Second, g.reconcile(t, "m1").RequeueAfter)
	g.now = t0.Add(time.Hour)
	assert.Equal(t, 2*time.Minute, g.reconcile(t, "m1").RequeueAfter)
	assert.Len(t, g.drain(), 1, "the new run ID is a new transition")

	g.trigger.SetDeprovision("ns", "m1", Run{RunID: "d1", State: StateCompleted, Attempt: 1, StartTime: t0})
	assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"))
	err := g.c.Get(context.Background(), types.NamespacedName{Namespace: "ns", Name: "m1"}, &v1alpha1.Machine{})
	assert.True(t, apierrors.IsNotFound(err), "the finalizer was the last one: the Machine is gone (got %v)", err)
	assert.Equal(t, []string{"Normal DeprovisionCompleted DeprovisionMachine deprovision/ns/m1 run d1 completed; finalizer machine.vitistack.io/finalizer removed"}, g.drain())
	for _, c := range g.trigger.Snapshot().EnsureDeprovisioned {
		assert.False(t, c.Force)
	}
}

func TestFailedDeprovisionIsVisibleAndRetriedWithBoundedBackoff(t *testing.T) {
	g := newRig(t, nil, machine("m1", deleting))
	g.trigger.SetDeprovision("ns", "m1", Run{RunID: "d1", State: StateFailed, Attempt: 1, CloseTime: t0,
		Failure: &Failure{Reason: "RemoteCleanupFailed", Message: "could not delete the VirtualMachine ns/m1 on kubevirt-1 within 1h0m0s"},
		RetryAt: t0.Add(time.Minute)})

	assert.Equal(t, time.Minute, g.reconcile(t, "m1").RequeueAfter)
	g.now = t0.Add(59500 * time.Millisecond)
	assert.Equal(t, time.Second, g.reconcile(t, "m1").RequeueAfter, "never sooner than RequeueMin")

	m := g.get(t, "m1")
	assert.Contains(t, m.Finalizers, names.Finalizer)
	c := conditionOf(m, ConditionLifecycleWorkflow)
	require.NotNil(t, c)
	assert.Equal(t, "False", c.Status)
	assert.Equal(t, ReasonDeprovisionFailed, c.Reason)
	assert.Contains(t, c.Message, "RemoteCleanupFailed: could not delete the VirtualMachine ns/m1")
	evs := g.drain()
	require.Len(t, evs, 1)
	assert.Contains(t, evs[0], "Warning DeprovisionFailed")

	// A Trigger that reports no retry time still does not spin.
	g.trigger.SetDeprovision("ns", "m1", Run{RunID: "d2", State: StateFailed, Attempt: 2})
	assert.Equal(t, 2*time.Minute, g.reconcile(t, "m1").RequeueAfter)
}

func TestForceAnnotationForcesTheDeprovision(t *testing.T) {
	g := newRig(t, nil, machine("m1", deleting, func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.ForceDeprovisionAnnotation: "true"}
	}))
	g.reconcile(t, "m1")
	calls := g.trigger.Snapshot().EnsureDeprovisioned
	require.Len(t, calls, 1)
	assert.True(t, calls[0].Force)
}

func TestProviderChangedAfterFinalizerStillDeprovisions(t *testing.T) {
	g := newRig(t, nil, machine("m1", withFinalizer, func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" }))
	assert.Equal(t, ctrl.Result{}, g.reconcile(t, "m1"))
	assert.Empty(t, g.trigger.Snapshot().EnsureProvisioned, "not provisioned under a foreign provider")

	require.NoError(t, g.c.Delete(context.Background(), g.get(t, "m1")))
	g.reconcile(t, "m1")
	assert.Len(t, g.trigger.Snapshot().EnsureDeprovisioned, 1, "its deletion is still cleaned up")
}

func TestMachinePredicate(t *testing.T) {
	p := MachinePredicate()
	base := machine("m1", withFinalizer)
	changed := func(f func(m *v1alpha1.Machine)) *v1alpha1.Machine {
		m := base.DeepCopy()
		f(m)
		return m
	}
	for name, tc := range map[string]struct {
		old, new *v1alpha1.Machine
		want     bool
	}{
		"status only": {base, changed(func(m *v1alpha1.Machine) {
			m.Status.Phase = "Running"
			m.Status.LastUpdated = metav1.NewTime(t0)
		}), false},
		"labels only":          {base, changed(func(m *v1alpha1.Machine) { m.Labels = map[string]string{"a": "b"} }), false},
		"generation":           {base, changed(func(m *v1alpha1.Machine) { m.Generation = 2 }), true},
		"deletion":             {base, changed(func(m *v1alpha1.Machine) { m.DeletionTimestamp = &metav1.Time{Time: t0} }), true},
		"finalizers":           {base, changed(func(m *v1alpha1.Machine) { m.Finalizers = nil }), true},
		"force annotation":     {base, changed(func(m *v1alpha1.Machine) { m.Annotations = map[string]string{names.ForceDeprovisionAnnotation: "true"} }), true},
		"other annotation":     {base, changed(func(m *v1alpha1.Machine) { m.Annotations = map[string]string{"x": "y"} }), false},
		"other provider":       {machine("a", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" }), machine("a", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws"; m.Generation = 2 }), false},
		"provider changed off": {base, changed(func(m *v1alpha1.Machine) { m.Spec.Provider = "aws"; m.Generation = 2 }), true},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, p.Update(event.UpdateEvent{ObjectOld: tc.old, ObjectNew: tc.new}))
		})
	}
	assert.True(t, p.Create(event.CreateEvent{Object: machine("new")}))
	assert.True(t, p.Create(event.CreateEvent{Object: machine("kv", func(m *v1alpha1.Machine) { m.Spec.Provider = "" })}), "empty provider is ours")
	assert.False(t, p.Create(event.CreateEvent{Object: machine("aws", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" })}))
	assert.True(t, p.Create(event.CreateEvent{Object: machine("aws", withFinalizer, func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" })}),
		"a Machine carrying our finalizer is ours whatever its provider")
	assert.False(t, p.Delete(event.DeleteEvent{Object: base}), "a Machine that is gone needs nothing: the finalizer held it until it was done")
}

// BenchmarkReconcileProvisionedMachine is the cost of one reconcile of a
// Machine whose provision completed (a spec edit, a resync): a cached Get
// and a Trigger call, no write.
func BenchmarkReconcileProvisionedMachine(b *testing.B) {
	s, err := scheme.New()
	require.NoError(b, err)
	m := machine("m1", withFinalizer)
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(m).WithStatusSubresource(&v1alpha1.Machine{}).Build()
	trigger := NewMockTrigger()
	trigger.SetProvision("ns", "m1", Run{RunID: "r1", State: StateCompleted, Generation: 1, Attempt: 1})
	r := &MachineReconciler{Client: c, Trigger: trigger, Recorder: events.NewFakeRecorder(10)}
	req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "m1"}}
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, req); err != nil { // writes the conditions once
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.Reconcile(ctx, req)
		if err != nil || res != (ctrl.Result{}) {
			b.Fatalf("reconcile: %v %v", res, err)
		}
	}
}
