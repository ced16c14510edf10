package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/machineflow/machineflow/activities/contract"
)

// AwaitWorkflowClosedName is the activity DeprovisionMachine uses to wait
// for a cancelled ProvisionMachine to finish its compensation.
const AwaitWorkflowClosedName = "AwaitWorkflowClosed"

// activityPolicy is one row of the activity option table.
// Every activity has a StartToClose bound, and retries stop at
// scheduleToClose (or maxAttempts), so nothing retries forever.
type activityPolicy struct {
	startToClose    time.Duration
	scheduleToClose time.Duration
	// heartbeat is set for activities that wait; they heartbeat at least
	// this often, so a lost worker is noticed within it.
	heartbeat   time.Duration
	maxInterval time.Duration
	maxAttempts int32
}

// activityPolicies maps every activity name the workflows schedule to its
// options. WaitForVirtualMachine's bounds are replaced by the run's boot
// deadline (bootWaitOptions).
var activityPolicies = map[string]activityPolicy{
	contract.ResolvePlacementName: {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	contract.ValidateClusterName:  {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	// LoadMachine retries while a referenced cloud-init Secret or
	// ConfigMap does not exist yet, as the operator requeued.
	contract.LoadMachineName:           {startToClose: 30 * time.Second, scheduleToClose: 10 * time.Minute, maxInterval: time.Minute},
	contract.EnsureNamespaceName:       {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	contract.EnsureVolumesName:         {startToClose: time.Minute, scheduleToClose: 10 * time.Minute, maxInterval: time.Minute},
	contract.EnsureNetworkName:         {startToClose: time.Minute, scheduleToClose: 10 * time.Minute, maxInterval: time.Minute},
	contract.EnsureVirtualMachineName:  {startToClose: time.Minute, scheduleToClose: 10 * time.Minute, maxInterval: time.Minute},
	contract.WaitForVirtualMachineName: {startToClose: DefaultBootTimeout, scheduleToClose: DefaultBootTimeout, heartbeat: 30 * time.Second, maxInterval: 30 * time.Second},
	contract.UpdateMachineStatusName:   {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	contract.LookupPlacementName:       {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	// DeleteVirtualMachine waits until the VM and its VMI are gone.
	contract.DeleteVirtualMachineName:       {startToClose: 5 * time.Minute, scheduleToClose: 15 * time.Minute, heartbeat: 30 * time.Second, maxInterval: time.Minute},
	contract.DeleteVolumesName:              {startToClose: time.Minute, scheduleToClose: 5 * time.Minute, maxInterval: time.Minute},
	contract.DeleteNetworkName:              {startToClose: time.Minute, scheduleToClose: 5 * time.Minute, maxInterval: time.Minute},
	contract.DeleteNetworkConfigurationName: {startToClose: 30 * time.Second, scheduleToClose: 5 * time.Minute, maxInterval: 30 * time.Second},
	contract.CleanupISOName:                 {startToClose: time.Minute, scheduleToClose: 10 * time.Minute, maxInterval: time.Minute},
	contract.ListClustersName:               {startToClose: 30 * time.Second, scheduleToClose: 2 * time.Minute, maxInterval: 30 * time.Second},
	// CheckCluster reports an unhealthy cluster as a result, not an error:
	// a second attempt only covers a lost worker.
	contract.CheckClusterName:            {startToClose: 30 * time.Second, scheduleToClose: time.Minute, maxInterval: 10 * time.Second, maxAttempts: 2},
	contract.RecordClusterHealthName:     {startToClose: 30 * time.Second, scheduleToClose: 2 * time.Minute, maxInterval: 30 * time.Second},
	contract.InvalidateClusterClientName: {startToClose: 10 * time.Second, scheduleToClose: time.Minute, maxInterval: 10 * time.Second, maxAttempts: 3},
	// AwaitWorkflowClosed outlives a provision's compensation (at most the
	// sum of the delete and status bounds above, about 35 minutes).
	AwaitWorkflowClosedName: {startToClose: time.Hour, scheduleToClose: time.Hour, heartbeat: 30 * time.Second, maxInterval: 30 * time.Second},
}

// activityOptions returns the options of the named activity. A name missing
// from the table is a programming error caught by the tests.
func activityOptions(name string) workflow.ActivityOptions {
	p, ok := activityPolicies[name]
	if !ok {
		panic(fmt.Sprintf("workflows: no activity policy for %q", name))
	}
	return workflow.ActivityOptions{
		StartToCloseTimeout:    p.startToClose,
		ScheduleToCloseTimeout: p.scheduleToClose,
		HeartbeatTimeout:       p.heartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        p.maxInterval,
			MaximumAttempts:        p.maxAttempts,
			NonRetryableErrorTypes: contract.NonRetryableErrorTypes(),
		},
	}
}

// bootWaitOptions bounds WaitForVirtualMachine by the boot deadline: its
// ScheduleToClose is the deadline across all attempts, so a heartbeat
// timeout (lost worker) retries within the deadline but never past it.
func bootWaitOptions(bootTimeout time.Duration) workflow.ActivityOptions {
	o := activityOptions(contract.WaitForVirtualMachineName)
	o.StartToCloseTimeout = bootTimeout
	o.ScheduleToCloseTimeout = bootTimeout
	return o
}

// executeActivity runs the named activity with its options from the table
// and decodes its result into result (nil for activities without one).
func executeActivity(ctx workflow.Context, name string, result any, args ...any) error {
	return executeActivityWithOptions(ctx, activityOptions(name), name, result, args...)
}

// executeActivityWithOptions is executeActivity with options of the caller.
func executeActivityWithOptions(ctx workflow.Context, opts workflow.ActivityOptions, name string, result any, args ...any) error {
	ctx = workflow.WithActivityOptions(ctx, opts)
	return workflow.ExecuteActivity(ctx, name, args...).Get(ctx, result)
}
