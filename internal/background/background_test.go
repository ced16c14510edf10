package background

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"
)

func TestRunsFromStartToStop(t *testing.T) {
	lc := fxtest.NewLifecycle(t)
	started, returned := make(chan struct{}), make(chan error, 1)
	Go(lc, "the task", func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		returned <- ctx.Err()
	})
	select {
	case <-started:
		t.Fatal("the task ran before the start")
	default:
	}
	lc.RequireStart()
	<-started
	select {
	case err := <-returned:
		t.Fatalf("the task returned before the stop: %v", err)
	default:
	}
	lc.RequireStop()
	select {
	case err := <-returned:
		assert.ErrorIs(t, err, context.Canceled, "the stop cancels the task's context")
	default:
		t.Fatal("the stop returned before the task did")
	}
}

func TestStopNamesATaskThatDoesNotFinish(t *testing.T) {
	lc := fxtest.NewLifecycle(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	Go(lc, "the stubborn task", func(context.Context) { <-release })
	require.NoError(t, lc.Start(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := lc.Stop(ctx)
	require.EqualError(t, err, "the stubborn task did not stop: context deadline exceeded")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the cause is wrapped")
}

func TestATaskThatEndsEarlyStopsCleanly(t *testing.T) {
	lc := fxtest.NewLifecycle(t)
	ran := make(chan struct{})
	Go(lc, "the short task", func(context.Context) { close(ran) })
	lc.RequireStart()
	<-ran
	lc.RequireStop()
}
