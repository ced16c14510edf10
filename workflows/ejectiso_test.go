package workflows

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/activities/contract"
)

type ejectISOSuite struct{ workflowSuite }

func TestEjectISO(t *testing.T) { suite.Run(t, new(ejectISOSuite)) }

var isoDeleted = []string{
	"ISO cdrom-iso of VirtualMachine default/vm1 on kv-a",
	"DataVolume default/vm1-iso on kv-a",
	"PersistentVolumeClaim default/vm1-iso on kv-a",
}

func (s *ejectISOSuite) SetupTest() {
	s.workflowSuite.SetupTest()
	withResult(s.env, s.f, contract.CleanupISOName, func(contract.RemoteMachine) contract.DeleteResult {
		return contract.DeleteResult{Deleted: isoDeleted}
	})
}

func (s *ejectISOSuite) run() {
	s.env.ExecuteWorkflow(EjectISOName, EjectISOInput{Namespace: "default", Name: "vm1"})
	s.Require().True(s.env.IsWorkflowCompleted())
}

func (s *ejectISOSuite) TestRemovesTheISOOnTheMachinesCluster() {
	s.run()
	s.Require().NoError(s.env.GetWorkflowError())
	var res EjectISOResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(EjectISOResult{KubevirtConfig: "kv-a", Deleted: isoDeleted}, res)
	s.Equal([]string{contract.LookupPlacementName, contract.CleanupISOName}, s.f.called())
	s.Equal([]any{testMachine}, s.f.inputs(contract.LookupPlacementName))
	s.Equal([]any{testRemote}, s.f.inputs(contract.CleanupISOName))
	s.Equal(map[string]string{"MachineNamespace": "default", "MachineName": "vm1", "KubevirtConfig": "kv-a"}, s.attrs,
		"no phase: ejecting the ISO does not change it")
	p := s.progress()
	s.Equal(StepCompleted, p.Step)
	s.True(p.Done)
	s.Equal(map[string]int{contract.LookupPlacementName: 1, contract.CleanupISOName: 1}, p.Attempts)
}

func (s *ejectISOSuite) TestMachineGoneOrNeverPlaced() {
	s.f.config = ""
	s.run()
	s.Require().NoError(s.env.GetWorkflowError())
	var res EjectISOResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(EjectISOResult{}, res)
	s.Equal([]string{contract.LookupPlacementName}, s.f.called(), "no cluster to clean up on")
}

func (s *ejectISOSuite) TestTransientFailuresAreRetried() {
	failures := 0
	s.f.on(contract.CleanupISOName, func(context.Context, any) (any, error) {
		if failures < 2 {
			failures++
			return nil, temporal.NewApplicationError("get VirtualMachine default/vm1 on kv-a: connection refused", contract.ErrTypeClusterUnreachable)
		}
		return contract.DeleteResult{Deleted: isoDeleted[:1]}, nil
	})
	s.run()
	s.Require().NoError(s.env.GetWorkflowError())
	var res EjectISOResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(isoDeleted[:1], res.Deleted)
	s.Equal(3, s.f.count(contract.CleanupISOName), "two failed attempts, then success")
}

func (s *ejectISOSuite) TestFinalFailureStopsAtOnce() {
	s.f.on(contract.CleanupISOName, fail(contract.ErrTypeInvalidSpec,
		"Machine default/vm1: metadata.annotations: neither vitistack.io/cdrom-ejected nor vitistack.io/os-installed is \"true\""))
	s.run()
	appErr := s.appError()
	s.Equal(contract.ErrTypeInvalidSpec, appErr.Type())
	s.Contains(appErr.Message(), "metadata.annotations")
	s.Equal(1, s.f.count(contract.CleanupISOName), "a final error is not retried")
	p := s.progress()
	s.Equal(StepFailed, p.Step)
	s.Contains(p.LastError, contract.CleanupISOName+": "+contract.ErrTypeInvalidSpec)
}

func (s *ejectISOSuite) TestInvalidInput() {
	s.env.ExecuteWorkflow(EjectISOName, EjectISOInput{Namespace: "Not_A_Namespace", Name: "vm1"})
	appErr := s.appError()
	s.Equal(ErrTypeInvalidInput, appErr.Type())
	s.Contains(appErr.Message(), `EjectISO input: namespace "Not_A_Namespace"`)
	s.Empty(s.f.called())
}

func TestStarterEjectISOOptions(t *testing.T) {
	require.Equal(t, "eject-iso/default/vm1", EjectISOWorkflowID("default", "vm1"))
	c := mocks.NewClient(t)
	opts, args := started(t, c)
	memo := map[string]any{"machineUID": "uid-1"}
	in := EjectISOInput{Namespace: "default", Name: "vm1"}
	_, err := Starter{Client: c}.StartEjectISO(context.Background(), in, WithMemo(memo))
	require.NoError(t, err)
	require.Equal(t, "eject-iso/default/vm1", opts.ID)
	require.Equal(t, DefaultTaskQueue, opts.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, opts.WorkflowIDConflictPolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, opts.WorkflowIDReusePolicy)
	require.Equal(t, ejectISOTimeout, opts.WorkflowExecutionTimeout)
	require.Equal(t, memo, opts.Memo)
	require.Equal(t, "vm1", keyword(t, opts, MachineNameKey))
	require.Equal(t, []any{EjectISOName, in}, *args)

	_, err = Starter{Client: c}.StartEjectISO(context.Background(), EjectISOInput{Namespace: "default"})
	require.ErrorContains(t, err, `eject the ISO of Machine default/: name ""`)
}

func TestEjectISOTimeoutCoversItsActivities(t *testing.T) {
	var sum int64
	for _, name := range []string{contract.LookupPlacementName, contract.CleanupISOName} {
		o := activityOptions(name)
		require.Positive(t, o.StartToCloseTimeout, name)
		require.GreaterOrEqual(t, o.ScheduleToCloseTimeout, o.StartToCloseTimeout, name)
		sum += int64(o.ScheduleToCloseTimeout)
	}
	require.Greater(t, int64(ejectISOTimeout), sum, "the execution timeout never cuts a retrying activity short")
}
