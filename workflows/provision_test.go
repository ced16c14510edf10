package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

// workflowSuite runs one workflow per test in the Temporal test
// environment with the fakes registered, and records the search
// attributes the workflow upserts.
type workflowSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	f   *fakes
	// attrs holds the last value upserted per search attribute; phases
	// every MachinePhase upserted, in order.
	attrs  map[string]string
	phases []string
}

func (s *workflowSuite) SetupSuite() {
	// Warnings and errors only: the debug log of the test environment
	// drowns the test output.
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
}

func (s *workflowSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.f = newFakes()
	s.f.register(s.env)
	s.f.registerControl(s.env)
	RegisterWorkflows(s.env)
	s.attrs = map[string]string{}
	s.phases = nil
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		for _, key := range []temporal.SearchAttributeKeyKeyword{MachineNamespaceKey, MachineNameKey, KubevirtConfigKey, MachinePhaseKey} {
			if v, ok := sa.GetKeyword(key); ok {
				s.attrs[key.GetName()] = v
				if key == MachinePhaseKey {
					s.phases = append(s.phases, v)
				}
			}
		}
	}).Return(nil)
}

func (s *workflowSuite) progress() Progress {
	v, err := s.env.QueryWorkflow(StatusQuery)
	s.Require().NoError(err)
	var p Progress
	s.Require().NoError(v.Get(&p))
	return p
}

// appError returns the workflow's error as an ApplicationError.
func (s *workflowSuite) appError() *temporal.ApplicationError {
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), "workflow error %v is not an ApplicationError", err)
	return appErr
}

type provisionSuite struct{ workflowSuite }

func TestProvisionMachine(t *testing.T) { suite.Run(t, new(provisionSuite)) }

var provisionSteps = []string{
	contract.ResolvePlacementName, contract.ValidateClusterName, contract.LoadMachineName,
	contract.EnsureNamespaceName, contract.EnsureVolumesName, contract.EnsureNetworkName,
	contract.EnsureVirtualMachineName, contract.WaitForVirtualMachineName,
}

// withStatusWrites interleaves a status write before every step and after
// the last one.
func withStatusWrites(steps ...string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, contract.UpdateMachineStatusName, s)
	}
	return out
}

func (s *provisionSuite) TestSuccess() {
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())

	var res ProvisionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(ProvisionResult{KubevirtConfig: "kv-a", VMNamespace: "default", VMName: "vm1",
		IPAddresses: []string{"10.0.0.5"}, IPv6Addresses: []string{"fd00::5"}}, res)

	s.Equal(append(withStatusWrites(provisionSteps...), contract.UpdateMachineStatusName), s.f.called())
	s.Empty(s.f.deletes())

	remote := contract.RemoteMachine{KubevirtConfig: "kv-a", Machine: testMachine}
	s.Equal([]any{contract.PlacementInput{Machine: testMachine}}, s.f.inputs(contract.ResolvePlacementName))
	s.Equal([]any{contract.ClusterRef{KubevirtConfig: "kv-a"}}, s.f.inputs(contract.ValidateClusterName))
	s.Equal([]any{testMachine}, s.f.inputs(contract.LoadMachineName))
	s.Equal([]any{remote}, s.f.inputs(contract.EnsureNamespaceName))
	s.Equal([]any{contract.VolumesInput{KubevirtConfig: "kv-a", Machine: testMachine, Disks: testPlan.Disks}},
		s.f.inputs(contract.EnsureVolumesName))
	s.Equal([]any{contract.NetworkInput{KubevirtConfig: "kv-a", Machine: testMachine, Network: testPlan.Network}},
		s.f.inputs(contract.EnsureNetworkName))
	s.Equal([]any{contract.VirtualMachineInput{KubevirtConfig: "kv-a", Plan: testPlan, Network: testNetwork}},
		s.f.inputs(contract.EnsureVirtualMachineName))
	s.Equal([]any{remote}, s.f.inputs(contract.WaitForVirtualMachineName))

	statuses := s.f.statuses()
	s.Require().Len(statuses, len(provisionSteps)+1)
	for i, step := range provisionSteps {
		st := statuses[i]
		s.Equal("Creating", st.Phase, "status before %s", step)
		s.Equal(&contract.Condition{Type: ConditionProvisioning, Status: "True", Reason: step}, st.Condition)
		s.Nil(st.Failure)
		s.Nil(st.Observation)
		s.Equal(testMachine, st.Machine)
	}
	s.Empty(statuses[0].KubevirtConfig, "the config is unknown before placement")
	s.Equal("kv-a", statuses[1].KubevirtConfig)
	last := statuses[len(statuses)-1]
	s.Equal("Running", last.Phase)
	s.Equal("kv-a", last.KubevirtConfig)
	s.Equal(ReasonProvisioned, last.Condition.Reason)
	s.Equal("False", last.Condition.Status)
	s.Equal(&testObservation, last.Observation)
	s.Nil(last.Failure)

	s.Equal(map[string]string{"MachineNamespace": "default", "MachineName": "vm1", "KubevirtConfig": "kv-a", "MachinePhase": "Running"}, s.attrs)
	s.Equal([]string{"Creating", "Running"}, s.phases)

	p := s.progress()
	s.Equal(StepCompleted, p.Step)
	s.True(p.Done)
	s.Empty(p.LastError)
	for _, step := range provisionSteps {
		s.Equal(1, p.Attempts[step], step)
	}
	s.Equal(len(provisionSteps)+1, p.Attempts[contract.UpdateMachineStatusName])
	s.False(p.StartedAt.IsZero())
}

func (s *provisionSuite) TestRequestedConfigIsPassedToPlacement() {
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1", KubevirtConfig: "kv-b"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]any{contract.PlacementInput{Machine: testMachine, KubevirtConfig: "kv-b"}}, s.f.inputs(contract.ResolvePlacementName))
	s.Equal([]any{contract.ClusterRef{KubevirtConfig: "kv-b"}}, s.f.inputs(contract.ValidateClusterName))
	var res ProvisionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("kv-b", res.KubevirtConfig)
	s.Equal("kv-b", s.attrs["KubevirtConfig"])
}

func (s *provisionSuite) TestQueryWhileRunning() {
	var during Progress
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name != contract.EnsureVolumesName {
			return
		}
		v, err := s.env.QueryWorkflow(StatusQuery)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&during))
	})
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(contract.EnsureVolumesName, during.Step)
	s.False(during.Done)
	s.Equal(1, during.Attempts[contract.EnsureNamespaceName])
	s.Equal(1, during.Attempts[contract.EnsureVolumesName])
	s.Zero(during.Attempts[contract.EnsureNetworkName])
}

func fail(errType, msg string) hook {
	return func(context.Context, any) (any, error) {
		return nil, temporal.NewNonRetryableApplicationError(msg, errType, nil)
	}
}

var (
	// allCreated is what compensation deletes once the VM exists.
	allCreated = []string{contract.DeleteVirtualMachineName, contract.DeleteVolumesName,
		contract.DeleteNetworkName, contract.DeleteNetworkConfigurationName}
	// beforeVM is what compensation deletes when the VM was not created.
	beforeVM = []string{contract.DeleteVolumesName, contract.DeleteNetworkName, contract.DeleteNetworkConfigurationName}
)

func (s *provisionSuite) TestNonRetryableFailures() {
	type tc struct {
		name, step, errType, msg string
		wantDeletes              []string
	}
	cases := []tc{
		{"no config", contract.ResolvePlacementName, contract.ErrTypeConfigNotFound, "no KubevirtConfig exists for Machine default/vm1", nil},
		{"ambiguous placement", contract.ResolvePlacementName, contract.ErrTypeAmbiguousPlacement, "Machine default/vm1 has VMs on kv-a and kv-b", nil},
		{"cluster unauthorized", contract.ValidateClusterName, contract.ErrTypeUnauthorized, "KubevirtConfig kv-a: credentials rejected", nil},
		{"kubevirt missing", contract.ValidateClusterName, contract.ErrTypeKubeVirtMissing, "KubevirtConfig kv-a serves no kubevirt.io/v1", nil},
		{"invalid kubeconfig", contract.ValidateClusterName, contract.ErrTypeInvalidKubeconfig, "KubevirtConfig kv-a: kubeconfig Secret default/kv-a has no key kubeconfig", nil},
		{"invalid spec", contract.LoadMachineName, contract.ErrTypeInvalidSpec, "Machine default/vm1: spec.disks[1].sizeGB: must be > 0", nil},
		{"unsupported provider", contract.LoadMachineName, contract.ErrTypeUnsupportedProvider, "Machine default/vm1: spec.provider \"vsphere\" is not kubevirt", nil},
		{"volume conflict", contract.EnsureVolumesName, contract.ErrTypeConflict, "PersistentVolumeClaim default/vm1 exists and is not managed by machineflow", nil},
		{"nad conflict", contract.EnsureNetworkName, contract.ErrTypeConflict, "NetworkAttachmentDefinition default/vlan42 is not managed by machineflow",
			[]string{contract.DeleteVolumesName}},
		{"vm conflict", contract.EnsureVirtualMachineName, contract.ErrTypeConflict, "VirtualMachine default/vm1 exists and is not managed by machineflow", beforeVM},
	}
	for _, reason := range []string{"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff", "Unschedulable", "DataVolumeError", "PvcNotFound"} {
		cases = append(cases, tc{"boot failure " + reason, contract.WaitForVirtualMachineName, contract.ErrTypeBootFailed,
			"VM default/vm1 failed to boot: " + reason, allCreated})
	}
	for _, c := range cases {
		s.Run(c.name, func() {
			s.SetupTest()
			s.f.on(c.step, fail(c.errType, c.msg))
			s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
			s.Require().True(s.env.IsWorkflowCompleted())

			appErr := s.appError()
			s.Equal(c.errType, appErr.Type())
			s.True(appErr.NonRetryable())
			s.Contains(appErr.Message(), c.msg)

			s.Equal(c.wantDeletes, s.f.deletes())
			if slices.Contains(c.wantDeletes, contract.DeleteVolumesName) {
				s.Equal([]any{contract.DeleteVolumesInput{
					RemoteMachine: contract.RemoteMachine{KubevirtConfig: "kv-a", Machine: testMachine},
					PVCNames:      []string{"vm1", "vm1-data"},
				}}, s.f.inputs(contract.DeleteVolumesName))
			}
			// Nothing after the failing step ran, apart from compensation
			// and the final status.
			stepIdx := slices.Index(provisionSteps, c.step)
			for _, later := range provisionSteps[stepIdx+1:] {
				s.Zero(s.f.count(later), "%s ran after %s failed", later, c.step)
			}

			statuses := s.f.statuses()
			last := statuses[len(statuses)-1]
			s.Equal("Failed", last.Phase)
			s.Require().NotNil(last.Failure)
			s.Equal(c.errType, last.Failure.Reason)
			s.Equal(c.step+": "+c.msg, last.Failure.Message)
			s.Equal(&contract.Condition{Type: ConditionProvisioning, Status: "False", Reason: c.errType, Message: c.step + ": " + c.msg}, last.Condition)
			s.Equal("Failed", s.attrs["MachinePhase"])

			p := s.progress()
			s.Equal(StepFailed, p.Step)
			s.True(p.Done)
			s.Equal(c.step+": "+c.errType+": "+c.msg, p.LastError)
		})
	}
}

func (s *provisionSuite) TestCompensationDeletesOnlyWhatThisRunCreated() {
	// vm1 and the VM were adopted from an earlier run, the NAD and the
	// NetworkConfiguration already existed.
	s.f.on(contract.EnsureVolumesName, func(context.Context, any) (any, error) {
		return contract.VolumesResult{Created: []string{"vm1-data"}}, nil
	})
	s.f.on(contract.EnsureNetworkName, func(context.Context, any) (any, error) {
		return contract.NetworkResult{NetworkName: "vlan42", NADName: "vlan42", MACAddress: "02:12:00:00:00:01"}, nil
	})
	s.f.on(contract.EnsureVirtualMachineName, func(context.Context, any) (any, error) {
		return contract.VirtualMachineResult{Namespace: "default", Name: "vm1"}, nil
	})
	s.f.on(contract.WaitForVirtualMachineName, fail(contract.ErrTypeBootFailed, "VM default/vm1 failed to boot: ErrImagePull"))
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})

	s.Equal(contract.ErrTypeBootFailed, s.appError().Type())
	s.Equal([]string{contract.DeleteVolumesName}, s.f.deletes())
	s.Equal([]any{contract.DeleteVolumesInput{
		RemoteMachine: contract.RemoteMachine{KubevirtConfig: "kv-a", Machine: testMachine},
		PVCNames:      []string{"vm1-data"},
	}}, s.f.inputs(contract.DeleteVolumesName))
}

// A failed EnsureVirtualMachine of a Machine with cloud-init may have
// written the VM's cloud-init Secret: compensation runs DeleteVirtualMachine,
// which removes it. Without cloud-init, or in a run recorded before the
// change (DefaultVersion), it does not; a VM the step adopted keeps its
// Secret.
func (s *provisionSuite) TestCompensationRemovesTheCloudInitSecretOfAFailedEnsureVirtualMachine() {
	withCloudInit := testPlan
	withCloudInit.CloudInit = true
	cases := []struct {
		name        string
		plan        contract.MachinePlan
		oldVersion  bool
		ensureVM    hook
		wantDeletes []string
	}{
		{"final failure with cloud-init", withCloudInit, false,
			fail(contract.ErrTypeInvalidSpec, "create VirtualMachine default/vm1 on kv-a: rejected by the API server"), allCreated},
		{"retries exhausted with cloud-init", withCloudInit, false, func(context.Context, any) (any, error) {
			return nil, temporal.NewApplicationError("create VirtualMachine default/vm1 on kv-a: webhook unavailable", contract.ErrTypeClusterUnreachable)
		}, allCreated},
		{"final failure without cloud-init", testPlan, false,
			fail(contract.ErrTypeInvalidSpec, "create VirtualMachine default/vm1 on kv-a: rejected by the API server"), beforeVM},
		{"final failure with cloud-init, recorded before the change", withCloudInit, true,
			fail(contract.ErrTypeInvalidSpec, "create VirtualMachine default/vm1 on kv-a: rejected by the API server"), beforeVM},
	}
	for _, c := range cases {
		s.Run(c.name, func() {
			s.SetupTest()
			if c.oldVersion {
				s.env.OnGetVersion(cloudInitSecretChange, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			}
			s.f.on(contract.LoadMachineName, func(context.Context, any) (any, error) { return c.plan, nil })
			s.f.on(contract.EnsureVirtualMachineName, c.ensureVM)
			s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
			s.Require().True(s.env.IsWorkflowCompleted())
			s.Require().Error(s.env.GetWorkflowError())
			s.Equal(c.wantDeletes, s.f.deletes())
			s.Zero(s.f.count(contract.WaitForVirtualMachineName))
		})
	}

	s.Run("adopted VM keeps its Secret", func() {
		s.SetupTest()
		s.f.on(contract.LoadMachineName, func(context.Context, any) (any, error) { return withCloudInit, nil })
		s.f.on(contract.EnsureVirtualMachineName, func(context.Context, any) (any, error) {
			return contract.VirtualMachineResult{Namespace: "default", Name: "vm1"}, nil
		})
		s.f.on(contract.WaitForVirtualMachineName, fail(contract.ErrTypeBootFailed, "VM default/vm1 failed to boot: ErrImagePull"))
		s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
		s.Equal(contract.ErrTypeBootFailed, s.appError().Type())
		s.Equal(beforeVM, s.f.deletes())
	})
}

func (s *provisionSuite) TestIncompleteCompensationIsReported() {
	s.f.on(contract.WaitForVirtualMachineName, fail(contract.ErrTypeBootFailed, "VM default/vm1 failed to boot: Unschedulable"))
	s.f.on(contract.DeleteVirtualMachineName, fail(contract.ErrTypeUnauthorized, "KubevirtConfig kv-a: credentials rejected"))
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})

	appErr := s.appError()
	s.Equal(contract.ErrTypeBootFailed, appErr.Type())
	s.Contains(appErr.Message(), "cleanup incomplete: DeleteVirtualMachine: ClusterUnauthorized: KubevirtConfig kv-a: credentials rejected")
	// The other deletes still ran.
	s.Equal(allCreated, s.f.deletes())
	last := s.f.statuses()[len(s.f.statuses())-1]
	s.Equal("Failed", last.Phase)
	s.Contains(last.Failure.Message, "cleanup incomplete")
}

func (s *provisionSuite) TestRetryableErrorIsRetried() {
	failures := 0
	s.f.on(contract.EnsureVolumesName, func(_ context.Context, in any) (any, error) {
		if failures < 2 {
			failures++
			return nil, temporal.NewApplicationError("KubevirtConfig kv-a: connection refused", contract.ErrTypeClusterUnreachable)
		}
		return contract.VolumesResult{Created: []string{"vm1", "vm1-data"}}, nil
	})
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(3, s.f.count(contract.EnsureVolumesName))
	p := s.progress()
	s.Equal(1, p.Attempts[contract.EnsureVolumesName], "server-side retries are one execution")
	s.Empty(p.LastError)
}

func (s *provisionSuite) TestRetryableErrorStopsAtTheStepBound() {
	s.f.on(contract.EnsureNetworkName, func(context.Context, any) (any, error) {
		return nil, temporal.NewApplicationError("KubevirtConfig kv-a: connection refused", contract.ErrTypeClusterUnreachable)
	})
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})

	appErr := s.appError()
	s.Equal(contract.ErrTypeClusterUnreachable, appErr.Type())
	s.Equal("EnsureNetwork: KubevirtConfig kv-a: connection refused", appErr.Message())
	// 1s, 2s, 4s ... capped at 1m within 10m of ScheduleToClose.
	s.Greater(s.f.count(contract.EnsureNetworkName), 5)
	s.Less(s.f.count(contract.EnsureNetworkName), 20)
	s.Equal([]string{contract.DeleteVolumesName}, s.f.deletes())
}

func (s *provisionSuite) TestBootDeadlineExceeded() {
	s.f.on(contract.WaitForVirtualMachineName, func(ctx context.Context, _ any) (any, error) {
		// A VM that never runs: the activity heartbeats until the
		// deadline stops it.
		for {
			activity.RecordHeartbeat(ctx, "Scheduling")
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "1s"})

	appErr := s.appError()
	s.Equal(ErrTypeBootDeadlineExceeded, appErr.Type())
	s.Equal("VM default/vm1 on kv-a did not reach Running within 1s: boot deadline exceeded", appErr.Message())
	s.Equal(allCreated, s.f.deletes())
	last := s.f.statuses()[len(s.f.statuses())-1]
	s.Equal("Failed", last.Phase)
	s.Equal(&contract.Failure{Reason: ErrTypeBootDeadlineExceeded, Message: appErr.Message()}, last.Failure)
}

func (s *provisionSuite) TestCancellationAtEachStep() {
	expected := map[string][]string{
		contract.ResolvePlacementName:      nil,
		contract.ValidateClusterName:       nil,
		contract.LoadMachineName:           nil,
		contract.EnsureNamespaceName:       nil,
		contract.EnsureVolumesName:         {contract.DeleteVolumesName},
		contract.EnsureNetworkName:         beforeVM,
		contract.EnsureVirtualMachineName:  allCreated,
		contract.WaitForVirtualMachineName: allCreated,
	}
	for _, step := range provisionSteps {
		s.Run(step, func() {
			s.SetupTest()
			// The step cancels the workflow while it runs and completes
			// normally, as an activity already under way would.
			s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
				if info.ActivityType.Name == step {
					s.env.CancelWorkflow()
				}
			})
			s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
			s.Require().True(s.env.IsWorkflowCompleted())
			s.True(temporal.IsCanceledError(s.env.GetWorkflowError()), "got %v", s.env.GetWorkflowError())

			s.Equal(expected[step], s.f.deletes())
			if len(expected[step]) > 0 {
				s.Equal([]any{contract.DeleteVolumesInput{
					RemoteMachine: contract.RemoteMachine{KubevirtConfig: "kv-a", Machine: testMachine},
					PVCNames:      []string{"vm1", "vm1-data"},
				}}, s.f.inputs(contract.DeleteVolumesName))
			}
			for _, later := range provisionSteps[slices.Index(provisionSteps, step)+1:] {
				s.Zero(s.f.count(later), "%s ran after cancellation", later)
			}

			statuses := s.f.statuses()
			last := statuses[len(statuses)-1]
			s.Equal("Pending", last.Phase)
			s.Nil(last.Failure)
			s.Equal(StepCancelled, last.Condition.Reason)
			s.Equal("Pending", s.attrs["MachinePhase"])
			p := s.progress()
			s.Equal(StepCancelled, p.Step)
			s.True(p.Done)
		})
	}
}

func (s *provisionSuite) TestMachineDeletedMeanwhile() {
	s.f.on(contract.UpdateMachineStatusName, fail(contract.ErrTypeMachineNotFound, "Machine default/vm1 not found"))
	s.env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
	appErr := s.appError()
	s.Equal(contract.ErrTypeMachineNotFound, appErr.Type())
	s.Equal([]string{contract.UpdateMachineStatusName, contract.UpdateMachineStatusName}, s.f.called(),
		"only the first progress write and the failed-status attempt run")
}

func (s *provisionSuite) TestInvalidInput() {
	cases := map[string]struct {
		in   ProvisionInput
		want []string
	}{
		"empty":             {ProvisionInput{}, []string{`namespace ""`, `name ""`}},
		"bad names":         {ProvisionInput{Namespace: "Bad_NS", Name: "vm/1", KubevirtConfig: "KV A"}, []string{`namespace "Bad_NS"`, `name "vm/1"`, `kubevirtConfig "KV A"`}},
		"bad boot timeout":  {ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "soon"}, []string{`bootTimeout "soon": not a Go duration`}},
		"negative timeout":  {ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "-5m"}, []string{`bootTimeout "-5m": must be more than 0`}},
		"excessive timeout": {ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "48h"}, []string{`bootTimeout "48h": must be more than 0 and at most 24h0m0s`}},
	}
	for name, c := range cases {
		s.Run(name, func() {
			s.SetupTest()
			s.env.ExecuteWorkflow(ProvisionMachineName, c.in)
			appErr := s.appError()
			s.Equal(ErrTypeInvalidInput, appErr.Type())
			s.True(appErr.NonRetryable())
			for _, w := range c.want {
				s.Contains(appErr.Message(), w)
			}
			s.Empty(s.f.called())
		})
	}
}

func TestDescribeError(t *testing.T) {
	app := temporal.NewNonRetryableApplicationError("VM default/vm1 failed to boot: ErrImagePull", contract.ErrTypeBootFailed, nil)
	reason, msg := describeError(app)
	require.Equal(t, contract.ErrTypeBootFailed, reason)
	require.Equal(t, "VM default/vm1 failed to boot: ErrImagePull", msg)

	reason, msg = describeError(temporal.NewCanceledError())
	require.Equal(t, StepCancelled, reason)
	require.Equal(t, "cancelled", msg)

	reason, msg = describeError(fmt.Errorf("upsert search attributes: %w", errors.New("boom")))
	require.Equal(t, "Error", reason)
	require.Equal(t, "upsert search attributes: boom", msg)
}
