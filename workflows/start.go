package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// HealthCheckWorkflowID is the ID of a health check started on demand; the
// Schedule's runs get IDs derived from HealthCheckScheduleID.
const HealthCheckWorkflowID = HealthCheckScheduleID

// Execution timeouts: each is above the sum of the activity bounds a run
// can meet (options.go), so a timeout never cuts compensation short; they
// only stop a run stuck by a bug.
const (
	provisionTimeoutOverBoot = 3 * time.Hour
	deprovisionTimeout       = RemoteCleanupDeadline + 3*time.Hour
	healthCheckTimeout       = 10 * time.Minute
	ejectISOTimeout          = 30 * time.Minute
)

// ProvisionWorkflowID is the ID of the ProvisionMachine of a Machine: at
// most one is open per Machine.
func ProvisionWorkflowID(namespace, name string) string {
	return "provision/" + namespace + "/" + name
}

// DeprovisionWorkflowID is the ID of the DeprovisionMachine of a Machine.
func DeprovisionWorkflowID(namespace, name string) string {
	return "deprovision/" + namespace + "/" + name
}

// EjectISOWorkflowID is the ID of the EjectISO of a Machine.
func EjectISOWorkflowID(namespace, name string) string {
	return "eject-iso/" + namespace + "/" + name
}

// Register registers the workflows under their type names and the control
// activities they need. The machine activities are registered by the
// worker from package activities.
func Register(r worker.Registry, control *ControlActivities) {
	RegisterWorkflows(r)
	r.RegisterActivityWithOptions(control.AwaitWorkflowClosed, activity.RegisterOptions{Name: AwaitWorkflowClosedName})
}

// RegisterWorkflows registers the workflows under their type names; a
// worker.WorkflowReplayer takes it too.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ProvisionMachine, workflow.RegisterOptions{Name: ProvisionMachineName})
	r.RegisterWorkflowWithOptions(DeprovisionMachine, workflow.RegisterOptions{Name: DeprovisionMachineName})
	r.RegisterWorkflowWithOptions(ClusterHealthCheck, workflow.RegisterOptions{Name: ClusterHealthCheckName})
	r.RegisterWorkflowWithOptions(EjectISO, workflow.RegisterOptions{Name: EjectISOName})
}

// Starter starts the workflows with their IDs, task queue and policies. It
// is what the starter CLI and the controller use.
type Starter struct {
	Client client.Client
	// TaskQueue defaults to DefaultTaskQueue.
	TaskQueue string
}

// StartOption adds to what a Starter sets on a run. IDs, timeouts and
// policies stay the Starter's: an option cannot change them.
type StartOption func(*startExtras)

// startExtras are what the options may set.
type startExtras struct {
	memo map[string]any
}

// WithMemo sets the run's memo: values that DescribeWorkflow returns and
// the UI shows, e.g. the controller's record of which Machine object and
// generation a run is for. Like inputs, a memo is readable by anyone with
// UI access: never put secret material in it.
func WithMemo(memo map[string]any) StartOption {
	return func(x *startExtras) { x.memo = memo }
}

// StartProvision starts ProvisionMachine for a Machine, or returns the run
// that is already open for it (with the memo it was started with).
func (s Starter) StartProvision(ctx context.Context, in ProvisionInput, opts ...StartOption) (client.WorkflowRun, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("provision Machine %s/%s: %w", in.Namespace, in.Name, err)
	}
	boot, _ := in.bootTimeout() // validated above
	o := s.machineOptions(ProvisionWorkflowID(in.Namespace, in.Name), boot+provisionTimeoutOverBoot, in.Namespace, in.Name, opts)
	return s.start(ctx, o, ProvisionMachineName, in)
}

// StartDeprovision starts DeprovisionMachine for a Machine, or returns the
// run that is already open for it (with the memo it was started with).
func (s Starter) StartDeprovision(ctx context.Context, in DeprovisionInput, opts ...StartOption) (client.WorkflowRun, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("deprovision Machine %s/%s: %w", in.Namespace, in.Name, err)
	}
	o := s.machineOptions(DeprovisionWorkflowID(in.Namespace, in.Name), deprovisionTimeout, in.Namespace, in.Name, opts)
	return s.start(ctx, o, DeprovisionMachineName, in)
}

// StartEjectISO starts EjectISO for a Machine, or returns the run that is
// already open for it (with the memo it was started with).
func (s Starter) StartEjectISO(ctx context.Context, in EjectISOInput, opts ...StartOption) (client.WorkflowRun, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("eject the ISO of Machine %s/%s: %w", in.Namespace, in.Name, err)
	}
	o := s.machineOptions(EjectISOWorkflowID(in.Namespace, in.Name), ejectISOTimeout, in.Namespace, in.Name, opts)
	return s.start(ctx, o, EjectISOName, in)
}

// machineOptions are the options of a run for one Machine: the common
// ones, its search attributes and what the caller's options add.
func (s Starter) machineOptions(id string, timeout time.Duration, namespace, name string, opts []StartOption) client.StartWorkflowOptions {
	o := s.options(id, timeout)
	o.TypedSearchAttributes = temporal.NewSearchAttributes(machineSearchAttributes(namespace, name)...)
	var x startExtras
	for _, opt := range opts {
		if opt != nil {
			opt(&x)
		}
	}
	o.Memo = x.memo
	return o
}

// StartHealthCheck starts ClusterHealthCheck now, or returns the run that
// is already open.
func (s Starter) StartHealthCheck(ctx context.Context) (client.WorkflowRun, error) {
	return s.start(ctx, s.options(HealthCheckWorkflowID, healthCheckTimeout), ClusterHealthCheckName)
}

// HealthCheckAction is the Schedule action that runs ClusterHealthCheck.
func (s Starter) HealthCheckAction() *client.ScheduleWorkflowAction {
	return &client.ScheduleWorkflowAction{
		ID:                       HealthCheckWorkflowID,
		Workflow:                 ClusterHealthCheckName,
		TaskQueue:                s.taskQueue(),
		WorkflowExecutionTimeout: healthCheckTimeout,
	}
}

// options: an open run with the same ID is returned rather than
// duplicated (USE_EXISTING), and a closed one may be started again
// (ALLOW_DUPLICATE), e.g. to provision a Machine whose last run failed.
func (s Starter) options(id string, timeout time.Duration) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.taskQueue(),
		WorkflowExecutionTimeout: timeout,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}
}

func (s Starter) taskQueue() string {
	if s.TaskQueue == "" {
		return DefaultTaskQueue
	}
	return s.TaskQueue
}

func (s Starter) start(ctx context.Context, opts client.StartWorkflowOptions, workflowType string, args ...any) (client.WorkflowRun, error) {
	if s.Client == nil {
		return nil, errors.New("workflows.Starter: Client is nil")
	}
	run, err := s.Client.ExecuteWorkflow(ctx, opts, workflowType, args...)
	if err != nil {
		return nil, fmt.Errorf("start %s workflow %s: %w", workflowType, opts.ID, err)
	}
	return run, nil
}
