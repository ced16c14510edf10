package controller

import (
	"context"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"

	"github.com/machineflow/machineflow/controller/decide"
	"github.com/machineflow/machineflow/workflows"
)

// Trigger starts and inspects the lifecycle workflows of Machines. A
// reconciler holds one and calls it on every reconcile: every method is
// idempotent and keyed by the workflow IDs of the Machine
// (workflows.ProvisionWorkflowID, workflows.DeprovisionWorkflowID and
// workflows.EjectISOWorkflowID), so
// calling it again, from another replica or after a restart, never starts
// a second run.
type Trigger interface {
	// EnsureProvisioned makes sure a ProvisionMachine run exists for the
	// Machine and reports the latest one. It starts a run only when there
	// is none for this Machine yet, or when the last one failed and either
	// the Machine's generation changed since or the retry backoff has
	// elapsed (Run.RetryAt). A completed run counts whatever the
	// generation: a provisioned VM is not updated (Run.Generation tells
	// which generation it was built from).
	EnsureProvisioned(ctx context.Context, machine *v1alpha1.Machine) (Run, error)
	// EnsureDeprovisioned is EnsureProvisioned for DeprovisionMachine. A
	// failed run is retried after the backoff. force gives up on remote
	// cleanup that fails: it starts the run forced, sends the force update
	// to an open run that was not, and restarts a failed unforced run at
	// once.
	EnsureDeprovisioned(ctx context.Context, machine *v1alpha1.Machine, force bool) (Run, error)
	// EnsureISOEjected makes sure an EjectISO run
	// (workflows.EjectISOWorkflowID) exists for the Machine and reports
	// the latest one. A completed run for this Machine stands; a failed
	// one is retried after the backoff. Callers ask only while the
	// Machine's annotations want its ISO removed
	// (names.ISOCleanupPending) and to see a run they saw open end.
	EnsureISOEjected(ctx context.Context, machine *v1alpha1.Machine) (Run, error)
	// AwaitClose blocks until the run (WorkflowID and RunID, as an
	// Ensure method reported it) closes, however it ends, and then
	// returns nil. It returns an error when ctx ends first or the run
	// cannot be followed. It starts nothing, and it does not follow the
	// run into a next one (continue-as-new, a retry): that is a new run
	// for the caller to look at.
	AwaitClose(ctx context.Context, run Run) error
	// Progress reports both workflows of a Machine and the step of the
	// open one, without starting anything. When only the status query
	// fails (no worker answers), the runs are reported with the error.
	Progress(ctx context.Context, namespace, name string) (Progress, error)
}

// State is where the latest run of a workflow is.
type State string

const (
	// StateNotFound: no run for this Machine (Progress only; the Ensure
	// methods start one instead).
	StateNotFound State = "NotFound"
	// StateRunning: the run is open.
	StateRunning State = "Running"
	// StateCompleted: the run completed successfully.
	StateCompleted State = "Completed"
	// StateFailed: the run failed, timed out, was cancelled or terminated.
	StateFailed State = "Failed"
)

// decided is the state as the decide package names it.
func (s State) decided() decide.State {
	switch s {
	case StateRunning:
		return decide.Open
	case StateCompleted:
		return decide.Completed
	case StateFailed:
		return decide.Closed
	}
	return decide.NotFound
}

// Run is the latest run of one workflow of a Machine.
type Run struct {
	WorkflowID string
	RunID      string
	State      State
	// Started says that this call started the run.
	Started bool
	// Generation is the Machine generation the run was started for; 0 when
	// unknown (the run was not started by a Trigger, e.g. from the CLI).
	Generation int64
	// Attempt numbers the runs started for the same generation, from 1.
	Attempt int
	// Force says the run gives up on remote cleanup (deprovision only).
	Force bool
	// StartTime and CloseTime (zero while open) come from Temporal.
	StartTime time.Time
	CloseTime time.Time
	// Failure says why a failed run failed.
	Failure *Failure
	// Retrying says, for an open run, why it is taking long: the last
	// failure of a step it is retrying, with the step's name leading the
	// message. Nil while no step has failed.
	Retrying *Failure
	// RetryAt is, for a failed run, when an Ensure call starts the next
	// attempt (sooner if the generation changes, or with force).
	RetryAt time.Time
}

// Failure is the reason (the workflow's application error type, or
// Timeout, Cancelled, Terminated) and message of a failed run. Workflow
// errors name Machines and configs, never secrets.
type Failure struct {
	Reason  string
	Message string
}

// Progress is what Trigger.Progress reports. The runs are the latest under
// each workflow ID, whichever Machine of that name they were for.
type Progress struct {
	// Provision and Deprovision are nil when the workflow never ran.
	Provision   *Run
	Deprovision *Run
	// Step is the status query answer of the open run (deprovision first);
	// nil when none is open.
	Step *workflows.Progress
}
