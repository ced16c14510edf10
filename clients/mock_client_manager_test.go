package clients_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrl "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/names"
	mfscheme "github.com/machineflow/machineflow/internal/scheme"
)

// machineReconciler stands in for the design doc's MachineReconciler: it
// depends on the ClientManager interface only, chooses the Machine's
// cluster and looks up its VM there.
type machineReconciler struct {
	client    client.Client
	scheme    *runtime.Scheme
	clientMgr clients.ClientManager
}

func newMachineReconciler(c client.Client, scheme *runtime.Scheme, clientMgr clients.ClientManager) *machineReconciler {
	return &machineReconciler{client: c, scheme: scheme, clientMgr: clientMgr}
}

func (r *machineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var machine v1alpha1.Machine
	if err := r.client.Get(ctx, req.NamespacedName, &machine); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	remote, config, err := r.clientMgr.GetOrCreateClientFromMachine(ctx, &machine)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("choosing the cluster of Machine %s: %w", req.NamespacedName, err)
	}
	var vm kubevirtv1.VirtualMachine
	if err := remote.Get(ctx, req.NamespacedName, &vm); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("reading VM %s on %s: %w", req.NamespacedName, config, err)
	}
	return ctrl.Result{}, nil
}

var (
	ctx = context.Background()
	req = ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: "vm1"}}
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := mfscheme.New()
	require.NoError(t, err)
	return s
}

func testMachine(annotation string) *v1alpha1.Machine {
	m := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
	if annotation != "" {
		m.Annotations = map[string]string{names.PlacementAnnotation: annotation}
	}
	return m
}

// The tests named like the design doc's examples run them as written,
// except that the reconciler is the one above and result.Requeue, which
// controller-runtime deprecates, is checked through result.IsZero.

func TestDesignDocUsage(t *testing.T) {
	scheme := testScheme(t)
	testConfig := v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "test-cluster"}}
	supervisor := fake.NewClientBuilder().WithScheme(scheme).WithObjects(testMachine("")).Build()

	// Create mock
	mockMgr := clients.NewMockClientManager()

	// Add a mocked client
	fakeClient := fake.NewClientBuilder().WithScheme(scheme).Build()
	mockMgr.AddMockedClient("test-cluster", fakeClient)

	// Add a mocked config
	mockMgr.AddMockedConfig(testConfig)

	// Use in reconciler
	reconciler := newMachineReconciler(supervisor, scheme, mockMgr)
	_, err := reconciler.Reconcile(ctx, req)
	require.NoError(t, err)

	// Verify calls
	assert.Equal(t, 1, len(mockMgr.GetClientCalls))
	assert.Equal(t, []string{"test-cluster"}, mockMgr.GetClientCalls)
	assert.Equal(t, []string{"default/vm1"}, mockMgr.GetOrCreateFromMachineCalls)
}

func TestMachineReconcile_Success(t *testing.T) {
	scheme := testScheme(t)
	// Setup
	mockMgr := clients.NewMockClientManager()
	fakeRemoteClient := fake.NewClientBuilder().WithScheme(scheme).Build()
	mockMgr.AddMockedClient("cluster-east", fakeRemoteClient)

	reconciler := newMachineReconciler(
		fake.NewClientBuilder().WithScheme(scheme).WithObjects(testMachine("")).Build(),
		scheme,
		mockMgr,
	)

	// Test
	result, err := reconciler.Reconcile(ctx, req)

	// Verify
	assert.NoError(t, err)
	assert.True(t, result.IsZero())
	assert.Equal(t, []string{"cluster-east"}, mockMgr.GetClientCalls, "the only client is chosen")
}

func TestMachineReconcile_ClientError(t *testing.T) {
	scheme := testScheme(t)
	mockMgr := clients.NewMockClientManager()
	mockMgr.GetClientError = fmt.Errorf("connection refused")

	reconciler := newMachineReconciler(
		fake.NewClientBuilder().WithScheme(scheme).WithObjects(testMachine("cluster-east")).Build(),
		scheme,
		mockMgr,
	)

	result, err := reconciler.Reconcile(ctx, req)

	// Verify error handling
	assert.Error(t, err)
	assert.Contains(t, err.Error(), "connection refused")
	assert.True(t, result.IsZero())
}

func TestMachineReconcile_DynamicClient(t *testing.T) {
	scheme := testScheme(t)
	prodClient := fake.NewClientBuilder().WithScheme(scheme).Build()
	stagingClient := fake.NewClientBuilder().WithScheme(scheme).Build()
	mockMgr := clients.NewMockClientManager()

	// Different client for each config
	mockMgr.GetClientForConfigFunc = func(ctx context.Context, name string) (client.Client, error) {
		switch name {
		case "prod":
			return prodClient, nil
		case "staging":
			return stagingClient, nil
		default:
			return nil, fmt.Errorf("unknown cluster: %s", name)
		}
	}

	// Test with different clusters
	for name, want := range map[string]client.Client{"prod": prodClient, "staging": stagingClient} {
		c, config, err := mockMgr.GetOrCreateClientFromMachine(ctx, testMachine(name))
		require.NoError(t, err)
		assert.Equal(t, name, config)
		assert.Same(t, want, c)
	}
	_, _, err := mockMgr.GetOrCreateClientFromMachine(ctx, testMachine("qa"))
	assert.EqualError(t, err, "unknown cluster: qa")

	reconciler := newMachineReconciler(
		fake.NewClientBuilder().WithScheme(scheme).WithObjects(testMachine("qa")).Build(), scheme, mockMgr)
	_, err = reconciler.Reconcile(ctx, req)
	assert.ErrorContains(t, err, "unknown cluster: qa")
}

func TestClientManager_CallTracking(t *testing.T) {
	fakeClient := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	mockMgr := clients.NewMockClientManager()
	mockMgr.AddMockedClient("test", fakeClient)

	// Make some calls
	_, _ = mockMgr.GetClientForConfig(ctx, "test")
	_, _ = mockMgr.GetClientForConfig(ctx, "test")
	mockMgr.InvalidateClient("test")

	// Verify
	assert.Equal(t, 2, len(mockMgr.GetClientCalls))
	assert.Equal(t, "test", mockMgr.GetClientCalls[0])
	assert.Equal(t, 1, len(mockMgr.InvalidateClientCalls))

	// The client stays registered after invalidation, as a real manager
	// would rebuild it.
	c, err := mockMgr.GetClientForConfig(ctx, "test")
	require.NoError(t, err)
	assert.Same(t, fakeClient, c)

	mockMgr.ResetCallTracking()
	assert.Empty(t, mockMgr.GetClientCalls)
	assert.Empty(t, mockMgr.InvalidateClientCalls)
	assert.Equal(t, clients.MockCalls{}, mockMgr.Snapshot())
}

func TestMockSelectionRules(t *testing.T) {
	scheme := testScheme(t)
	a := fake.NewClientBuilder().WithScheme(scheme).Build()
	b := fake.NewClientBuilder().WithScheme(scheme).Build()
	config := func(name string) v1alpha1.KubevirtConfig {
		return v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	for _, tc := range []struct {
		name    string
		setup   func(m *clients.MockClientManager)
		machine *v1alpha1.Machine
		want    string
		wantErr error
	}{
		{"annotation", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedClient("b", b)
		}, testMachine("b"), "b", nil},
		{"annotation beats default", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedClient("b", b)
			m.DefaultConfig = "a"
		}, testMachine("b"), "b", nil},
		{"default config", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedClient("b", b)
			m.DefaultConfig = "a"
		}, testMachine(""), "a", nil},
		{"only config", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedClient("b", b)
			m.AddMockedConfig(config("b"))
		}, testMachine(""), "b", nil},
		{"only client", func(m *clients.MockClientManager) { m.AddMockedClient("a", a) }, testMachine(""), "a", nil},
		{"several configs", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedConfig(config("a"))
			m.AddMockedConfig(config("b"))
		}, testMachine(""), "", clients.ErrAmbiguousPlacement},
		{"several clients", func(m *clients.MockClientManager) {
			m.AddMockedClient("a", a)
			m.AddMockedClient("b", b)
		}, testMachine(""), "", clients.ErrAmbiguousPlacement},
		{"nothing registered", func(*clients.MockClientManager) {}, testMachine(""), "", clients.ErrConfigNotFound},
		{"annotation without client", func(m *clients.MockClientManager) { m.AddMockedClient("a", a) },
			testMachine("gone"), "", clients.ErrConfigNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := clients.NewMockClientManager()
			tc.setup(m)
			c, name, err := m.GetOrCreateClientFromMachine(ctx, tc.machine)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, c)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, name)
			direct, err := m.GetClientForConfig(ctx, name)
			require.NoError(t, err)
			assert.Same(t, direct, c)
		})
	}
}

func TestMockErrorInjectionAndHooks(t *testing.T) {
	scheme := testScheme(t)
	a := fake.NewClientBuilder().WithScheme(scheme).Build()
	boom := errors.New("boom")
	m := clients.NewMockClientManager()
	m.AddMockedClient("a", a)
	m.AddMockedConfig(v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "b"}})
	m.AddMockedConfig(v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "a"}})

	// Defaults.
	assert.Equal(t, "default", m.GetConfigNamespace())
	m.ConfigNamespace = "configs"
	assert.Equal(t, "configs", m.GetConfigNamespace())
	configs, err := m.ListKubevirtConfigs(ctx)
	require.NoError(t, err)
	require.Len(t, configs, 2)
	assert.Equal(t, "a", configs[0].Name, "configs are sorted by name")
	configs[0].Name = "mutated"
	again, err := m.ListKubevirtConfigs(ctx)
	require.NoError(t, err)
	assert.Equal(t, "a", again[0].Name, "callers get copies")
	require.NoError(t, m.ValidateConnection(ctx, "a"))
	assert.ErrorIs(t, m.ValidateConnection(ctx, "b"), clients.ErrClusterUnreachable, "a config without client")
	assert.ErrorIs(t, m.ValidateConnection(ctx, "c"), clients.ErrConfigNotFound)
	failures := m.HealthCheck(ctx)
	require.Len(t, failures, 1)
	assert.ErrorIs(t, failures["b"], clients.ErrClusterUnreachable)
	cfg, err := m.GetRESTConfigForConfig(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "https://mock-a.example.com:6443", cfg.Host)
	_, err = m.GetRESTConfigForConfig(ctx, "c")
	assert.ErrorIs(t, err, clients.ErrConfigNotFound)
	_, err = m.GetClientForConfig(ctx, "c")
	assert.ErrorIs(t, err, clients.ErrConfigNotFound)

	// Injected errors.
	m.GetClientError = boom
	m.GetOrCreateFromMachineError = boom
	m.ListConfigsError = boom
	m.ValidateConnectionError = boom
	m.GetRESTConfigError = boom
	_, err = m.GetClientForConfig(ctx, "a")
	assert.Same(t, boom, err)
	_, _, err = m.GetOrCreateClientFromMachine(ctx, testMachine("a"))
	assert.Same(t, boom, err)
	_, err = m.ListKubevirtConfigs(ctx)
	assert.Same(t, boom, err)
	assert.Same(t, boom, m.ValidateConnection(ctx, "a"))
	_, err = m.GetRESTConfigForConfig(ctx, "a")
	assert.Same(t, boom, err)
	assert.Equal(t, map[string]error{"a": boom, "b": boom}, m.HealthCheck(ctx))

	// Hooks beat injected errors, and may call back into the mock.
	m.GetClientForConfigFunc = func(ctx context.Context, name string) (client.Client, error) { return a, nil }
	m.GetOrCreateClientFromMachineFunc = func(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error) {
		m.AddMockedClient(machine.Name, a)
		return a, machine.Name, nil
	}
	m.ListKubevirtConfigsFunc = func(context.Context) ([]v1alpha1.KubevirtConfig, error) { return nil, nil }
	m.ValidateConnectionFunc = func(_ context.Context, name string) error {
		if name == "b" {
			return boom
		}
		return nil
	}
	m.GetRESTConfigForConfigFunc = func(_ context.Context, name string) (*rest.Config, error) {
		return &rest.Config{Host: name}, nil
	}
	c, err := m.GetClientForConfig(ctx, "zzz")
	require.NoError(t, err)
	assert.Same(t, a, c)
	_, name, err := m.GetOrCreateClientFromMachine(ctx, testMachine(""))
	require.NoError(t, err)
	assert.Equal(t, "vm1", name)
	configs, err = m.ListKubevirtConfigs(ctx)
	require.NoError(t, err)
	assert.Empty(t, configs)
	assert.Equal(t, map[string]error{"b": boom}, m.HealthCheck(ctx), "HealthCheck uses the ValidateConnection hook")
	cfg, err = m.GetRESTConfigForConfig(ctx, "x")
	require.NoError(t, err)
	assert.Equal(t, "x", cfg.Host)
	m.HealthCheckFunc = func(context.Context) map[string]error { return map[string]error{"h": boom} }
	assert.Equal(t, map[string]error{"h": boom}, m.HealthCheck(ctx))

	assert.Equal(t, clients.MockCalls{
		GetClient:              []string{"c", "a", "zzz"},
		GetOrCreateFromMachine: []string{"default/vm1", "default/vm1"},
		ListConfigs:            4,
		ValidateConnection:     []string{"a", "b", "c", "a"},
		HealthCheck:            4,
		GetRESTConfig:          []string{"a", "c", "a", "x"},
	}, m.Snapshot())
}

func TestMockIsSafeForConcurrentUse(t *testing.T) {
	scheme := testScheme(t)
	m := clients.NewMockClientManager()
	shared := fake.NewClientBuilder().WithScheme(scheme).Build()
	m.AddMockedClient("shared", shared)

	const workers, rounds = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			own := fmt.Sprintf("own-%d", w)
			for i := range rounds {
				m.AddMockedClient(own, shared)
				m.AddMockedConfig(v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: own}})
				c, err := m.GetClientForConfig(ctx, "shared")
				assert.NoError(t, err)
				assert.Same(t, shared, c)
				_, name, err := m.GetOrCreateClientFromMachine(ctx, testMachine(own))
				assert.NoError(t, err)
				assert.Equal(t, own, name)
				_, err = m.ListKubevirtConfigs(ctx)
				assert.NoError(t, err)
				assert.NoError(t, m.ValidateConnection(ctx, own))
				_ = m.HealthCheck(ctx)
				_, err = m.GetRESTConfigForConfig(ctx, own)
				assert.NoError(t, err)
				m.InvalidateClient(own)
				if i%10 == 0 {
					m.InvalidateAll()
				}
				_ = m.Snapshot()
			}
		})
	}
	wg.Wait()

	// The records are read after every call has finished.
	const calls = workers * rounds
	assert.Len(t, m.GetClientCalls, 2*calls, "direct calls plus the placement lookups")
	assert.Len(t, m.GetOrCreateFromMachineCalls, calls)
	assert.Equal(t, calls, m.ListConfigsCalls)
	assert.Len(t, m.ValidateConnectionCalls, calls)
	assert.Equal(t, calls, m.HealthCheckCalls)
	assert.Len(t, m.GetRESTConfigCalls, calls)
	assert.Len(t, m.InvalidateClientCalls, calls)
	assert.Equal(t, workers*rounds/10, m.InvalidateAllCalls)
	assert.Empty(t, m.HealthCheck(ctx), "every registered config has a client")
}
