package controller

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	ctrl "sigs.k8s.io/controller-runtime"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
)

// ModuleOptions configure Module.
type ModuleOptions struct {
	Trigger TemporalTriggerOptions
	// MaxConcurrentReconciles is how many Machines are reconciled at once.
	MaxConcurrentReconciles int
	// ReconcileTimeout bounds one reconcile; zero means
	// DefaultReconcileTimeout.
	ReconcileTimeout time.Duration
	// RequeueMin, RequeueMax and MaxRunWaiters go to MachineReconciler.
	RequeueMin, RequeueMax time.Duration
	MaxRunWaiters          int
}

// Module provides a TemporalTrigger as the graph's Trigger, built on its
// Temporal client.Client, and registers a MachineReconciler with its
// ctrl.Manager. Both are configured by the ModuleOptions in the graph.
var Module = fx.Module("controller",
	fx.Provide(func(c client.Client, o ModuleOptions) (Trigger, error) { return NewTemporalTrigger(c, o.Trigger) }),
	fx.Invoke(func(mgr ctrl.Manager, t Trigger, o ModuleOptions) error {
		r := &MachineReconciler{Trigger: t, RequeueMin: o.RequeueMin, RequeueMax: o.RequeueMax, MaxRunWaiters: o.MaxRunWaiters}
		return r.SetupWithManager(mgr, crcontroller.Options{
			MaxConcurrentReconciles: o.MaxConcurrentReconciles,
			ReconciliationTimeout:   o.ReconcileTimeout,
		})
	}),
)
