package workflows

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
)

// devServer starts `temporal server start-dev` from ./bin (make tools) with
// the search attributes registered, and a worker running the workflows,
// the real control activity and the fakes.
func devServer(t *testing.T) (client.Client, *fakes) {
	t.Helper()
	srv := devtemporal.New(t)

	f := newFakes()
	w := worker.New(srv.Client(), DefaultTaskQueue, worker.Options{})
	f.register(w)
	Register(w, &ControlActivities{Client: srv.Client(), MaxPollInterval: 200 * time.Millisecond})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return srv.Client(), f
}

// blockingWait is a WaitForVirtualMachine that heartbeats until release is
// closed or it is cancelled; started is closed when it first runs.
func blockingWait(started, release chan struct{}) hook {
	var once sync.Once
	return func(ctx context.Context, _ any) (any, error) {
		once.Do(func() { close(started) })
		for {
			activity.RecordHeartbeat(ctx, "Scheduling")
			select {
			case <-release:
				return testObservation, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func historyOf(t *testing.T, c client.Client, run client.WorkflowRun) *historypb.History {
	t.Helper()
	h := &historypb.History{}
	it := c.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, 0)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	return h
}

func TestOnDevServer(t *testing.T) {
	c, f := devServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	starter := Starter{Client: c}
	var runs []client.WorkflowRun

	t.Run("starter returns the open run and starts a closed one again", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		f.on(contract.WaitForVirtualMachineName, blockingWait(started, release))
		defer f.on(contract.WaitForVirtualMachineName, nil)

		in := ProvisionInput{Namespace: "default", Name: "vm-a"}
		first, err := starter.StartProvision(ctx, in)
		require.NoError(t, err)
		require.Equal(t, "provision/default/vm-a", first.GetID())
		<-started
		second, err := starter.StartProvision(ctx, in)
		require.NoError(t, err)
		require.Equal(t, first.GetRunID(), second.GetRunID(), "no duplicate while one is open")

		v, err := c.QueryWorkflow(ctx, first.GetID(), "", StatusQuery)
		require.NoError(t, err)
		var p Progress
		require.NoError(t, v.Get(&p))
		require.Equal(t, contract.WaitForVirtualMachineName, p.Step)
		require.False(t, p.Done)

		close(release)
		var res ProvisionResult
		require.NoError(t, first.Get(ctx, &res))
		require.Equal(t, "kv-a", res.KubevirtConfig)

		desc, err := c.DescribeWorkflow(ctx, first.GetID(), first.GetRunID())
		require.NoError(t, err)
		for key, want := range map[temporal.SearchAttributeKeyKeyword]string{
			MachineNamespaceKey: "default", MachineNameKey: "vm-a", KubevirtConfigKey: "kv-a", MachinePhaseKey: "Running",
		} {
			got, ok := desc.TypedSearchAttributes.GetKeyword(key)
			require.True(t, ok, key.GetName())
			require.Equal(t, want, got, key.GetName())
		}

		again, err := starter.StartProvision(ctx, in)
		require.NoError(t, err)
		require.NotEqual(t, first.GetRunID(), again.GetRunID(), "a closed run can be started again")
		require.NoError(t, again.Get(ctx, nil))
		runs = append(runs, first, again)
	})

	t.Run("history does not grow with boot time", func(t *testing.T) {
		quick, err := starter.StartProvision(ctx, ProvisionInput{Namespace: "default", Name: "vm-quick"})
		require.NoError(t, err)
		require.NoError(t, quick.Get(ctx, nil))

		started, release := make(chan struct{}), make(chan struct{})
		f.on(contract.WaitForVirtualMachineName, blockingWait(started, release))
		defer f.on(contract.WaitForVirtualMachineName, nil)
		slow, err := starter.StartProvision(ctx, ProvisionInput{Namespace: "default", Name: "vm-slow"})
		require.NoError(t, err)
		<-started
		time.Sleep(3 * time.Second) // about 30 heartbeats
		close(release)
		require.NoError(t, slow.Get(ctx, nil))

		quickEvents, slowEvents := len(historyOf(t, c, quick).Events), len(historyOf(t, c, slow).Events)
		t.Logf("ProvisionMachine success: %d history events (quick boot), %d (3s boot)", quickEvents, slowEvents)
		require.Equal(t, quickEvents, slowEvents)
		runs = append(runs, quick, slow)
	})

	t.Run("deprovision cancels an open provision and awaits its compensation", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		f.on(contract.WaitForVirtualMachineName, blockingWait(started, release))
		defer f.on(contract.WaitForVirtualMachineName, nil)
		prov, err := starter.StartProvision(ctx, ProvisionInput{Namespace: "default", Name: "vm-c"})
		require.NoError(t, err)
		<-started
		before := len(f.called())

		deprov, err := starter.StartDeprovision(ctx, DeprovisionInput{Namespace: "default", Name: "vm-c"})
		require.NoError(t, err)
		require.Equal(t, "deprovision/default/vm-c", deprov.GetID())
		var res DeprovisionResult
		require.NoError(t, deprov.Get(ctx, &res))
		require.Len(t, res.Deleted, 5)

		err = prov.Get(ctx, nil)
		var canceled *temporal.CanceledError
		require.True(t, errors.As(err, &canceled), "provision ended with %v", err)

		calls := f.called()[before:]
		pending := slices.IndexFunc(f.statuses(), func(u contract.StatusUpdate) bool { return u.Machine.Name == "vm-c" && u.Phase == "Pending" })
		require.GreaterOrEqual(t, pending, 0, "the provision recorded its cancellation")
		compensation := calls[:slices.Index(calls, contract.LookupPlacementName)]
		require.Equal(t, append(slices.Clone(allCreated), contract.UpdateMachineStatusName), compensation,
			"the provision's compensation and its Pending status ran before the deprovision looked anything up")
		runs = append(runs, prov, deprov)
	})

	t.Run("health check", func(t *testing.T) {
		run, err := starter.StartHealthCheck(ctx)
		require.NoError(t, err)
		require.Equal(t, HealthCheckWorkflowID, run.GetID())
		var report HealthReport
		require.NoError(t, run.Get(ctx, &report))
		require.Len(t, report.Clusters, 1)
		require.True(t, report.Clusters[0].Healthy)
		runs = append(runs, run)
	})

	t.Run("AwaitWorkflowClosed", func(t *testing.T) {
		var ts testsuite.WorkflowTestSuite
		ts.SetLogger(quietLogger())
		env := ts.NewTestActivityEnvironment()
		control := &ControlActivities{Client: c, MaxPollInterval: 100 * time.Millisecond}
		env.RegisterActivityWithOptions(control.AwaitWorkflowClosed, activity.RegisterOptions{Name: AwaitWorkflowClosedName})
		_, err := env.ExecuteActivity(AwaitWorkflowClosedName, "provision/default/never-started")
		require.NoError(t, err, "a workflow that never existed is closed")
		_, err = env.ExecuteActivity(AwaitWorkflowClosedName, runs[0].GetID())
		require.NoError(t, err, "a completed workflow is closed")

		started, release := make(chan struct{}), make(chan struct{})
		f.on(contract.WaitForVirtualMachineName, blockingWait(started, release))
		defer f.on(contract.WaitForVirtualMachineName, nil)
		open, err := starter.StartProvision(ctx, ProvisionInput{Namespace: "default", Name: "vm-open"})
		require.NoError(t, err)
		<-started
		done := make(chan error, 1)
		go func() {
			openEnv := ts.NewTestActivityEnvironment()
			openEnv.RegisterActivityWithOptions(control.AwaitWorkflowClosed, activity.RegisterOptions{Name: AwaitWorkflowClosedName})
			_, err := openEnv.ExecuteActivity(AwaitWorkflowClosedName, open.GetID())
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("AwaitWorkflowClosed returned while the workflow was open: %v", err)
		case <-time.After(time.Second):
		}
		close(release)
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-ctx.Done():
			t.Fatal("AwaitWorkflowClosed did not return after the workflow closed")
		}
		require.NoError(t, open.Get(ctx, nil))
	})

	t.Run("histories replay", func(t *testing.T) {
		dir := t.TempDir()
		for i, run := range runs {
			data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(historyOf(t, c, run))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(run.GetID())+"-"+string(rune('a'+i))+".json"), data, 0o600))
		}
		replayAll(t, dir)

		// A change that reorders activities must fail the replay.
		changed := worker.NewWorkflowReplayer()
		changed.RegisterWorkflowWithOptions(reorderedProvision, workflow.RegisterOptions{Name: ProvisionMachineName})
		path := filepath.Join(dir, filepath.Base(runs[0].GetID())+"-a.json")
		err := changed.ReplayWorkflowHistoryFromJSONFile(quietLogger(), path)
		require.Error(t, err)
		require.Contains(t, err.Error(), "TMPRL1100", "the SDK's non-determinism error code")
	})
}

// reorderedProvision is ProvisionMachine with its first two activities
// swapped: a non-deterministic change the replay must catch.
func reorderedProvision(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	var placement contract.Placement
	if err := executeActivity(ctx, contract.ResolvePlacementName, &placement, contract.PlacementInput{Machine: contract.MachineRef{Namespace: in.Namespace, Name: in.Name}}); err != nil {
		return ProvisionResult{}, err
	}
	return ProvisionMachine(ctx, in)
}
