package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/controller/decide"
	"github.com/machineflow/machineflow/workflows"
)

// Defaults of TemporalTriggerOptions.
const (
	DefaultRetryInitial = time.Minute
	DefaultRetryMax     = 30 * time.Minute
	DefaultQueryTimeout = 5 * time.Second
)

// Memo keys a TemporalTrigger sets on the runs it starts. They tie a run to
// one Machine object and generation, so that a Machine re-created under
// the same name is not mistaken for one that was already provisioned.
const (
	MemoMachineUID = "machineUID"
	MemoGeneration = "generation"
	MemoAttempt    = "attempt"
	MemoForce      = "force"
)

// Failure reasons of runs that did not fail with an application error.
const (
	ReasonTimeout    = "Timeout"
	ReasonCancelled  = "Cancelled"
	ReasonTerminated = "Terminated"
	reasonError      = "Error"
)

// TemporalTriggerOptions tune a TemporalTrigger; the zero value is usable.
type TemporalTriggerOptions struct {
	// TaskQueue defaults to workflows.DefaultTaskQueue.
	TaskQueue string
	// BootTimeout is passed to ProvisionMachine; zero means its default.
	BootTimeout time.Duration
	// RetryBackoff spaces the runs started after a failed one; zero means
	// DefaultRetryInitial and DefaultRetryMax.
	RetryBackoff Backoff
	// QueryTimeout bounds the status query of Progress; zero means
	// DefaultQueryTimeout.
	QueryTimeout time.Duration
	// DataConverter must match the client's to read memos; nil means the
	// SDK default.
	DataConverter converter.DataConverter
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// TemporalTrigger is the Trigger on a Temporal client. It starts runs
// through workflows.Starter (IDs, task queue, timeouts, policies) and keeps
// what it needs to decide about later runs in the runs' memos, so it holds
// no state of its own: any number of replicas may share a namespace.
type TemporalTrigger struct {
	client client.Client
	opts   TemporalTriggerOptions
}

var _ Trigger = (*TemporalTrigger)(nil)

// NewTemporalTrigger checks the options and fills in their defaults.
func NewTemporalTrigger(c client.Client, opts TemporalTriggerOptions) (*TemporalTrigger, error) {
	if c == nil {
		return nil, errors.New("controller.NewTemporalTrigger: Temporal client is nil")
	}
	if opts.RetryBackoff == (Backoff{}) {
		opts.RetryBackoff = Backoff{Initial: DefaultRetryInitial, Max: DefaultRetryMax}
	}
	var errs []error
	errs = append(errs, opts.RetryBackoff.validate("retry backoff"))
	if opts.BootTimeout < 0 || opts.BootTimeout > workflows.MaxBootTimeout {
		errs = append(errs, fmt.Errorf("boot timeout %s: want 0 (the default) up to %s", opts.BootTimeout, workflows.MaxBootTimeout))
	}
	if opts.QueryTimeout < 0 {
		errs = append(errs, fmt.Errorf("query timeout %s: must not be negative", opts.QueryTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("controller.NewTemporalTrigger: %w", err)
	}
	if opts.QueryTimeout == 0 {
		opts.QueryTimeout = DefaultQueryTimeout
	}
	if opts.DataConverter == nil {
		opts.DataConverter = converter.GetDefaultDataConverter()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &TemporalTrigger{client: c, opts: opts}, nil
}

// workflowKind is one of the workflows a Trigger starts for a Machine.
type workflowKind int

const (
	provisionKind workflowKind = iota
	deprovisionKind
	ejectISOKind
)

func (k workflowKind) id(namespace, name string) string {
	switch k {
	case provisionKind:
		return workflows.ProvisionWorkflowID(namespace, name)
	case ejectISOKind:
		return workflows.EjectISOWorkflowID(namespace, name)
	}
	return workflows.DeprovisionWorkflowID(namespace, name)
}

// EnsureProvisioned implements Trigger.
func (t *TemporalTrigger) EnsureProvisioned(ctx context.Context, machine *v1alpha1.Machine) (Run, error) {
	return t.ensure(ctx, provisionKind, machine, false)
}

// EnsureDeprovisioned implements Trigger.
func (t *TemporalTrigger) EnsureDeprovisioned(ctx context.Context, machine *v1alpha1.Machine, force bool) (Run, error) {
	return t.ensure(ctx, deprovisionKind, machine, force)
}

// EnsureISOEjected implements Trigger.
func (t *TemporalTrigger) EnsureISOEjected(ctx context.Context, machine *v1alpha1.Machine) (Run, error) {
	return t.ensure(ctx, ejectISOKind, machine, false)
}

func (t *TemporalTrigger) ensure(ctx context.Context, kind workflowKind, m *v1alpha1.Machine, force bool) (Run, error) {
	id := kind.id(m.Namespace, m.Name)
	latest, err := t.describe(ctx, id)
	if err != nil {
		return Run{}, err
	}
	observed := decide.Latest{}
	if latest != nil {
		observed = decide.Latest{State: latest.State.decided(), Mine: latest.belongsTo(m),
			Generation: latest.Generation, Force: latest.Force, Attempt: latest.Attempt, CloseTime: latest.CloseTime}
	}
	want := decide.Want{Generation: m.Generation, CheckGeneration: kind == provisionKind, Force: kind == deprovisionKind && force}
	action := decide.ForRun(observed, want, t.opts.RetryBackoff.Delay, t.opts.Clock())
	switch action.Verb {
	case decide.Start:
		return t.start(ctx, kind, m, force, action.Attempt)
	case decide.ForceOpen:
		return t.forceOpenRun(ctx, latest.Run)
	case decide.Report:
		return latest.Run, nil
	}
	run := latest.Run
	if run.Failure, err = t.failure(ctx, run); err != nil {
		return Run{}, err
	}
	run.RetryAt = action.RetryAt
	return run, nil
}

// describedRun is a Run with what its memo says about its Machine.
type describedRun struct {
	Run
	machineUID string
}

// belongsTo says whether the run was for this Machine object rather than
// an earlier one of the same name. Runs without a memo (started from the
// CLI) count when they started after the Machine was created.
func (r describedRun) belongsTo(m *v1alpha1.Machine) bool {
	if r.machineUID != "" {
		return r.machineUID == string(m.UID)
	}
	return !r.StartTime.Before(m.CreationTimestamp.Time)
}

// describe returns the latest run of a workflow ID, nil when there is none.
func (t *TemporalTrigger) describe(ctx context.Context, id string) (*describedRun, error) {
	desc, err := t.client.DescribeWorkflow(ctx, id, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe workflow %s: %w", id, err)
	}
	r := &describedRun{Run: Run{
		WorkflowID: id,
		RunID:      desc.WorkflowExecution.RunID,
		State:      stateOf(desc.Status),
		StartTime:  desc.WorkflowStartTime,
	}}
	if desc.WorkflowCloseTime != nil {
		r.CloseTime = *desc.WorkflowCloseTime
	}
	if r.State == StateRunning {
		r.Retrying = retrying(desc.RawResponse.GetPendingActivities())
	}
	t.readMemo(desc.Memo, r)
	return r, nil
}

// retrying is the last failure of the first pending activity that has
// failed before: the step the run is retrying. Activity messages name
// Machines and configs, never secrets, like the workflows' own failures.
func retrying(pending []*workflowpb.PendingActivityInfo) *Failure {
	for _, a := range pending {
		f := a.GetLastFailure()
		if f == nil {
			continue
		}
		reason := f.GetApplicationFailureInfo().GetType()
		switch {
		case reason != "":
		case f.GetTimeoutFailureInfo() != nil:
			reason = ReasonTimeout
		default:
			reason = reasonError
		}
		return &Failure{Reason: reason, Message: a.GetActivityType().GetName() + ": " + f.GetMessage()}
	}
	return nil
}

func stateOf(s enumspb.WorkflowExecutionStatus) State {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_PAUSED:
		return StateRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return StateCompleted
	default:
		return StateFailed
	}
}

// readMemo fills the run from its memo. A key that is missing, or that
// someone else wrote with another type, stays zero: the run is then judged
// like one started without a memo, rather than blocking every reconcile.
func (t *TemporalTrigger) readMemo(memo *commonpb.Memo, r *describedRun) {
	fields := memo.GetFields()
	for key, dst := range map[string]any{
		MemoMachineUID: &r.machineUID,
		MemoGeneration: &r.Generation,
		MemoAttempt:    &r.Attempt,
		MemoForce:      &r.Force,
	} {
		if p, ok := fields[key]; ok {
			_ = t.opts.DataConverter.FromPayload(p, dst)
		}
	}
}

// failure reads why a closed run did not complete.
func (t *TemporalTrigger) failure(ctx context.Context, r Run) (*Failure, error) {
	err := t.client.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, nil)
	if err == nil {
		return nil, fmt.Errorf("workflow %s run %s: described as closed without success, but its result is a success", r.WorkflowID, r.RunID)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("read the failure of workflow %s run %s: %w", r.WorkflowID, r.RunID, err)
	}
	var (
		appErr     *temporal.ApplicationError
		timeoutErr *temporal.TimeoutError
		cancelErr  *temporal.CanceledError
		termErr    *temporal.TerminatedError
	)
	switch {
	case errors.As(err, &appErr):
		return &Failure{Reason: appErr.Type(), Message: appErr.Message()}, nil
	case errors.As(err, &timeoutErr):
		return &Failure{Reason: ReasonTimeout, Message: "the workflow timed out (" + timeoutErr.TimeoutType().String() + ")"}, nil
	case errors.As(err, &cancelErr):
		return &Failure{Reason: ReasonCancelled, Message: "the workflow was cancelled"}, nil
	case errors.As(err, &termErr):
		return &Failure{Reason: ReasonTerminated, Message: "the workflow was terminated"}, nil
	}
	var execErr *temporal.WorkflowExecutionError
	if errors.As(err, &execErr) {
		return &Failure{Reason: reasonError, Message: execErr.Unwrap().Error()}, nil
	}
	return nil, fmt.Errorf("read the failure of workflow %s run %s: %w", r.WorkflowID, r.RunID, err)
}

// start starts a run for the Machine's current generation.
func (t *TemporalTrigger) start(ctx context.Context, kind workflowKind, m *v1alpha1.Machine, force bool, attempt int) (Run, error) {
	memo := map[string]any{MemoMachineUID: string(m.UID), MemoGeneration: m.Generation, MemoAttempt: attempt}
	if kind == deprovisionKind {
		memo[MemoForce] = force
	}
	starter := workflows.Starter{Client: t.client, TaskQueue: t.opts.TaskQueue}
	var (
		run client.WorkflowRun
		err error
	)
	switch kind {
	case provisionKind:
		in := workflows.ProvisionInput{Namespace: m.Namespace, Name: m.Name}
		if t.opts.BootTimeout > 0 {
			in.BootTimeout = t.opts.BootTimeout.String()
		}
		run, err = starter.StartProvision(ctx, in, workflows.WithMemo(memo))
	case ejectISOKind:
		run, err = starter.StartEjectISO(ctx, workflows.EjectISOInput{Namespace: m.Namespace, Name: m.Name}, workflows.WithMemo(memo))
	default:
		run, err = starter.StartDeprovision(ctx, workflows.DeprovisionInput{Namespace: m.Namespace, Name: m.Name, Force: force}, workflows.WithMemo(memo))
	}
	if err != nil {
		return Run{}, err
	}
	return Run{
		WorkflowID: run.GetID(),
		RunID:      run.GetRunID(),
		State:      StateRunning,
		Started:    true,
		Generation: m.Generation,
		Attempt:    attempt,
		Force:      force && kind == deprovisionKind,
		StartTime:  t.opts.Clock(),
	}, nil
}

// AwaitClose implements Trigger with a long poll for the run's close
// event (GetWorkflowExecutionHistory waiting for new events, filtered to
// the close event), which the server answers when the run closes: one
// request per server long-poll interval while the run is open, and no
// result or failure to decode.
func (t *TemporalTrigger) AwaitClose(ctx context.Context, run Run) error {
	events := t.client.GetWorkflowHistory(ctx, run.WorkflowID, run.RunID, true, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	if !events.HasNext() {
		return fmt.Errorf("wait for workflow %s run %s to close: the server returned no close event", run.WorkflowID, run.RunID)
	}
	if _, err := events.Next(); err != nil {
		return fmt.Errorf("wait for workflow %s run %s to close: %w", run.WorkflowID, run.RunID, err)
	}
	return nil
}

// forceOpenRun sends the force update to an open deprovision. The update
// ID makes repeated calls one update per run for the server.
func (t *TemporalTrigger) forceOpenRun(ctx context.Context, r Run) (Run, error) {
	handle, err := t.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:     workflows.ForceUpdate,
		WorkflowID:   r.WorkflowID,
		RunID:        r.RunID,
		UpdateName:   workflows.ForceUpdate,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, nil)
	}
	if err != nil {
		return Run{}, fmt.Errorf("send the %s update to workflow %s run %s: %w", workflows.ForceUpdate, r.WorkflowID, r.RunID, err)
	}
	r.Force = true
	return r, nil
}

// Progress implements Trigger.
func (t *TemporalTrigger) Progress(ctx context.Context, namespace, name string) (Progress, error) {
	var p Progress
	for _, k := range []workflowKind{provisionKind, deprovisionKind} {
		latest, err := t.describe(ctx, k.id(namespace, name))
		if err != nil {
			return Progress{}, err
		}
		if latest == nil {
			continue
		}
		run := latest.Run
		if run.State == StateFailed {
			if run.Failure, err = t.failure(ctx, run); err != nil {
				return Progress{}, err
			}
		}
		if k == provisionKind {
			p.Provision = &run
		} else {
			p.Deprovision = &run
		}
	}
	open := p.Deprovision
	if open == nil || open.State != StateRunning {
		open = p.Provision
	}
	if open == nil || open.State != StateRunning {
		return p, nil
	}
	qctx, cancel := context.WithTimeout(ctx, t.opts.QueryTimeout)
	defer cancel()
	v, err := t.client.QueryWorkflow(qctx, open.WorkflowID, open.RunID, workflows.StatusQuery)
	if err != nil {
		return p, fmt.Errorf("query %s of workflow %s run %s: %w", workflows.StatusQuery, open.WorkflowID, open.RunID, err)
	}
	var step workflows.Progress
	if err := v.Get(&step); err != nil {
		return p, fmt.Errorf("decode %s of workflow %s run %s: %w", workflows.StatusQuery, open.WorkflowID, open.RunID, err)
	}
	p.Step = &step
	return p, nil
}
