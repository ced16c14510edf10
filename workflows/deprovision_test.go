package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/machineflow/machineflow/activities/contract"
)

type deprovisionSuite struct{ workflowSuite }

func TestDeprovisionMachine(t *testing.T) { suite.Run(t, new(deprovisionSuite)) }

const provisionID = "provision/default/vm1"

var (
	testRemote     = contract.RemoteMachine{KubevirtConfig: "kv-a", Machine: testMachine}
	remoteNotFound = []string{
		"VirtualMachine default/vm1 on kv-a",
		"PersistentVolumeClaims of Machine default/vm1 on kv-a",
		"NetworkAttachmentDefinitions of Machine default/vm1 on kv-a",
	}
	allDeleted = []string{
		"VirtualMachine default/vm1",
		"PersistentVolumeClaim default/vm1", "PersistentVolumeClaim default/vm1-data",
		"NetworkAttachmentDefinition default/vlan42",
		"NetworkConfiguration default/vm1",
	}
)

// noOpenProvision answers the cancel request as Temporal does when no
// provision is open.
func (s *deprovisionSuite) noOpenProvision() {
	s.env.OnRequestCancelExternalWorkflow("default-test-namespace", provisionID, "").
		Return(&temporal.UnknownExternalWorkflowExecutionError{}).Once()
}

func (s *deprovisionSuite) result() DeprovisionResult {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res DeprovisionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func (s *deprovisionSuite) TestDeletesInSafeOrder() {
	s.noOpenProvision()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	res := s.result()
	s.Equal(DeprovisionResult{KubevirtConfig: "kv-a", Deleted: allDeleted}, res)

	s.Equal([]string{contract.LookupPlacementName, contract.UpdateMachineStatusName,
		contract.DeleteVirtualMachineName, contract.DeleteVolumesName, contract.DeleteNetworkName,
		contract.DeleteNetworkConfigurationName}, s.f.called())
	s.Equal([]any{testMachine}, s.f.inputs(contract.LookupPlacementName))
	s.Equal([]any{testRemote}, s.f.inputs(contract.DeleteVirtualMachineName))
	s.Equal([]any{contract.DeleteVolumesInput{RemoteMachine: testRemote}}, s.f.inputs(contract.DeleteVolumesName),
		"all of the Machine's volumes, not only named ones")
	s.Equal([]any{testRemote}, s.f.inputs(contract.DeleteNetworkName))
	s.Equal([]any{testMachine}, s.f.inputs(contract.DeleteNetworkConfigurationName))
	s.Equal([]contract.StatusUpdate{{Machine: testMachine, Phase: "Terminating", KubevirtConfig: "kv-a"}}, s.f.statuses())

	s.Equal(map[string]string{"MachineNamespace": "default", "MachineName": "vm1", "KubevirtConfig": "kv-a", "MachinePhase": contract.PhaseTerminated}, s.attrs)
	s.Equal([]string{"Terminating", contract.PhaseTerminated}, s.phases)
	p := s.progress()
	s.Equal(StepCompleted, p.Step)
	s.True(p.Done)
	s.Equal(1, p.Attempts[contract.DeleteVirtualMachineName])
}

func (s *deprovisionSuite) TestNeverPlacedOrAbsentMachine() {
	s.noOpenProvision()
	s.f.config = ""
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	s.Equal(DeprovisionResult{}, s.result())
	s.Equal([]string{contract.LookupPlacementName}, s.f.called(), "no status write, no delete")
	s.Equal(contract.PhaseTerminated, s.attrs["MachinePhase"])
}

func (s *deprovisionSuite) TestMachineGoneBeforeStatusWrite() {
	s.noOpenProvision()
	s.f.on(contract.UpdateMachineStatusName, fail(contract.ErrTypeMachineNotFound, "Machine default/vm1 not found"))
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	s.Equal(allDeleted, s.result().Deleted, "cleanup goes on without the Machine")
}

func (s *deprovisionSuite) TestCancelsAndAwaitsOpenProvision() {
	s.env.OnRequestCancelExternalWorkflow("default-test-namespace", provisionID, "").Return(nil).Once()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	s.Equal(allDeleted, s.result().Deleted)
	s.Equal([]any{provisionID}, s.f.inputs(AwaitWorkflowClosedName))
	s.Equal(AwaitWorkflowClosedName, s.f.called()[0], "the provision is awaited before anything else")
}

func (s *deprovisionSuite) TestCancelFailureIsReported() {
	s.env.OnRequestCancelExternalWorkflow("default-test-namespace", provisionID, "").
		Return(errors.New("namespace not found")).Once()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "cancel workflow provision/default/vm1")
	s.Empty(s.f.called())
}

func (s *deprovisionSuite) TestClusterComesBack() {
	s.noOpenProvision()
	failures := 0
	s.f.on(contract.DeleteVirtualMachineName, func(context.Context, any) (any, error) {
		if failures < 2 {
			failures++
			return nil, temporal.NewNonRetryableApplicationError("KubevirtConfig kv-a not found", contract.ErrTypeConfigNotFound, nil)
		}
		return contract.DeleteResult{Deleted: []string{"VirtualMachine default/vm1"}}, nil
	})
	start := s.env.Now()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	res := s.result()
	s.Equal(allDeleted, res.Deleted)
	s.Empty(res.NotDeleted)
	s.False(res.Forced)
	s.Equal(3, s.f.count(contract.DeleteVirtualMachineName))
	// Rounds back off: 30s, then 1m.
	s.GreaterOrEqual(s.env.Now().Sub(start), 90*time.Second)
	p := s.progress()
	s.Equal(3, p.Attempts[contract.DeleteVirtualMachineName])
	s.Contains(p.LastError, "DeleteVirtualMachine: KubevirtConfigNotFound: KubevirtConfig kv-a not found")
}

func (s *deprovisionSuite) TestUnreachableWithoutForceGivesUpAtTheDeadline() {
	s.noOpenProvision()
	s.f.on(contract.DeleteVolumesName, fail(contract.ErrTypeConfigNotFound, "KubevirtConfig kv-a not found"))
	start := s.env.Now()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})

	appErr := s.appError()
	s.Equal(ErrTypeRemoteCleanupFailed, appErr.Type())
	s.Contains(appErr.Message(), "could not delete the PersistentVolumeClaims of Machine default/vm1 on kv-a within 1h0m0s")
	s.Contains(appErr.Message(), "KubevirtConfigNotFound: KubevirtConfig kv-a not found")
	s.Contains(appErr.Message(), `send it the "force" update`)
	elapsed := s.env.Now().Sub(start)
	s.Greater(elapsed, 50*time.Minute)
	s.LessOrEqual(elapsed, RemoteCleanupDeadline)
	// 30s, 1m, 2m, 4m, then every 5m until the hour is up.
	s.Equal(15, s.f.count(contract.DeleteVolumesName))
	s.Equal(1, s.f.count(contract.DeleteVirtualMachineName), "a step that succeeded is not repeated")
	s.Zero(s.f.count(contract.DeleteNetworkName))
	s.Zero(s.f.count(contract.DeleteNetworkConfigurationName))
	s.Equal(StepFailed, s.progress().Step)
}

func (s *deprovisionSuite) TestForceInputGivesUpOnUnreachableCluster() {
	s.noOpenProvision()
	s.f.on(contract.DeleteVirtualMachineName, func(context.Context, any) (any, error) {
		return nil, temporal.NewApplicationError("KubevirtConfig kv-a: dial tcp: connection refused", contract.ErrTypeClusterUnreachable)
	})
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1", Force: true})

	res := s.result()
	s.Equal(DeprovisionResult{
		KubevirtConfig: "kv-a",
		Deleted:        []string{"NetworkConfiguration default/vm1"},
		NotDeleted:     remoteNotFound,
		Forced:         true,
	}, res)
	s.Equal(forcedAttempts, s.f.count(contract.DeleteVirtualMachineName))
	s.Zero(s.f.count(contract.DeleteVolumesName))
	s.Zero(s.f.count(contract.DeleteNetworkName))
}

func (s *deprovisionSuite) TestForceInputStillDeletesAReachableCluster() {
	s.noOpenProvision()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1", Force: true})
	res := s.result()
	s.Equal(allDeleted, res.Deleted)
	s.False(res.Forced)
	s.Empty(res.NotDeleted)
}

func (s *deprovisionSuite) forceUpdateAfter(d time.Duration) *updateOutcome {
	out := &updateOutcome{}
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(ForceUpdate, "force-1", &testsuite.TestUpdateCallback{
			OnAccept:   func() { out.accepted = true },
			OnReject:   func(err error) { out.err = err },
			OnComplete: func(_ any, err error) { out.completed, out.err = true, err },
		})
	}, d)
	return out
}

type updateOutcome struct {
	accepted, completed bool
	err                 error
}

func (s *deprovisionSuite) TestForceUpdateWhileWaitingToRetry() {
	s.noOpenProvision()
	s.f.on(contract.DeleteNetworkName, fail(contract.ErrTypeConfigNotFound, "KubevirtConfig kv-a not found"))
	update := s.forceUpdateAfter(10 * time.Minute)
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})

	res := s.result()
	s.True(update.accepted)
	s.True(update.completed)
	s.NoError(update.err)
	s.Equal(DeprovisionResult{
		KubevirtConfig: "kv-a",
		Deleted: []string{"VirtualMachine default/vm1", "PersistentVolumeClaim default/vm1",
			"PersistentVolumeClaim default/vm1-data", "NetworkConfiguration default/vm1"},
		NotDeleted: remoteNotFound[2:],
		Forced:     true,
	}, res)
	// Rounds at 0, 30s, 1m30s, 3m30s and 7m30s; the update at 10m ends the wait.
	s.Equal(5, s.f.count(contract.DeleteNetworkName))
}

func (s *deprovisionSuite) TestForceUpdateInterruptsADeleteInFlight() {
	s.noOpenProvision()
	// An unreachable cluster keeps the activity retrying for its whole
	// ScheduleToClose (15m); the force update at 2m stops it.
	s.f.on(contract.DeleteVirtualMachineName, func(context.Context, any) (any, error) {
		return nil, temporal.NewApplicationError("KubevirtConfig kv-a: dial tcp: i/o timeout", contract.ErrTypeClusterUnreachable)
	})
	update := s.forceUpdateAfter(2 * time.Minute)
	start := s.env.Now()
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})

	res := s.result()
	s.True(update.completed)
	s.True(res.Forced)
	s.Equal(remoteNotFound, res.NotDeleted)
	s.Less(s.env.Now().Sub(start), 3*time.Minute, "the update did not wait for the activity's own bound")
	s.Equal(1, s.progress().Attempts[contract.DeleteVirtualMachineName])
}

func (s *deprovisionSuite) TestEarlyForceUpdateActsLikeForceInput() {
	s.env.OnRequestCancelExternalWorkflow("default-test-namespace", provisionID, "").Return(nil).Once()
	// The update arrives before remote cleanup starts.
	update := s.forceUpdateAfter(0)
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1"})
	res := s.result()
	s.True(update.completed)
	s.Equal(allDeleted, res.Deleted, "a reachable cluster is still cleaned up")
	s.False(res.Forced)
}

func (s *deprovisionSuite) TestInvalidInput() {
	s.env.ExecuteWorkflow(DeprovisionMachineName, DeprovisionInput{Namespace: "", Name: "VM 1"})
	appErr := s.appError()
	s.Equal(ErrTypeInvalidInput, appErr.Type())
	s.Contains(appErr.Message(), `namespace ""`)
	s.Contains(appErr.Message(), `name "VM 1"`)
	s.Empty(s.f.called())
}
