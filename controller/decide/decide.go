package decide

import "time"

// Machine is what a reconcile observed of a Machine.
type Machine struct {
	Deleting     bool // deletionTimestamp set
	HasFinalizer bool // machineflow's finalizer present
	OurProvider  bool // spec.provider is one machineflow handles
}

// MachineAction is what a reconcile does with a Machine.
type MachineAction string

const (
	// Ignore: nothing to do (not ours, or being deleted without our finalizer).
	Ignore MachineAction = "Ignore"
	// AddFinalizer goes first and alone, so no workflow can create anything
	// for a Machine that could vanish without a deprovision.
	AddFinalizer MachineAction = "AddFinalizer"
	// EnsureProvisioned: the Machine should be running.
	EnsureProvisioned MachineAction = "EnsureProvisioned"
	// EnsureDeprovisioned: the Machine is being deleted; the finalizer goes
	// once a deprovision completed.
	EnsureDeprovisioned MachineAction = "EnsureDeprovisioned"
)

// ForMachine decides a reconcile. A Machine whose provider changed after we
// took it keeps the finalizer, so its deletion still cleans up.
func ForMachine(m Machine) MachineAction {
	switch {
	case m.Deleting && m.HasFinalizer:
		return EnsureDeprovisioned
	case m.Deleting, !m.OurProvider:
		return Ignore
	case !m.HasFinalizer:
		return AddFinalizer
	}
	return EnsureProvisioned
}

// State is where the latest run of a workflow ID is.
type State int

const (
	NotFound State = iota
	Open
	Completed
	// Closed: failed, timed out, cancelled or terminated.
	Closed
)

// Latest is the latest run under a workflow ID, as observed.
type Latest struct {
	State State
	// Mine says the run was for this Machine object, not an earlier one of
	// the same name.
	Mine bool
	// Generation the run was started for; 0 when unknown (started from the
	// CLI), which never counts as outdated.
	Generation int64
	Force      bool
	Attempt    int
	CloseTime  time.Time
}

// Want is what the caller asks for.
type Want struct {
	// Generation is the Machine's; it outdates a closed run of another
	// generation (provision only).
	Generation int64
	// CheckGeneration is set for workflows that apply the spec (provision).
	CheckGeneration bool
	// Force asks a deprovision to give up on remote cleanup.
	Force bool
}

// RunVerb is what an Ensure call does.
type RunVerb string

const (
	// Start a new run with Attempt.
	Start RunVerb = "Start"
	// Report the latest run as it is.
	Report RunVerb = "Report"
	// ForceOpen tells the open run to give up on remote cleanup.
	ForceOpen RunVerb = "ForceOpen"
	// Wait reports the failed run until RetryAt, when the next attempt starts.
	Wait RunVerb = "Wait"
)

// RunAction is the decision of an Ensure call.
type RunAction struct {
	Verb    RunVerb
	Attempt int       // Start
	RetryAt time.Time // Wait
}

// ForRun decides an Ensure call from the latest run, what is wanted, the
// backoff after a failed attempt and the time now.
func ForRun(latest Latest, want Want, backoff func(attempt int) time.Duration, now time.Time) RunAction {
	switch {
	case latest.State == NotFound:
		return RunAction{Verb: Start, Attempt: 1}
	case latest.State == Open:
		// Only one run per ID can be open, whichever Machine it is for:
		// starting would return this one anyway.
		if want.Force && !latest.Force {
			return RunAction{Verb: ForceOpen}
		}
		return RunAction{Verb: Report}
	case !latest.Mine:
		return RunAction{Verb: Start, Attempt: 1}
	case latest.State == Completed:
		return RunAction{Verb: Report}
	case want.CheckGeneration && latest.Generation != 0 && latest.Generation != want.Generation,
		want.Force && !latest.Force:
		// A new spec or a forced deprovision is a new first attempt.
		return RunAction{Verb: Start, Attempt: 1}
	}
	retryAt := latest.CloseTime.Add(backoff(latest.Attempt))
	if now.Before(retryAt) {
		return RunAction{Verb: Wait, RetryAt: retryAt}
	}
	return RunAction{Verb: Start, Attempt: max(latest.Attempt, 1) + 1}
}

// Requeue says when to look at a Machine's run again, within [lo, hi].
// A completed run needs no look: only a change to the Machine can ask for
// more. An open run is looked at after as long as it has been running, so
// the interval doubles without any state kept; follow is how long to
// await its close meanwhile (the requeue plus lo, so the waiter overlaps
// the requeue that replaces it). A failed run is looked at when its retry
// is due, or after hi when no retry is planned.
func Requeue(state State, started, retryAt, now time.Time, lo, hi time.Duration) (after, follow time.Duration) {
	switch state {
	case Open:
		after = max(lo, min(now.Sub(started), hi))
		return after, after + lo
	case Closed:
		if retryAt.IsZero() {
			return hi, 0
		}
		return max(retryAt.Sub(now), lo), 0
	}
	return 0, 0
}
