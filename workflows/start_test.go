package workflows

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
)

func TestWorkflowIDs(t *testing.T) {
	require.Equal(t, "provision/default/vm1", ProvisionWorkflowID("default", "vm1"))
	require.Equal(t, "deprovision/default/vm1", DeprovisionWorkflowID("default", "vm1"))
}

// started captures the options and arguments of one ExecuteWorkflow call.
func started(t *testing.T, c *mocks.Client) (*client.StartWorkflowOptions, *[]any) {
	opts, args := &client.StartWorkflowOptions{}, &[]any{}
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Run(func(a mock.Arguments) {
			*opts = a.Get(1).(client.StartWorkflowOptions)
			*args = a[2:]
		}).Return(mocks.NewWorkflowRun(t), nil).Once()
	return opts, args
}

func keyword(t *testing.T, opts *client.StartWorkflowOptions, key temporal.SearchAttributeKeyKeyword) string {
	t.Helper()
	v, ok := opts.TypedSearchAttributes.GetKeyword(key)
	require.True(t, ok, key.GetName())
	return v
}

func TestStarterProvisionOptions(t *testing.T) {
	c := mocks.NewClient(t)
	opts, args := started(t, c)
	in := ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "20m"}
	_, err := Starter{Client: c}.StartProvision(context.Background(), in)
	require.NoError(t, err)

	require.Equal(t, "provision/default/vm1", opts.ID)
	require.Equal(t, DefaultTaskQueue, opts.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, opts.WorkflowIDConflictPolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, opts.WorkflowIDReusePolicy)
	require.Equal(t, 20*time.Minute+provisionTimeoutOverBoot, opts.WorkflowExecutionTimeout)
	require.Equal(t, "default", keyword(t, opts, MachineNamespaceKey))
	require.Equal(t, "vm1", keyword(t, opts, MachineNameKey))
	require.Equal(t, []any{ProvisionMachineName, in}, *args)
}

func TestStarterDeprovisionAndHealthCheckOptions(t *testing.T) {
	c := mocks.NewClient(t)
	s := Starter{Client: c, TaskQueue: "other"}

	opts, args := started(t, c)
	_, err := s.StartDeprovision(context.Background(), DeprovisionInput{Namespace: "default", Name: "vm1", Force: true})
	require.NoError(t, err)
	require.Equal(t, "deprovision/default/vm1", opts.ID)
	require.Equal(t, "other", opts.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, opts.WorkflowIDConflictPolicy)
	require.Equal(t, deprovisionTimeout, opts.WorkflowExecutionTimeout)
	require.Equal(t, "vm1", keyword(t, opts, MachineNameKey))
	require.Equal(t, []any{DeprovisionMachineName, DeprovisionInput{Namespace: "default", Name: "vm1", Force: true}}, *args)

	opts, args = started(t, c)
	_, err = s.StartHealthCheck(context.Background())
	require.NoError(t, err)
	require.Equal(t, HealthCheckWorkflowID, opts.ID)
	require.Equal(t, healthCheckTimeout, opts.WorkflowExecutionTimeout)
	require.Equal(t, []any{ClusterHealthCheckName}, *args)

	action := s.HealthCheckAction()
	require.Equal(t, ClusterHealthCheckName, action.Workflow)
	require.Equal(t, "other", action.TaskQueue)
}

func TestStarterSetsTheCallersMemoOnly(t *testing.T) {
	c := mocks.NewClient(t)
	s := Starter{Client: c}
	memo := map[string]any{"machineUID": "uid-1", "attempt": 2}

	opts, _ := started(t, c)
	_, err := s.StartProvision(context.Background(), ProvisionInput{Namespace: "default", Name: "vm1"}, WithMemo(memo))
	require.NoError(t, err)
	require.Equal(t, memo, opts.Memo)
	require.Equal(t, "provision/default/vm1", opts.ID, "an option leaves the ID as it is")

	opts, _ = started(t, c)
	_, err = s.StartDeprovision(context.Background(), DeprovisionInput{Namespace: "default", Name: "vm1"}, nil, WithMemo(memo))
	require.NoError(t, err)
	require.Equal(t, memo, opts.Memo)
	require.Equal(t, deprovisionTimeout, opts.WorkflowExecutionTimeout)

	opts, _ = started(t, c)
	_, err = s.StartProvision(context.Background(), ProvisionInput{Namespace: "default", Name: "vm2"})
	require.NoError(t, err)
	require.Nil(t, opts.Memo, "no option, no memo")
}

func TestStarterRejectsBadInputWithoutCallingTemporal(t *testing.T) {
	c := mocks.NewClient(t) // fails the test on any unexpected call
	s := Starter{Client: c}
	_, err := s.StartProvision(context.Background(), ProvisionInput{Namespace: "default", Name: "vm1", BootTimeout: "later"})
	require.ErrorContains(t, err, `provision Machine default/vm1: bootTimeout "later"`)
	_, err = s.StartDeprovision(context.Background(), DeprovisionInput{Namespace: "default"})
	require.ErrorContains(t, err, `deprovision Machine default/: name ""`)
	_, err = Starter{}.StartHealthCheck(context.Background())
	require.ErrorContains(t, err, "Client is nil")
}

func TestStarterWrapsStartErrors(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, context.DeadlineExceeded).Once()
	_, err := Starter{Client: c}.StartProvision(context.Background(), ProvisionInput{Namespace: "default", Name: "vm1"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "start ProvisionMachine workflow provision/default/vm1")
}

func TestEveryScheduledActivityHasAPolicy(t *testing.T) {
	for _, name := range append(slices.Clone(provisionSteps),
		"UpdateMachineStatus", "LookupPlacement", "DeleteVirtualMachine", "DeleteVolumes", "DeleteNetwork",
		"DeleteNetworkConfiguration", "ListClusters", "CheckCluster", "RecordClusterHealth",
		"InvalidateClusterClient", AwaitWorkflowClosedName) {
		o := activityOptions(name)
		require.Positive(t, o.StartToCloseTimeout, name)
		require.Positive(t, o.ScheduleToCloseTimeout, name, "retries are bounded")
		require.GreaterOrEqual(t, o.ScheduleToCloseTimeout, o.StartToCloseTimeout, name)
		require.NotEmpty(t, o.RetryPolicy.NonRetryableErrorTypes, name)
	}
	require.Panics(t, func() { activityOptions("NoSuchActivity") })
	boot := bootWaitOptions(3 * time.Minute)
	require.Equal(t, 3*time.Minute, boot.ScheduleToCloseTimeout)
	require.Positive(t, boot.HeartbeatTimeout)
	require.Positive(t, activityOptions("DeleteVirtualMachine").HeartbeatTimeout)
}
