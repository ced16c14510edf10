package controller

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// DefaultMaxRunWaiters is MachineReconciler.MaxRunWaiters when unset.
const DefaultMaxRunWaiters = 500

// runWaitersGauge counts the waiters running; it lives in
// controller-runtime's registry, which the manager serves on /metrics.
var runWaitersGauge = prometheus.NewGauge(prometheus.GaugeOpts{
	Name: "machineflow_controller_run_waiters",
	Help: "Open workflow runs the Machine controller is waiting on, to reconcile their Machine the moment they close.",
})

func init() { crmetrics.Registry.MustRegister(runWaitersGauge) }

// runWaiters end the lag between a run closing and its Machine being
// reconciled: for each Machine whose reconcile reported an open run, one
// goroutine waits (Trigger.AwaitClose) until the run closes, then adds
// the Machine to the controller's queue. A waiter lives no longer than
// the Machine's requeue, which starts the next one, so the requeue
// remains the safety net and nothing depends on a waiter: one missing
// (the limit reached, the manager not yet started, an error) only means
// the requeue notices the close, as it did without waiters.
//
// It is a manager.Runnable (in the leader-election group, like the
// controller), and Start returns only once every waiter has ended.
type runWaiters struct {
	await func(context.Context, Run) error
	limit int
	log   logr.Logger

	mu sync.Mutex
	// ctx is the manager's while Start runs; waiters derive from it.
	ctx context.Context
	// queue is the controller's, from source.
	queue   workqueue.TypedRateLimitingInterface[reconcile.Request]
	waiting map[types.NamespacedName]*waiter
	wg      sync.WaitGroup
}

// waiter is the one goroutine waiting for a Machine's run.
type waiter struct {
	workflowID, runID string
	deadline          time.Time
	cancel            context.CancelFunc
}

func newRunWaiters(await func(context.Context, Run) error, limit int, log logr.Logger) *runWaiters {
	return &runWaiters{await: await, limit: limit, log: log, waiting: map[types.NamespacedName]*waiter{}}
}

// Start implements manager.Runnable.
func (w *runWaiters) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.ctx = nil
	w.mu.Unlock()
	// No waiter starts any more (follow sees no ctx), and the running
	// ones were cancelled with ctx.
	w.wg.Wait()
	return nil
}

// source is the controller's watch that hands the waiters its queue.
func (w *runWaiters) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.queue = q
		return nil
	})
}

// forget ends the Machine's waiter, if any: its run closed, or the
// Machine is gone.
func (w *runWaiters) forget(key types.NamespacedName) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.waiting[key]; old != nil {
		old.cancel()
		delete(w.waiting, key)
	}
}

// follow awaits the close of run, open, until horizon, for a Machine
// whose reconcile will look at it again within horizon. A waiter already
// following the run that long is kept; one following something else is
// replaced.
func (w *runWaiters) follow(key types.NamespacedName, run Run, horizon time.Duration) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.waiting[key]
	deadline := time.Now().Add(horizon)
	if old != nil && old.workflowID == run.WorkflowID && old.runID == run.RunID && !old.deadline.Before(deadline) {
		return
	}
	if w.ctx == nil || w.queue == nil || (old == nil && len(w.waiting) >= w.limit) {
		return
	}
	if old != nil {
		old.cancel()
	}
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	me := &waiter{workflowID: run.WorkflowID, runID: run.RunID, deadline: deadline, cancel: cancel}
	w.waiting[key] = me
	queue := w.queue
	w.wg.Add(1)
	runWaitersGauge.Inc()
	go func() {
		defer w.wg.Done()
		defer runWaitersGauge.Dec()
		err := w.await(ctx, run)
		ended := ctx.Err()
		cancel()
		w.mu.Lock()
		if w.waiting[key] == me {
			delete(w.waiting, key)
		}
		w.mu.Unlock()
		switch {
		case err == nil:
			queue.Add(reconcile.Request{NamespacedName: key})
		case ended == nil:
			w.log.Info("Stopped waiting for a run to close; the Machine's requeue will look at it",
				"machine", key.String(), "workflowId", run.WorkflowID, "runId", run.RunID, "error", err.Error())
		}
	}()
}
