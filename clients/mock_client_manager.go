package clients

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// MockClientManager is a ClientManager for unit tests: clients and configs
// are registered by hand, errors are injected through the *Error fields,
// behaviour is replaced through the *Func hooks, and every call is
// recorded.
//
// Methods are safe for concurrent use. Set the exported fields before the
// code under test runs and read the call records after it has finished
// (or through Snapshot while it runs): the fields themselves are not
// guarded against concurrent access from the test.
//
// Precedence in every method: the hook, then the injected error, then the
// registered clients and configs. Unknown names give ErrConfigNotFound,
// as the real manager does.
type MockClientManager struct {
	mu      sync.Mutex
	clients map[string]client.Client
	configs map[string]v1alpha1.KubevirtConfig

	// ConfigNamespace is returned by GetConfigNamespace.
	ConfigNamespace string
	// DefaultConfig plays DEFAULT_KUBEVIRT_CONFIG in GetOrCreateClientFromMachine.
	DefaultConfig string

	// Injected errors.
	GetClientError              error
	GetOrCreateFromMachineError error
	ListConfigsError            error
	ValidateConnectionError     error
	GetRESTConfigError          error

	// Hooks; a non-nil hook replaces the method's behaviour.
	GetClientForConfigFunc           func(ctx context.Context, name string) (client.Client, error)
	GetOrCreateClientFromMachineFunc func(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error)
	ListKubevirtConfigsFunc          func(ctx context.Context) ([]v1alpha1.KubevirtConfig, error)
	ValidateConnectionFunc           func(ctx context.Context, name string) error
	HealthCheckFunc                  func(ctx context.Context) map[string]error
	GetRESTConfigForConfigFunc       func(ctx context.Context, name string) (*rest.Config, error)

	// Call records: config names, Machines as "<namespace>/<name>", or
	// counts for methods without arguments.
	GetClientCalls              []string
	GetOrCreateFromMachineCalls []string
	ListConfigsCalls            int
	InvalidateClientCalls       []string
	InvalidateAllCalls          int
	ValidateConnectionCalls     []string
	HealthCheckCalls            int
	GetRESTConfigCalls          []string
}

var _ ClientManager = (*MockClientManager)(nil)

// NewMockClientManager returns a mock without clients or configs whose
// config namespace is "default".
func NewMockClientManager() *MockClientManager {
	return &MockClientManager{
		clients:         map[string]client.Client{},
		configs:         map[string]v1alpha1.KubevirtConfig{},
		ConfigNamespace: "default",
	}
}

// AddMockedClient registers the client of config name.
func (m *MockClientManager) AddMockedClient(name string, c client.Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clients[name] = c
}

// AddMockedConfig registers a KubevirtConfig for ListKubevirtConfigs and
// placement.
func (m *MockClientManager) AddMockedConfig(config v1alpha1.KubevirtConfig) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.configs[config.Name] = *config.DeepCopy()
}

// ResetCallTracking clears every call record.
func (m *MockClientManager) ResetCallTracking() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.GetClientCalls = nil
	m.GetOrCreateFromMachineCalls = nil
	m.ListConfigsCalls = 0
	m.InvalidateClientCalls = nil
	m.InvalidateAllCalls = 0
	m.ValidateConnectionCalls = nil
	m.HealthCheckCalls = 0
	m.GetRESTConfigCalls = nil
}

// MockCalls is a copy of a MockClientManager's call records.
type MockCalls struct {
	GetClient              []string
	GetOrCreateFromMachine []string
	ListConfigs            int
	InvalidateClient       []string
	InvalidateAll          int
	ValidateConnection     []string
	HealthCheck            int
	GetRESTConfig          []string
}

// Snapshot copies the call records under the lock, for tests that look
// while calls are still being made.
func (m *MockClientManager) Snapshot() MockCalls {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MockCalls{
		GetClient:              slices.Clone(m.GetClientCalls),
		GetOrCreateFromMachine: slices.Clone(m.GetOrCreateFromMachineCalls),
		ListConfigs:            m.ListConfigsCalls,
		InvalidateClient:       slices.Clone(m.InvalidateClientCalls),
		InvalidateAll:          m.InvalidateAllCalls,
		ValidateConnection:     slices.Clone(m.ValidateConnectionCalls),
		HealthCheck:            m.HealthCheckCalls,
		GetRESTConfig:          slices.Clone(m.GetRESTConfigCalls),
	}
}

// GetConfigNamespace returns ConfigNamespace.
func (m *MockClientManager) GetConfigNamespace() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ConfigNamespace
}

// GetClientForConfig returns the client registered for name.
func (m *MockClientManager) GetClientForConfig(ctx context.Context, name string) (client.Client, error) {
	return mockLookup(ctx, m, name, &m.GetClientCalls, &m.GetClientForConfigFunc, &m.GetClientError,
		func(c client.Client) client.Client { return c })
}

// mockLookup is the body of the methods that act on a registered client:
// record the call, then hook, injected error or the client's result.
// Hooks run without the lock so that they may call back into the mock.
func mockLookup[T any](ctx context.Context, m *MockClientManager, name string, calls *[]string,
	hook *func(context.Context, string) (T, error), injected *error, result func(client.Client) T) (T, error) {
	m.mu.Lock()
	*calls = append(*calls, name)
	h, err := *hook, *injected
	c, ok := m.clients[name]
	m.mu.Unlock()
	var zero T
	switch {
	case h != nil:
		return h(ctx, name)
	case err != nil:
		return zero, err
	case !ok:
		return zero, mockConfigNotFound(name)
	}
	return result(c), nil
}

// GetOrCreateClientFromMachine applies the real manager's rules as far as
// a mock can: the placement annotation, DefaultConfig, then the only
// registered config or, without configs, the only registered client. It
// does not search for VMs; several candidates give ErrAmbiguousPlacement.
// As in the real manager, the chosen config's client comes from
// GetClientForConfig, so that call is recorded and its hook and injected
// error apply.
func (m *MockClientManager) GetOrCreateClientFromMachine(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error) {
	ref := ""
	if machine != nil {
		ref = machine.Namespace + "/" + machine.Name
	}
	m.mu.Lock()
	m.GetOrCreateFromMachineCalls = append(m.GetOrCreateFromMachineCalls, ref)
	hook, injected := m.GetOrCreateClientFromMachineFunc, m.GetOrCreateFromMachineError
	name, selectErr := m.selectLocked(machine, ref)
	m.mu.Unlock()
	switch {
	case hook != nil:
		return hook(ctx, machine)
	case injected != nil:
		return nil, "", injected
	case selectErr != nil:
		return nil, "", selectErr
	}
	c, err := m.GetClientForConfig(ctx, name)
	if err != nil {
		return nil, "", err
	}
	return c, name, nil
}

// selectLocked picks the config name for machine.
func (m *MockClientManager) selectLocked(machine *v1alpha1.Machine, ref string) (string, error) {
	if machine == nil {
		return "", errors.New("choosing a KubevirtConfig: Machine is nil")
	}
	if name := machine.Annotations[names.PlacementAnnotation]; name != "" {
		return name, nil
	}
	if m.DefaultConfig != "" {
		return m.DefaultConfig, nil
	}
	var candidates []string
	for name := range m.configs {
		candidates = append(candidates, name)
	}
	if len(candidates) == 0 {
		for name := range m.clients {
			candidates = append(candidates, name)
		}
	}
	slices.Sort(candidates)
	switch len(candidates) {
	case 0:
		return "", &Error{Kind: ErrConfigNotFound, Machine: ref, Reason: "no KubevirtConfig registered with the mock"}
	case 1:
		return candidates[0], nil
	}
	return "", &Error{Kind: ErrAmbiguousPlacement, Machine: ref,
		Reason: "the mock has several configs (" + strings.Join(candidates, ", ") + ") and no annotation or DefaultConfig selects one"}
}

// ListKubevirtConfigs returns the registered configs sorted by name.
func (m *MockClientManager) ListKubevirtConfigs(ctx context.Context) ([]v1alpha1.KubevirtConfig, error) {
	m.mu.Lock()
	m.ListConfigsCalls++
	hook, injected := m.ListKubevirtConfigsFunc, m.ListConfigsError
	configs := make([]v1alpha1.KubevirtConfig, 0, len(m.configs))
	for _, c := range m.configs {
		configs = append(configs, *c.DeepCopy())
	}
	m.mu.Unlock()
	switch {
	case hook != nil:
		return hook(ctx)
	case injected != nil:
		return nil, injected
	}
	slices.SortFunc(configs, func(a, b v1alpha1.KubevirtConfig) int { return strings.Compare(a.Name, b.Name) })
	return configs, nil
}

// InvalidateClient records the call. Registered clients stay: the real
// manager would rebuild the same client on the next call.
func (m *MockClientManager) InvalidateClient(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.InvalidateClientCalls = append(m.InvalidateClientCalls, name)
}

// InvalidateAll records the call.
func (m *MockClientManager) InvalidateAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.InvalidateAllCalls++
}

// ValidateConnection succeeds for names with a registered client.
func (m *MockClientManager) ValidateConnection(ctx context.Context, name string) error {
	m.mu.Lock()
	m.ValidateConnectionCalls = append(m.ValidateConnectionCalls, name)
	hook, injected := m.ValidateConnectionFunc, m.ValidateConnectionError
	state := m.connectionLocked(name)
	m.mu.Unlock()
	return validateMocked(ctx, name, hook, injected, state)
}

// HealthCheck validates every registered config and client as
// ValidateConnection does, without recording ValidateConnection calls, and
// returns the failures by name.
func (m *MockClientManager) HealthCheck(ctx context.Context) map[string]error {
	m.mu.Lock()
	m.HealthCheckCalls++
	hook, validateHook, injected := m.HealthCheckFunc, m.ValidateConnectionFunc, m.ValidateConnectionError
	states := map[string]error{}
	for name := range m.configs {
		states[name] = m.connectionLocked(name)
	}
	for name := range m.clients {
		states[name] = nil
	}
	m.mu.Unlock()
	if hook != nil {
		return hook(ctx)
	}
	failures := map[string]error{}
	for name, state := range states {
		if err := validateMocked(ctx, name, validateHook, injected, state); err != nil {
			failures[name] = err
		}
	}
	return failures
}

// connectionLocked is what validating name gives without hooks or
// injected errors.
func (m *MockClientManager) connectionLocked(name string) error {
	if _, ok := m.clients[name]; ok {
		return nil
	}
	if _, ok := m.configs[name]; ok {
		return &Error{Kind: ErrClusterUnreachable, Config: name, Reason: "the mock has the config but no client for it"}
	}
	return mockConfigNotFound(name)
}

func validateMocked(ctx context.Context, name string, hook func(context.Context, string) error, injected, state error) error {
	switch {
	case hook != nil:
		return hook(ctx, name)
	case injected != nil:
		return injected
	}
	return state
}

// GetRESTConfigForConfig returns a new REST config with the host
// https://mock-<name>.example.com:6443 for names with a registered client.
func (m *MockClientManager) GetRESTConfigForConfig(ctx context.Context, name string) (*rest.Config, error) {
	return mockLookup(ctx, m, name, &m.GetRESTConfigCalls, &m.GetRESTConfigForConfigFunc, &m.GetRESTConfigError,
		func(client.Client) *rest.Config {
			return &rest.Config{Host: "https://mock-" + name + ".example.com:6443"}
		})
}

func mockConfigNotFound(name string) *Error {
	return &Error{Kind: ErrConfigNotFound, Config: name, Reason: "no client registered with the mock"}
}
