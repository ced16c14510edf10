package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"

	"github.com/machineflow/machineflow/workflows"
)

// MockTrigger is a Trigger for reconciler unit tests: results are set per
// Machine, errors are injected through the *Error fields, behaviour is
// replaced through the *Func hooks, and every call is recorded.
//
// Without a result set, a Machine behaves like a workflow that was started
// by the first Ensure call and is still running: the first call reports
// Started, later ones the same open run.
//
// Methods are safe for concurrent use. Set the exported fields before the
// code under test runs and read the call records after it has finished
// (or through Snapshot while it runs).
//
// Precedence in every method: the hook, then the injected error, then the
// result set for the Machine, then the default. AwaitClose has only a
// hook: by default a run closes when a Set method replaces it for its
// Machine by another run or a closed one.
type MockTrigger struct {
	mu          sync.Mutex
	provision   map[string]Run
	deprovision map[string]Run
	ejectISO    map[string]Run
	progress    map[string]Progress
	// changed is closed and replaced whenever a result is set, to wake
	// AwaitClose.
	changed chan struct{}

	// Injected errors.
	EnsureProvisionedError   error
	EnsureDeprovisionedError error
	EnsureISOEjectedError    error
	ProgressError            error

	// Hooks; a non-nil hook replaces the method's behaviour.
	EnsureProvisionedFunc   func(ctx context.Context, machine *v1alpha1.Machine) (Run, error)
	EnsureDeprovisionedFunc func(ctx context.Context, machine *v1alpha1.Machine, force bool) (Run, error)
	EnsureISOEjectedFunc    func(ctx context.Context, machine *v1alpha1.Machine) (Run, error)
	ProgressFunc            func(ctx context.Context, namespace, name string) (Progress, error)
	AwaitCloseFunc          func(ctx context.Context, run Run) error

	// Clock stamps the StartTime of default runs; nil means time.Now.
	Clock func() time.Time

	// Call records.
	EnsureProvisionedCalls   []MachineCall
	EnsureDeprovisionedCalls []MachineCall
	EnsureISOEjectedCalls    []MachineCall
	ProgressCalls            []string
	AwaitCloseCalls          []Run
}

// MachineCall records one Ensure call: the Machine as "<namespace>/<name>",
// its generation and the force flag.
type MachineCall struct {
	Machine    string
	Generation int64
	Force      bool
}

var _ Trigger = (*MockTrigger)(nil)

// NewMockTrigger returns a mock without results.
func NewMockTrigger() *MockTrigger {
	return &MockTrigger{provision: map[string]Run{}, deprovision: map[string]Run{}, ejectISO: map[string]Run{}, progress: map[string]Progress{},
		changed: make(chan struct{})}
}

// SetProvision sets what EnsureProvisioned reports for a Machine from now
// on; WorkflowID defaults to the Machine's provision ID.
func (m *MockTrigger) SetProvision(namespace, name string, run Run) {
	m.set(m.provision, workflows.ProvisionWorkflowID(namespace, name), namespace+"/"+name, run)
}

// SetDeprovision sets what EnsureDeprovisioned reports for a Machine from
// now on; WorkflowID defaults to the Machine's deprovision ID.
func (m *MockTrigger) SetDeprovision(namespace, name string, run Run) {
	m.set(m.deprovision, workflows.DeprovisionWorkflowID(namespace, name), namespace+"/"+name, run)
}

// SetEjectISO sets what EnsureISOEjected reports for a Machine from now
// on; WorkflowID defaults to the Machine's EjectISO ID.
func (m *MockTrigger) SetEjectISO(namespace, name string, run Run) {
	m.set(m.ejectISO, workflows.EjectISOWorkflowID(namespace, name), namespace+"/"+name, run)
}

func (m *MockTrigger) set(results map[string]Run, id, key string, run Run) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if run.WorkflowID == "" {
		run.WorkflowID = id
	}
	results[key] = run
	close(m.changed)
	m.changed = make(chan struct{})
}

// SetProgress sets what Progress reports for a Machine.
func (m *MockTrigger) SetProgress(namespace, name string, p Progress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.progress[namespace+"/"+name] = p
}

// EnsureProvisioned implements Trigger.
func (m *MockTrigger) EnsureProvisioned(ctx context.Context, machine *v1alpha1.Machine) (Run, error) {
	return m.answer(&m.EnsureProvisionedCalls, m.provision, workflows.ProvisionWorkflowID, machine, false, func() (hook, error) {
		f := m.EnsureProvisionedFunc
		return bound(f != nil, func() (Run, error) { return f(ctx, machine) }), m.EnsureProvisionedError
	})
}

// EnsureDeprovisioned implements Trigger.
func (m *MockTrigger) EnsureDeprovisioned(ctx context.Context, machine *v1alpha1.Machine, force bool) (Run, error) {
	return m.answer(&m.EnsureDeprovisionedCalls, m.deprovision, workflows.DeprovisionWorkflowID, machine, force, func() (hook, error) {
		f := m.EnsureDeprovisionedFunc
		return bound(f != nil, func() (Run, error) { return f(ctx, machine, force) }), m.EnsureDeprovisionedError
	})
}

// EnsureISOEjected implements Trigger.
func (m *MockTrigger) EnsureISOEjected(ctx context.Context, machine *v1alpha1.Machine) (Run, error) {
	return m.answer(&m.EnsureISOEjectedCalls, m.ejectISO, workflows.EjectISOWorkflowID, machine, false, func() (hook, error) {
		f := m.EnsureISOEjectedFunc
		return bound(f != nil, func() (Run, error) { return f(ctx, machine) }), m.EnsureISOEjectedError
	})
}

// hook is an Ensure method's hook bound to the call's arguments.
type hook func() (Run, error)

// bound is call when set is true, else nil.
func bound(set bool, call hook) hook {
	if !set {
		return nil
	}
	return call
}

// answer records an Ensure call in calls and answers it by the precedence
// of the type comment. read returns the method's hook and injected error;
// it runs under the lock, the hook does not, so that it may call the mock.
func (m *MockTrigger) answer(calls *[]MachineCall, results map[string]Run, id func(namespace, name string) string,
	machine *v1alpha1.Machine, force bool, read func() (hook, error)) (Run, error) {
	m.mu.Lock()
	*calls = append(*calls, callOf(machine, force))
	h, err := read()
	m.mu.Unlock()
	if h != nil {
		return h()
	}
	if err != nil {
		return Run{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ensure(results, id(machine.Namespace, machine.Name), machine, force), nil
}

// ensure returns the result set for the Machine, or starts the default
// open run on the first call.
func (m *MockTrigger) ensure(results map[string]Run, id string, machine *v1alpha1.Machine, force bool) Run {
	key := machine.Namespace + "/" + machine.Name
	if run, ok := results[key]; ok {
		started := run.Started
		// A started run is reported as started once, like the real one.
		run.Started = false
		results[key] = run
		run.Started = started
		return run
	}
	now := time.Now
	if m.Clock != nil {
		now = m.Clock
	}
	run := Run{WorkflowID: id, RunID: "mock-" + id, State: StateRunning, Generation: machine.Generation, Attempt: 1, Force: force, StartTime: now()}
	results[key] = run
	run.Started = true
	return run
}

// Progress implements Trigger.
func (m *MockTrigger) Progress(ctx context.Context, namespace, name string) (Progress, error) {
	key := namespace + "/" + name
	m.mu.Lock()
	m.ProgressCalls = append(m.ProgressCalls, key)
	hook, err := m.ProgressFunc, m.ProgressError
	p := m.progress[key]
	m.mu.Unlock()
	if hook != nil {
		return hook(ctx, namespace, name)
	}
	if err != nil {
		return Progress{}, err
	}
	return p, nil
}

// AwaitClose implements Trigger: it returns nil once the result of the
// run's Machine under its workflow ID is another run or not open (set
// through SetProvision, SetDeprovision or SetEjectISO), and ctx's error
// if ctx ends first. A default run never closes.
func (m *MockTrigger) AwaitClose(ctx context.Context, run Run) error {
	m.mu.Lock()
	m.AwaitCloseCalls = append(m.AwaitCloseCalls, run)
	hook := m.AwaitCloseFunc
	m.mu.Unlock()
	if hook != nil {
		return hook(ctx, run)
	}
	for {
		m.mu.Lock()
		closed, changed := m.closed(run), m.changed
		m.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// closed says whether the result under run's workflow ID is no longer
// run, open.
func (m *MockTrigger) closed(run Run) bool {
	for _, results := range []map[string]Run{m.provision, m.deprovision, m.ejectISO} {
		for _, r := range results {
			if r.WorkflowID == run.WorkflowID {
				return r.RunID != run.RunID || r.State != StateRunning
			}
		}
	}
	return false
}

// MockTriggerCalls is a copy of a MockTrigger's call records.
type MockTriggerCalls struct {
	EnsureProvisioned   []MachineCall
	EnsureDeprovisioned []MachineCall
	EnsureISOEjected    []MachineCall
	Progress            []string
	AwaitClose          []Run
}

// Snapshot copies the call records under the lock.
func (m *MockTrigger) Snapshot() MockTriggerCalls {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MockTriggerCalls{
		EnsureProvisioned:   slices.Clone(m.EnsureProvisionedCalls),
		EnsureDeprovisioned: slices.Clone(m.EnsureDeprovisionedCalls),
		EnsureISOEjected:    slices.Clone(m.EnsureISOEjectedCalls),
		Progress:            slices.Clone(m.ProgressCalls),
		AwaitClose:          slices.Clone(m.AwaitCloseCalls),
	}
}

// ResetCallTracking clears every call record.
func (m *MockTrigger) ResetCallTracking() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.EnsureProvisionedCalls = nil
	m.EnsureDeprovisionedCalls = nil
	m.EnsureISOEjectedCalls = nil
	m.ProgressCalls = nil
	m.AwaitCloseCalls = nil
}

func callOf(machine *v1alpha1.Machine, force bool) MachineCall {
	return MachineCall{Machine: machine.Namespace + "/" + machine.Name, Generation: machine.Generation, Force: force}
}
