package workflows

import (
	"errors"
	"fmt"
	"maps"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Steps that are not activity names.
const (
	StepStarted         = "Started"
	StepCompensating    = "Compensating"
	StepCancelProvision = "CancelProvision"
	StepWaitingToRetry  = "WaitingToRetry"
	StepCompleted       = "Completed"
	StepFailed          = "Failed"
	StepCancelled       = "Cancelled"
)

// tracker holds a lifecycle workflow's Progress and answers the status
// query with it. Every activity goes through run, which is the one place
// that counts attempts and records the last error.
type tracker struct {
	p Progress
}

func newTracker(ctx workflow.Context) (*tracker, error) {
	t := &tracker{p: Progress{
		Step:      StepStarted,
		Attempts:  map[string]int{},
		StartedAt: workflow.GetInfo(ctx).WorkflowStartTime,
	}}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, t.snapshot); err != nil {
		return nil, fmt.Errorf("register %s query: %w", StatusQuery, err)
	}
	return t, nil
}

func (t *tracker) snapshot() (Progress, error) {
	p := t.p
	p.Attempts = maps.Clone(t.p.Attempts)
	return p, nil
}

// begin names the step the workflow is in.
func (t *tracker) begin(step string) { t.p.Step = step }

// finish marks the workflow done in the given final step.
func (t *tracker) finish(step string) {
	t.p.Step = step
	t.p.Done = true
}

// run executes the named activity with its options from the table.
func (t *tracker) run(ctx workflow.Context, name string, result any, args ...any) error {
	return t.runWith(ctx, activityOptions(name), name, result, args...)
}

// runWith counts the execution under the activity's name. Retries the
// server makes inside one execution are not visible to workflow code; they
// show in `temporal workflow describe` (pendingActivities) while they last.
func (t *tracker) runWith(ctx workflow.Context, opts workflow.ActivityOptions, name string, result any, args ...any) error {
	t.p.Attempts[name]++
	err := executeActivityWithOptions(ctx, opts, name, result, args...)
	if err != nil {
		reason, msg := describeError(err)
		t.p.LastError = fmt.Sprintf("%s: %s: %s", name, reason, msg)
	}
	return err
}

// describeError reduces an error to a reason (the application error type,
// when there is one) and a message. It looks at the error itself when the
// workflow raised it, else at the failure inside the ActivityError, so that
// a wrapper such as the boot deadline keeps its own type. Activity messages
// name objects, never secrets, so both may go to the Machine's status.
func describeError(err error) (reason, message string) {
	cause := err
	if actErr, ok := err.(*temporal.ActivityError); ok {
		cause = actErr.Unwrap()
	}
	var appErr *temporal.ApplicationError
	switch e := cause.(type) {
	case *temporal.ApplicationError:
		reason, message = e.Type(), e.Message()
	case *temporal.TimeoutError:
		reason, message = "Timeout", fmt.Sprintf("timed out (%s)", e.TimeoutType())
		// The last failure before the timeout says why it took so long.
		if errors.As(e, &appErr) {
			reason = appErr.Type()
			message += ": " + appErr.Message()
		}
	case *temporal.CanceledError:
		reason, message = StepCancelled, "cancelled"
	default:
		message = cause.Error()
	}
	if reason == "" {
		reason = "Error"
	}
	return reason, message
}
