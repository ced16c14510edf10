package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/machineflow/machineflow/workflows"
)

// queryTimeout bounds one status query: a query needs a worker, and
// without one it would block until the caller's deadline.
const queryTimeout = 5 * time.Second

// waitFlags are the flags of commands that can wait for their workflow.
type waitFlags struct {
	wait    bool
	timeout time.Duration
	poll    time.Duration
}

func (w *waitFlags) bind(cmd *cobra.Command) {
	cmd.Flags().BoolVarP(&w.wait, "wait", "w", false, "wait for the workflow to close, showing its steps as they progress")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 30*time.Minute, "with --wait: give up waiting after this long (0: no limit); the workflow keeps running")
	cmd.Flags().DurationVar(&w.poll, "poll-interval", time.Second, "with --wait: how often to query the workflow's status")
}

func (w waitFlags) validate() error {
	if w.timeout < 0 {
		return usageErrorf("--timeout %s: must not be negative", w.timeout)
	}
	if w.poll <= 0 {
		return usageErrorf("--poll-interval %s: must be positive", w.poll)
	}
	return nil
}

// Outcome is how a workflow ended, as `-o json` prints it.
type Outcome struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// Status is Completed, Failed, Canceled, Terminated or TimedOut.
	Status string `json:"status"`
	// Steps are the steps seen while waiting; fast steps between two
	// polls are not seen.
	Steps   []string `json:"steps,omitempty"`
	Result  any      `json:"result,omitempty"`
	Failure []Cause  `json:"failure,omitempty"`
}

// follow waits for run to close. With poll set it queries the status
// every interval and reports each new step (and each new error) through
// onStep. A failed workflow gives an Outcome with its failure chain and a
// nil error; the error is for not knowing how it ended.
func (a *app) follow(ctx context.Context, c client.Client, run client.WorkflowRun, w waitFlags, poll bool, result any) (Outcome, error) {
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, w.timeout, errWaitTimeout)
		defer cancel()
	}
	o := Outcome{WorkflowID: run.GetID(), RunID: run.GetRunID()}

	var wg sync.WaitGroup
	stopPolling := make(chan struct{})
	if poll {
		wg.Go(func() {
			o.Steps = a.pollSteps(ctx, c, run, w.poll, stopPolling)
		})
	}
	err := run.Get(ctx, result)
	close(stopPolling)
	wg.Wait()

	if expired(ctx) {
		<-ctx.Done() // set a moment after the deadline has passed
		if errors.Is(context.Cause(ctx), errWaitTimeout) {
			return o, withCode(ExitTimeout, fmt.Errorf("workflow %s still running after --timeout %s", run.GetID(), w.timeout))
		}
		// Interrupted (Ctrl-C): the workflow is not affected.
		return o, withCode(ExitFailed, fmt.Errorf("stopped waiting (%w); workflow %s keeps running", ctx.Err(), run.GetID()))
	}
	if err == nil {
		o.Status, o.Result = "Completed", result
		return o, nil
	}
	var execErr *temporal.WorkflowExecutionError
	if !errors.As(err, &execErr) {
		return o, fmt.Errorf("waiting for workflow %s: %w", run.GetID(), err)
	}
	o.Status = closeStatus(err)
	o.Failure = failureChain(err)
	return o, nil
}

// closeStatus names how a failed run closed, in Temporal's words.
func closeStatus(err error) string {
	var canceled *temporal.CanceledError
	var terminated *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &canceled):
		return "Canceled"
	case errors.As(err, &terminated):
		return "Terminated"
	case errors.As(err, &timeout) && !hasApplicationError(err):
		return "TimedOut"
	}
	return "Failed"
}

func hasApplicationError(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app)
}

// pollSteps queries the status until stop is closed, printing each step
// and error that is new, and returns the steps seen.
func (a *app) pollSteps(ctx context.Context, c client.Client, run client.WorkflowRun, every time.Duration, stop <-chan struct{}) []string {
	var (
		steps     []string
		last      workflows.Progress
		lastQuery string
	)
	w := a.stepWriter()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		p, err := queryProgress(ctx, c, run.GetID(), run.GetRunID())
		if err != nil {
			// A query fails while no worker runs; the result still comes.
			// One cut short by the end of the wait says nothing.
			if msg := oneLine(err); msg != lastQuery && !expired(ctx) {
				fmt.Fprintf(a.errOut, "note: status query failed (is a worker running?): %s\n", msg)
				lastQuery = msg
			}
		} else {
			if p.Step != last.Step || p.Attempts[p.Step] != last.Attempts[p.Step] {
				steps = append(steps, p.Step)
				fmt.Fprintln(w, formatStep(p))
			}
			if p.LastError != "" && p.LastError != last.LastError {
				fmt.Fprintf(w, "  ! %s\n", p.LastError)
			}
			last = p
		}
		select {
		case <-stop:
			return steps
		case <-ticker.C:
		}
	}
}

// errWaitTimeout is the cause of a wait's end by --timeout.
var errWaitTimeout = errors.New("--timeout elapsed")

// expired reports whether ctx has ended or reached its deadline; the
// deadline can pass a moment before ctx.Err is set.
func expired(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(deadline))
}

// stepWriter is where steps go: with the result in table mode, to stderr
// with -o json so that stdout holds one JSON document.
func (a *app) stepWriter() io.Writer {
	if a.printer().json() {
		return a.errOut
	}
	return a.out
}

// formatStep is one progress line: time since the workflow started, the
// step, and the attempt when it is not the first.
func formatStep(p workflows.Progress) string {
	line := fmt.Sprintf("  %-28s", p.Step)
	if n := p.Attempts[p.Step]; n > 1 {
		line += fmt.Sprintf(" (attempt %d)", n)
	}
	if !p.StartedAt.IsZero() {
		line = fmt.Sprintf("  [%6.1fs]%s", time.Since(p.StartedAt).Seconds(), line)
	}
	return line
}

// queryProgress asks a lifecycle workflow for its Progress.
func queryProgress(ctx context.Context, c client.Client, id, runID string) (workflows.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var p workflows.Progress
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.StatusQuery)
	if err != nil {
		return p, fmt.Errorf("query %s of workflow %s: %w", workflows.StatusQuery, id, err)
	}
	if err := v.Get(&p); err != nil {
		return p, fmt.Errorf("decode %s of workflow %s: %w", workflows.StatusQuery, id, err)
	}
	return p, nil
}

// failed is the error a command returns for a workflow that did not
// complete: the reason, one line.
func failed(o Outcome) error {
	if o.Status == "Completed" {
		return nil
	}
	return withCode(ExitFailed, fmt.Errorf("workflow %s %s: %s", o.WorkflowID, closedVerb[o.Status], describeFailure(o.Failure)))
}

// closedVerb says how a run closed, for messages.
var closedVerb = map[string]string{
	"Failed":     "failed",
	"Canceled":   "was cancelled",
	"Terminated": "was terminated",
	"TimedOut":   "timed out",
}
