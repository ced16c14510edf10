// Package background runs a function for as long as an fx application
// runs: started in its own goroutine by OnStart, cancelled and waited for
// by OnStop. The worker's MachineProvider registration and mock mode's
// KubeVirt simulators are such functions.
//
// OnStart never waits for the function, so a slow or failing background
// task delays no start-up; what it reports, it logs. OnStop waits for it
// to return, bounded by fx's stop timeout, so nothing it does outlives the
// application unnoticed: a function that ignores its cancellation fails
// the stop, naming it.
package background

import (
	"context"
	"fmt"

	"go.uber.org/fx"
)

// Go runs fn from lc's start until its stop. what names fn in the error
// of a stop that fn does not finish in time ("MachineProvider
// registration did not stop: context deadline exceeded").
func Go(lc fx.Lifecycle, what string, fn func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				fn(ctx)
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-stop.Done():
				return fmt.Errorf("%s did not stop: %w", what, stop.Err())
			}
		},
	})
}
