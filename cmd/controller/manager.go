package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/go-logr/logr"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/machineflow/machineflow/internal/scheme"
	"github.com/machineflow/machineflow/internal/supervisor"
)

// managerModule provides the controller-runtime manager and runs it for
// the app's lifetime.
var managerModule = fx.Module("manager", fx.Provide(newManager))

// newManager builds the manager on the supervisor: leader election
// through a Lease (released on stop, so a new replica takes over at
// once), /healthz, /readyz (the Temporal frontend answers) and /metrics.
// If the manager stops on its own (lost leadership, a failed server), the
// app shuts down with status 1 and the Deployment restarts the pod.
func newManager(lc fx.Lifecycle, sd fx.Shutdowner, o managerOptions, sup supervisor.Options, log logr.Logger, tc client.Client) (ctrl.Manager, error) {
	cfg, err := supervisor.RESTConfig(sup)
	if err != nil {
		return nil, err
	}
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	// Set when the app stops the manager: a clean stop, not a failure.
	stopping := &atomic.Bool{}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        s,
		Logger:                        logr.New(cleanStopSink{LogSink: log.GetSink(), stopping: stopping}),
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddress},
		HealthProbeBindAddress:        o.ProbeAddress,
		LeaderElection:                o.LeaderElect,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(o.StopTimeout),
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager for %s: %w", cfg.Host, err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add /healthz check: %w", err)
	}
	// Reconciles need Temporal; the supervisor's reachability shows in
	// the manager's own start-up (cache sync).
	err = mgr.AddReadyzCheck("temporal", func(r *http.Request) error {
		if _, err := tc.CheckHealth(r.Context(), &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("temporal frontend: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add /readyz check: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				err := mgr.Start(ctx)
				done <- err
				if err != nil && ctx.Err() == nil {
					log.Error(err, "Controller manager stopped")
					_ = sd.Shutdown(fx.ExitCode(1))
				}
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			stopping.Store(true)
			cancel()
			select {
			case err := <-done:
				return err
			case <-stop.Done():
				return fmt.Errorf("controller manager did not stop in time: %w", stop.Err())
			}
		},
	})
	return mgr, nil
}

// errLeaseReleased is how the manager's leader elector reports the end of
// its leadership, whatever the cause.
const errLeaseReleased = "leader election lost"

// cleanStopSink is the manager's log sink. On a clean stop the manager
// releases its Lease (LeaderElectionReleaseOnCancel), its elector reports
// that as the error "leader election lost", and the manager logs it as an
// error received after its stop began (controller-runtime issue 3535).
// While the app is stopping, that line becomes an info line; a lease lost
// while running is not affected: it stops the manager, and the app exits
// with status 1.
type cleanStopSink struct {
	logr.LogSink
	stopping *atomic.Bool
}

func (s cleanStopSink) Error(err error, msg string, kv ...any) {
	if err != nil && err.Error() == errLeaseReleased && s.stopping.Load() {
		if s.Enabled(0) {
			s.LogSink.Info(0, "Released the leader election lease on stop", kv...)
		}
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s cleanStopSink) WithValues(kv ...any) logr.LogSink {
	return cleanStopSink{LogSink: s.LogSink.WithValues(kv...), stopping: s.stopping}
}

func (s cleanStopSink) WithName(name string) logr.LogSink {
	return cleanStopSink{LogSink: s.LogSink.WithName(name), stopping: s.stopping}
}
