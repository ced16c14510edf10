package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
)

func TestMockTriggerStartsOnceUnderConcurrency(t *testing.T) {
	mock := NewMockTrigger()
	m := testMachine("m1")
	var started atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			run, err := mock.EnsureProvisioned(context.Background(), m)
			if err == nil && run.Started {
				started.Add(1)
			}
			_ = mock.Snapshot()
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), started.Load(), "like the real Trigger, one call starts the run")
	assert.Len(t, mock.Snapshot().EnsureProvisioned, 32)
	mock.ResetCallTracking()
	assert.Empty(t, mock.Snapshot().EnsureProvisioned)
}

func TestMockTriggerPrecedence(t *testing.T) {
	ctx := context.Background()
	mock := NewMockTrigger()
	m := testMachine("m1")

	mock.SetDeprovision("ns", "m1", Run{RunID: "d1", State: StateCompleted})
	run, err := mock.EnsureDeprovisioned(ctx, m, true)
	require.NoError(t, err)
	assert.Equal(t, Run{WorkflowID: "deprovision/ns/m1", RunID: "d1", State: StateCompleted}, run)

	mock.EnsureDeprovisionedError = errors.New("injected")
	_, err = mock.EnsureDeprovisioned(ctx, m, false)
	require.EqualError(t, err, "injected")

	mock.EnsureDeprovisionedFunc = func(ctx context.Context, machine *v1alpha1.Machine, force bool) (Run, error) {
		// A hook may call back into the mock.
		return mock.EnsureProvisioned(ctx, machine)
	}
	run, err = mock.EnsureDeprovisioned(ctx, m, false)
	require.NoError(t, err)
	assert.Equal(t, "provision/ns/m1", run.WorkflowID)

	want := Progress{Provision: &Run{State: StateCompleted}}
	mock.SetProgress("ns", "m1", want)
	p, err := mock.Progress(ctx, "ns", "m1")
	require.NoError(t, err)
	assert.Equal(t, want, p)

	calls := mock.Snapshot()
	assert.Equal(t, []MachineCall{{Machine: "ns/m1", Generation: 1, Force: true}, {Machine: "ns/m1", Generation: 1}, {Machine: "ns/m1", Generation: 1}},
		calls.EnsureDeprovisioned)
	assert.Len(t, calls.EnsureProvisioned, 1)
	assert.Equal(t, []string{"ns/m1"}, calls.Progress)
}

func TestMockTriggerAwaitClose(t *testing.T) {
	ctx := context.Background()
	mock := NewMockTrigger()
	m := testMachine("m1")
	run, err := mock.EnsureDeprovisioned(ctx, m, false)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, mock.AwaitClose(short, run), context.DeadlineExceeded, "a default run never closes")

	closed := make(chan error, 1)
	go func() { closed <- mock.AwaitClose(ctx, run) }()
	mock.SetProvision("ns", "m1", Run{RunID: "p1", State: StateCompleted})
	mock.SetDeprovision("ns", "m1", Run{RunID: run.RunID, State: StateCompleted})
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("AwaitClose did not return when its run was set completed")
	}
	require.NoError(t, mock.AwaitClose(ctx, run), "closed already")
	assert.Equal(t, []Run{run, run, run}, mock.Snapshot().AwaitClose)
}
