package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/machineflow/machineflow/controller/decide"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/workflows"
)

// Defaults of MachineReconciler.
const (
	DefaultRequeueMin       = 2 * time.Second
	DefaultRequeueMax       = 2 * time.Minute
	DefaultReconcileTimeout = 30 * time.Second
	// ControllerName names the controller, its metrics and its Events.
	ControllerName = "machineflow-machine"
	// maxEventNote is below the 1 kB events.k8s.io limit on notes.
	maxEventNote = 1000
)

// MachineReconciler drives Machines through their lifecycle workflows: it
// adds the finalizer, ensures ProvisionMachine, and on deletion ensures
// DeprovisionMachine and releases the finalizer once that completed. See
// doc.go for what triggers a reconcile and when it requeues.
type MachineReconciler struct {
	// Client reads Machines (a cached client is enough: every write is a
	// patch guarded by the resourceVersion it read).
	Client  client.Client
	Trigger Trigger
	// Recorder receives the Events on Machines.
	Recorder events.EventRecorder
	// RequeueMin and RequeueMax bound the wait before looking again at an
	// open workflow; zero means DefaultRequeueMin and DefaultRequeueMax.
	RequeueMin, RequeueMax time.Duration
	// MaxRunWaiters bounds the open runs whose close is awaited at once
	// (Trigger.AwaitClose; see doc.go); zero means DefaultMaxRunWaiters,
	// negative none: the requeues alone then notice that runs closed.
	MaxRunWaiters int
	// Clock defaults to time.Now.
	Clock func() time.Time

	// waiters, set up by SetupWithManager, reconcile a Machine when its
	// open run closes; nil without a manager.
	waiters *runWaiters
}

// SetupWithManager registers the reconciler for Machines with mgr, and
// its run waiters (unless MaxRunWaiters is negative) as a runnable and a
// watch of the controller. Unset Client and Recorder come from the
// manager; opts.ReconciliationTimeout defaults to DefaultReconcileTimeout
// so that a Temporal call that hangs cannot hold a worker.
func (r *MachineReconciler) SetupWithManager(mgr ctrl.Manager, opts crcontroller.Options) error {
	if r.Trigger == nil {
		return fmt.Errorf("machine reconciler: Trigger is nil")
	}
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorder(ControllerName)
	}
	if opts.ReconciliationTimeout == 0 {
		opts.ReconciliationTimeout = DefaultReconcileTimeout
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.Machine{}, builder.WithPredicates(MachinePredicate())).
		WithOptions(opts)
	r.waiters = nil
	if limit := r.MaxRunWaiters; limit >= 0 {
		if limit == 0 {
			limit = DefaultMaxRunWaiters
		}
		r.waiters = newRunWaiters(r.Trigger.AwaitClose, limit, mgr.GetLogger().WithName(ControllerName).WithName("run-waiters"))
		if err := mgr.Add(r.waiters); err != nil {
			return fmt.Errorf("machine reconciler: add the run waiters: %w", err)
		}
		b = b.WatchesRawSource(r.waiters.source())
	}
	return b.Complete(r)
}

// MachinePredicate passes the Machine events a reconcile acts on: Machines
// of ours (provider "" or kubevirt, or carrying our finalizer) when they
// appear, and changes to their generation, deletion, finalizers, provider,
// names.ForceDeprovisionAnnotation or the ISO cleanup annotations
// (isoAnnotations). Status-only updates, which the workflows write, do not
// pass.
func MachinePredicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(e event.CreateEvent) bool { return ours(e.Object) },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(e event.GenericEvent) bool { return ours(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if !ours(e.ObjectNew) && !ours(e.ObjectOld) {
				return false
			}
			o, n := e.ObjectOld, e.ObjectNew
			return o.GetGeneration() != n.GetGeneration() ||
				o.GetDeletionTimestamp().IsZero() != n.GetDeletionTimestamp().IsZero() ||
				!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
				slices.ContainsFunc(watchedAnnotations, func(a string) bool { return o.GetAnnotations()[a] != n.GetAnnotations()[a] })
		},
	}
}

// watchedAnnotations are the Machine annotations a reconcile acts on.
var watchedAnnotations = []string{
	names.ForceDeprovisionAnnotation,
	names.CDROMEjectedAnnotation, names.OSInstalledAnnotation, names.ISOCleanedUpAnnotation,
}

// ours: a Machine this controller handles or has handled.
func ours(obj client.Object) bool {
	m, ok := obj.(*v1alpha1.Machine)
	return ok && (names.HandlesProvider(string(m.Spec.Provider)) || controllerutil.ContainsFinalizer(m, names.Finalizer))
}

// Reconcile implements reconcile.Reconciler.
func (r *MachineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	m := &v1alpha1.Machine{}
	if err := r.Client.Get(ctx, req.NamespacedName, m); err != nil {
		if apierrors.IsNotFound(err) {
			r.waiters.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	switch decide.ForMachine(decide.Machine{
		Deleting:     !m.DeletionTimestamp.IsZero(),
		HasFinalizer: controllerutil.ContainsFinalizer(m, names.Finalizer),
		OurProvider:  names.HandlesProvider(string(m.Spec.Provider)),
	}) {
	case decide.EnsureDeprovisioned:
		return r.reconcileDelete(ctx, m)
	case decide.AddFinalizer:
		return ctrl.Result{}, r.patchFinalizer(ctx, m, true)
	case decide.EnsureProvisioned:
		return r.reconcileProvision(ctx, m)
	}
	return ctrl.Result{}, nil
}

func (r *MachineReconciler) reconcileProvision(ctx context.Context, m *v1alpha1.Machine) (ctrl.Result, error) {
	run, err := r.Trigger.EnsureProvisioned(ctx, m)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("ensure Machine %s/%s is provisioned: %w", m.Namespace, m.Name, err)
	}
	conds := []condition{workflowCondition(provisionKind, run)}
	if run.State == StateCompleted && run.Generation != 0 {
		conds = append(conds, specAppliedCondition(m, run))
	}
	if err := r.setConditions(ctx, m, workflows.ProvisionMachineName, conds...); err != nil {
		return ctrl.Result{}, err
	}
	if !wantsISOEjected(m, run) {
		return r.requeue(m, run), nil
	}
	iso, err := r.Trigger.EnsureISOEjected(ctx, m)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("ensure the ISO of Machine %s/%s is ejected: %w", m.Namespace, m.Name, err)
	}
	if err := r.setConditions(ctx, m, workflows.EjectISOName, workflowCondition(ejectISOKind, iso)); err != nil {
		return ctrl.Result{}, err
	}
	return r.requeue(m, iso), nil
}

// wantsISOEjected says whether to ensure EjectISO: the Machine is Running
// (its provision completed) and its annotations ask for the ISO to go, or
// an EjectISO run it reported open has not been seen to end yet. The
// latter matters because the run annotates the Machine before it
// completes: without it, the completion would never reach the condition.
func wantsISOEjected(m *v1alpha1.Machine, provision Run) bool {
	for _, c := range m.Status.Conditions {
		if c.Type == ConditionISOEjected && c.Status == string(metav1.ConditionUnknown) {
			return true
		}
	}
	return provision.State == StateCompleted && m.Status.Phase == v1alpha1.MachinePhaseRunning &&
		names.ISOCleanupPending(m.Annotations)
}

func (r *MachineReconciler) reconcileDelete(ctx context.Context, m *v1alpha1.Machine) (ctrl.Result, error) {
	force := m.Annotations[names.ForceDeprovisionAnnotation] == "true"
	run, err := r.Trigger.EnsureDeprovisioned(ctx, m, force)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("ensure Machine %s/%s is deprovisioned: %w", m.Namespace, m.Name, err)
	}
	if run.State != StateCompleted {
		if err := r.setConditions(ctx, m, workflows.DeprovisionMachineName, workflowCondition(deprovisionKind, run)); err != nil {
			return ctrl.Result{}, err
		}
		return r.requeue(m, run), nil
	}
	if err := r.patchFinalizer(ctx, m, false); err != nil {
		return ctrl.Result{}, err
	}
	ctrl.LoggerFrom(ctx).Info("Released the finalizer after deprovisioning", "workflowId", run.WorkflowID, "runId", run.RunID)
	r.Recorder.Eventf(m, nil, corev1.EventTypeNormal, EventDeprovisionCompleted, workflows.DeprovisionMachineName,
		"%s %s run %s completed; finalizer %s removed", workflows.DeprovisionMachineName, run.WorkflowID, run.RunID, names.Finalizer)
	return r.requeue(m, run), nil
}

// requeue says when to look at the Machine's run again (decide.Requeue,
// within [RequeueMin, RequeueMax]) and follows an open run's close until
// then; the requeue is the safety net of the waiter.
func (r *MachineReconciler) requeue(m *v1alpha1.Machine, run Run) ctrl.Result {
	lo, hi := r.requeueBounds()
	after, follow := decide.Requeue(run.State.decided(), run.StartTime, run.RetryAt, r.now(), lo, hi)
	key := client.ObjectKeyFromObject(m)
	if follow > 0 {
		r.waiters.follow(key, run, follow)
	} else {
		r.waiters.forget(key)
	}
	return ctrl.Result{RequeueAfter: after}
}

// setConditions writes the conditions that changed in one status patch,
// then emits an Event per change. The patch carries the resourceVersion
// read, so a concurrent status write by a workflow makes it fail and the
// reconcile retry, rather than one dropping the other's conditions.
func (r *MachineReconciler) setConditions(ctx context.Context, m *v1alpha1.Machine, action string, conds ...condition) error {
	base := m.DeepCopy()
	var changed []condition
	quiet := map[condition]bool{}
	now := r.now()
	for _, c := range conds {
		prev := conditionOfType(m.Status.Conditions, c.Type)
		if setCondition(&m.Status.Conditions, c, now) {
			changed = append(changed, c)
			quiet[c] = c.quiet(prev)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("write conditions of Machine %s/%s: %w", m.Namespace, m.Name, err)
	}
	log := ctrl.LoggerFrom(ctx)
	for _, c := range changed {
		log.Info("Machine condition changed", "type", c.Type, "status", c.Status, "reason", c.Reason, "message", c.Message)
		eventType, reason, ok := c.event()
		if !ok || quiet[c] {
			continue
		}
		note := c.Message
		if len(note) > maxEventNote {
			// Cut on a rune boundary: a split UTF-8 sequence would make the
			// API server reject the Event.
			note = strings.ToValidUTF8(note[:maxEventNote], "")
		}
		r.Recorder.Eventf(m, nil, eventType, reason, action, "%s", note)
	}
	return nil
}

// patchFinalizer adds or removes our finalizer with a patch guarded by the
// resourceVersion read, so no one else's finalizer is lost.
func (r *MachineReconciler) patchFinalizer(ctx context.Context, m *v1alpha1.Machine, add bool) error {
	base := m.DeepCopy()
	verb := "add"
	if add {
		controllerutil.AddFinalizer(m, names.Finalizer)
	} else {
		verb = "remove"
		controllerutil.RemoveFinalizer(m, names.Finalizer)
	}
	if err := r.Client.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("%s finalizer %s on Machine %s/%s: %w", verb, names.Finalizer, m.Namespace, m.Name, err)
	}
	return nil
}

func (r *MachineReconciler) requeueBounds() (time.Duration, time.Duration) {
	lo, hi := r.RequeueMin, r.RequeueMax
	if lo <= 0 {
		lo = DefaultRequeueMin
	}
	if hi <= 0 {
		hi = DefaultRequeueMax
	}
	return lo, max(lo, hi)
}

func (r *MachineReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}
