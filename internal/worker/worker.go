// Package worker runs the Temporal worker of machineflow: it polls the
// task queue for the workflows, the control activity they need and
// every machine activity.
//
// The activities are registered as one struct (RegisterActivity on
// *activities.Activities), so each exported method is an activity under
// its method name, the names the workflows schedule (activities.*Name).
//
// Start is non-blocking (worker.Start) in fx's OnStart; OnStop calls
// worker.Stop, which stops polling at once and waits up to
// WORKER_STOP_TIMEOUT for running activities before cancelling them. An
// activity cut short is retried by Temporal on another worker, which is
// safe because every activity is idempotent. fx's own stop timeout must be
// longer than StopTimeout (cmd/worker sets it), or fx would give up first.
//
// Task pollers scale (see pollerBehavior): the SDK's default of two fixed
// pollers per kind left tasks of a 50-activity health check waiting 1-2 s
// in task queue partitions no poller was on.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/internal/observability"
	"github.com/machineflow/machineflow/workflows"
)

// Options of the worker.
type Options struct {
	// TaskQueue is polled for workflow and activity tasks (TASK_QUEUE).
	TaskQueue string
	// StopTimeout bounds how long running activities may take to finish
	// on stop (WORKER_STOP_TIMEOUT).
	StopTimeout time.Duration
	// MaxTaskPollers caps the concurrent polls per kind of task, workflow
	// and activity (MAX_TASK_POLLERS); zero means DefaultMaxTaskPollers.
	MaxTaskPollers int
}

// DefaultMaxTaskPollers is the SDK's own cap for poller autoscaling.
const DefaultMaxTaskPollers = 100

// pollerBehavior is poller autoscaling, which Temporal recommends over
// fixed counts: it starts with five polls and follows the server's
// feedback, up under a backlog (a health check schedules an activity per
// cluster at once), down to one on an idle queue, and it keeps a poll
// open wherever the server says tasks may wait. Operators only cap it,
// to bound the long polls each replica holds on the frontend; initial and
// minimum counts stay the SDK's, since hand-tuned counts are what
// autoscaling replaces. A server older than 1.28 sends no feedback, and
// the worker keeps its five polls, still more than the fixed two.
func pollerBehavior(maxPollers int) worker.PollerBehavior {
	return worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{MaximumNumberOfPollers: maxPollers})
}

// Params are the graph's inputs of the worker.
type Params struct {
	fx.In

	Lifecycle  fx.Lifecycle
	Options    Options
	Client     client.Client
	Activities *activities.Activities
	Readiness  *observability.Readiness
	Logger     *slog.Logger
}

// New creates the worker with everything registered, adds its readiness
// checks and hooks it to the lifecycle.
func New(p Params) worker.Worker {
	w := worker.New(p.Client, p.Options.TaskQueue, worker.Options{
		WorkerStopTimeout:          p.Options.StopTimeout,
		WorkflowTaskPollerBehavior: pollerBehavior(p.Options.MaxTaskPollers),
		ActivityTaskPollerBehavior: pollerBehavior(p.Options.MaxTaskPollers),
	})
	workflows.Register(w, &workflows.ControlActivities{Client: p.Client})
	w.RegisterActivity(p.Activities)

	log := p.Logger.With("taskQueue", p.Options.TaskQueue)
	var polling atomic.Bool
	p.Readiness.Add("worker", func(context.Context) error {
		if !polling.Load() {
			return errors.New("not polling")
		}
		return nil
	})
	p.Readiness.Add("temporal", func(ctx context.Context) error {
		_, err := p.Client.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := w.Start(); err != nil {
				return fmt.Errorf("starting the Temporal worker on task queue %s: %w", p.Options.TaskQueue, err)
			}
			polling.Store(true)
			log.Info("Worker polling")
			return nil
		},
		OnStop: func(context.Context) error {
			polling.Store(false)
			log.Info("Worker stopping: no new tasks, running activities get the stop timeout", "stopTimeout", p.Options.StopTimeout)
			w.Stop()
			log.Info("Worker stopped")
			return nil
		},
	})
	return w
}

// Module provides and starts the worker.
var Module = fx.Module("worker",
	fx.Provide(New),
	fx.Invoke(func(worker.Worker) {}),
)
