package controller

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
)

// fakeRuns is an AwaitClose whose runs close when the test says so;
// "broken" runs cannot be followed.
type fakeRuns struct {
	mu     sync.Mutex
	closed map[string]chan struct{}
	calls  []string
}

func (f *fakeRuns) ch(runID string) chan struct{} {
	if f.closed[runID] == nil {
		f.closed[runID] = make(chan struct{})
	}
	return f.closed[runID]
}

func (f *fakeRuns) await(ctx context.Context, run Run) error {
	f.mu.Lock()
	f.calls = append(f.calls, run.RunID)
	ch := f.ch(run.RunID)
	f.mu.Unlock()
	if strings.HasPrefix(run.RunID, "broken") {
		return errors.New("run not found")
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeRuns) close(runID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.ch(runID))
}

func (f *fakeRuns) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// waitersRunning is the gauge, once it settles on want. A waiter
// enqueues before it leaves the gauge, so once the gauge has dropped the
// queue holds whatever the ended waiters added.
func waitersRunning(t *testing.T, want float64) {
	t.Helper()
	require.Eventually(t, func() bool { return testutil.ToFloat64(runWaitersGauge) == want },
		10*time.Second, 10*time.Millisecond, "machineflow_controller_run_waiters: got %v, want %v", testutil.ToFloat64(runWaitersGauge), want)
}

// waiterGoroutines counts the goroutines running a waiter.
func waiterGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "(*runWaiters).follow.func")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// awaited waits until the runs awaited so far number want.
func awaited(t *testing.T, runs *fakeRuns, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return runs.callCount() == want }, 10*time.Second, time.Millisecond,
		"runs awaited: got %d, want %d", runs.callCount(), want)
}

func openRun(id string) Run {
	return Run{WorkflowID: "provision/ns/" + id, RunID: id, State: StateRunning}
}

func TestRunWaiters(t *testing.T) {
	require.Zero(t, testutil.ToFloat64(runWaitersGauge))
	runs := &fakeRuns{closed: map[string]chan struct{}{}}
	w := newRunWaiters(runs.await, 3, logr.Discard())
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }

	w.follow(key("early"), openRun("r0"), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- w.Start(ctx) }()
	require.NoError(t, w.source().Start(ctx, q))
	require.Eventually(t, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.ctx != nil }, 10*time.Second, time.Millisecond)
	assert.Zero(t, runs.callCount(), "nothing is awaited before the manager runs")

	w.follow(key("a"), openRun("r1"), time.Hour)
	w.follow(key("a"), openRun("r1"), time.Minute)
	w.follow(key("b"), openRun("r2"), time.Hour)
	waitersRunning(t, 2)
	awaited(t, runs, 2)

	runs.close("r1")
	waitersRunning(t, 1)
	require.Equal(t, 1, q.Len())
	got, _ := q.Get()
	assert.Equal(t, key("a"), got.NamespacedName, "the Machine of the closed run is queued")
	q.Done(got)

	w.follow(key("b"), openRun("r3"), time.Hour)
	waitersRunning(t, 1)
	runs.close("r2")
	w.follow(key("c"), openRun("r4"), time.Hour)
	w.follow(key("d"), openRun("r5"), time.Hour)
	w.follow(key("e"), openRun("r6"), time.Hour)
	waitersRunning(t, 3)
	awaited(t, runs, 5) // b's new run replaced its waiter; e is over the limit
	assert.Zero(t, q.Len(), "the replaced waiter of b's old run queued nothing")

	w.forget(key("b"))
	w.forget(key("c"))
	waitersRunning(t, 1)
	runs.close("r3")
	runs.close("r4")
	w.follow(key("f"), openRun("r7"), 50*time.Millisecond)
	w.follow(key("g"), openRun("broken"), time.Hour)
	waitersRunning(t, 1)
	assert.Zero(t, q.Len(), "forgotten, expired and broken waiters queue nothing")

	cancel()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	assert.Zero(t, testutil.ToFloat64(runWaitersGauge), "Start returns after the last waiter")
	assert.Zero(t, waiterGoroutines())
	w.follow(key("h"), openRun("r8"), time.Hour)
	assert.Zero(t, testutil.ToFloat64(runWaitersGauge), "nothing is awaited after the manager stopped")
}

// TestClosedRunIsReconciledAtOnce runs the reconciler in a manager on a
// real API server with requeues of ten minutes or more: only its waiters
// can explain a Machine updated, or released, right after its run closed.
func TestClosedRunIsReconciledAtOnce(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	env := testenv.New(t, testenv.Options{SupervisorOnly: true})
	c := env.Supervisor.Client
	ctx := t.Context()
	trigger := NewMockTrigger()
	mgr, err := ctrl.NewManager(env.Supervisor.Config, ctrl.Options{
		Scheme: env.Scheme, Logger: logr.Discard(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	require.NoError(t, err)
	r := &MachineReconciler{Trigger: trigger, RequeueMin: 10 * time.Minute, RequeueMax: time.Hour}
	require.NoError(t, r.SetupWithManager(mgr, crcontroller.Options{SkipNameValidation: ptr.To(true)}))
	mctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()

	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}))
	create := func(name string) {
		require.NoError(t, c.Create(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: v1alpha1.MachineSpec{Provider: v1alpha1.MachineProviderType(names.ProviderKubevirt)}}))
	}
	get := func(name string) (*v1alpha1.Machine, error) {
		m := &v1alpha1.Machine{}
		return m, c.Get(ctx, types.NamespacedName{Namespace: "ns", Name: name}, m)
	}
	reason := func(name string) string {
		m, err := get(name)
		if cond := conditionOf(m, ConditionLifecycleWorkflow); err == nil && cond != nil {
			return cond.Reason
		}
		return ""
	}
	// Bounds far below RequeueMin, and generous for a busy machine.
	const soon = 60 * time.Second

	create("m1")
	require.Eventually(t, func() bool { return reason("m1") == ReasonProvisionRunning }, soon, 20*time.Millisecond)
	waitersRunning(t, 1)
	trigger.SetProvision("ns", "m1", Run{RunID: "mock-provision/ns/m1", State: StateCompleted, Generation: 1, Attempt: 1})
	require.Eventually(t, func() bool { return reason("m1") == ReasonProvisionCompleted }, soon, 20*time.Millisecond,
		"the completed provision reached the Machine before its requeue")
	waitersRunning(t, 0)

	m1, err := get("m1")
	require.NoError(t, err)
	require.NoError(t, c.Delete(ctx, m1))
	require.Eventually(t, func() bool { return reason("m1") == ReasonDeprovisionRunning }, soon, 20*time.Millisecond)
	waitersRunning(t, 1)
	trigger.SetDeprovision("ns", "m1", Run{RunID: "mock-deprovision/ns/m1", State: StateCompleted, Attempt: 1})
	require.Eventually(t, func() bool { _, err := get("m1"); return apierrors.IsNotFound(err) }, soon, 20*time.Millisecond,
		"the finalizer was released before the requeue")
	waitersRunning(t, 0)

	// A run still open when the manager stops: its waiter ends with it.
	create("m2")
	require.Eventually(t, func() bool { return reason("m2") == ReasonProvisionRunning }, soon, 20*time.Millisecond)
	waitersRunning(t, 1)
	assert.Equal(t, 1, waiterGoroutines())
	stop()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the manager did not stop")
	}
	assert.Zero(t, testutil.ToFloat64(runWaitersGauge), "the manager stops after its waiters")
	assert.Zero(t, waiterGoroutines())
}
