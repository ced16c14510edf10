package clients

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestMetricsCountCallsErrorsAndLatency(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	mock.AddMockedConfig(v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	m, err := NewMetricsClientManager(mock, reg)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = m.GetClientForConfig(ctx, "a")
	require.NoError(t, err)
	_, err = m.GetClientForConfig(ctx, "a")
	require.NoError(t, err)
	_, err = m.GetClientForConfig(ctx, "missing")
	require.ErrorIs(t, err, ErrConfigNotFound)
	_, name, err := m.GetOrCreateClientFromMachine(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m"}})
	require.NoError(t, err)
	require.Equal(t, "a", name)
	_, err = m.ListKubevirtConfigs(ctx)
	require.NoError(t, err)
	m.InvalidateClient("a")
	mock.ValidateConnectionError = &CircuitOpenError{Config: "a", Failures: 5}
	require.Error(t, m.ValidateConnection(ctx, "a"))
	mock.ValidateConnectionError = nil
	mock.HealthCheckFunc = func(context.Context) map[string]error {
		return map[string]error{"a": unreachable("a"), "b": &Error{Kind: ErrUnauthorized, Config: "b"}}
	}
	assert.Len(t, m.HealthCheck(ctx), 2)

	assert.Equal(t, 2.0, testutil.ToFloat64(m.calls.WithLabelValues("GetClientForConfig", "a")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("GetClientForConfig", "missing")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errs.WithLabelValues("GetClientForConfig", "missing", "config_not_found")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("GetOrCreateClientFromMachine", "a")), "labelled with the chosen config")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("ListKubevirtConfigs", "")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("InvalidateClient", "a")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errs.WithLabelValues("ValidateConnection", "a", "circuit_open")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.calls.WithLabelValues("HealthCheck", "")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errs.WithLabelValues("HealthCheck", "a", "unreachable")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.errs.WithLabelValues("HealthCheck", "b", "unauthorized")))

	// One latency series per method and config that was called.
	assert.Equal(t, 7, testutil.CollectAndCount(m.duration))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP machineflow_clientmanager_errors_total ClientManager errors by method, KubevirtConfig and reason.
# TYPE machineflow_clientmanager_errors_total counter
machineflow_clientmanager_errors_total{config="a",method="HealthCheck",reason="unreachable"} 1
machineflow_clientmanager_errors_total{config="a",method="ValidateConnection",reason="circuit_open"} 1
machineflow_clientmanager_errors_total{config="b",method="HealthCheck",reason="unauthorized"} 1
machineflow_clientmanager_errors_total{config="missing",method="GetClientForConfig",reason="config_not_found"} 1
`), "machineflow_clientmanager_errors_total"))
	count, err := testutil.GatherAndCount(reg, "machineflow_clientmanager_call_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 7, count)
}

// The per-config handles go with the config's client; its series stay and
// keep counting.
func TestMetricsHandlesAreDroppedWithTheClient(t *testing.T) {
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	mock.AddMockedClient("b", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	reg := prometheus.NewRegistry()
	m, err := NewMetricsClientManager(mock, reg)
	require.NoError(t, err)
	ctx := context.Background()
	handlesOf := func(config string) int {
		m.mu.RLock()
		defer m.mu.RUnlock()
		n := 0
		for k := range m.series {
			if k.config == config {
				n++
			}
		}
		return n
	}

	for _, name := range []string{"a", "b"} {
		_, err = m.GetClientForConfig(ctx, name)
		require.NoError(t, err)
		require.NoError(t, m.ValidateConnection(ctx, name))
	}
	require.Equal(t, 2, handlesOf("a"))
	m.InvalidateClient("a")
	assert.Zero(t, handlesOf("a"))
	assert.Equal(t, 2, handlesOf("b"), "other configs keep theirs")

	_, err = m.GetClientForConfig(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, 2.0, testutil.ToFloat64(m.calls.WithLabelValues("GetClientForConfig", "a")), "the series counts on")
	assert.Equal(t, uint64(2), latencyCount(t, reg, "GetClientForConfig", "a"))

	m.InvalidateAll()
	m.mu.RLock()
	assert.Empty(t, m.series)
	m.mu.RUnlock()
}

// latencyCount is the number of observations of one method and config.
func latencyCount(t *testing.T, g prometheus.Gatherer, method, config string) uint64 {
	t.Helper()
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "machineflow_clientmanager_call_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["config"] == config {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestMetricsDecoratorsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetricsClientManager(NewMockClientManager(), reg)
	require.NoError(t, err)
	b, err := NewMetricsClientManager(NewMockClientManager(), reg)
	require.NoError(t, err)
	a.InvalidateAll()
	b.InvalidateAll()
	assert.Equal(t, 2.0, testutil.ToFloat64(a.calls.WithLabelValues("InvalidateAll", "")))
}

func TestMetricsRegistrationConflictIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "machineflow_clientmanager_calls_total", Help: "clash"}))
	_, err := NewMetricsClientManager(NewMockClientManager(), reg)
	require.ErrorContains(t, err, "registering ClientManager metrics")
}

func TestErrorReason(t *testing.T) {
	for err, want := range map[error]string{
		&CircuitOpenError{Config: "a"}:      "circuit_open",
		unreachable("a"):                    "unreachable",
		&Error{Kind: ErrConfigNotFound}:     "config_not_found",
		&Error{Kind: ErrInvalidKubeconfig}:  "invalid_kubeconfig",
		&Error{Kind: ErrUnauthorized}:       "unauthorized",
		&Error{Kind: ErrKubeVirtAPIMissing}: "kubevirt_api_missing",
		&Error{Kind: ErrAmbiguousPlacement}: "ambiguous_placement",
		context.DeadlineExceeded:            "deadline_exceeded",
		errors.New("boom"):                  "other",
	} {
		assert.Equal(t, want, ErrorReason(err), err.Error())
	}
}

// BenchmarkDecoratedGetClientForConfig is the worker's hot path: the
// metrics and resilient decorators over a manager that answers from
// memory, so the figure is the decorators' own cost per call.
func BenchmarkDecoratedGetClientForConfig(b *testing.B) {
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(b)).Build())
	for name, cm := range map[string]ClientManager{
		"mock":              mock,
		"resilient":         NewResilientClientManager(mock, ResilienceOptions{}),
		"metrics+resilient": mustMetrics(b, NewResilientClientManager(mock, ResilienceOptions{})),
	} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cm.GetClientForConfig(ctx, "a"); err != nil {
					b.Fatal(err)
				}
				mock.ResetCallTracking() // keep the mock's call records from growing
			}
		})
	}
}

// BenchmarkGuardedClientGet is one request through a handed-out client,
// with and without the breaker around it.
func BenchmarkGuardedClientGet(b *testing.B) {
	cluster := fake.NewClientBuilder().WithScheme(testScheme(b)).
		WithObjects(&corev1.ConfigMap{}).Build()
	mock := NewMockClientManager()
	mock.AddMockedClient("a", cluster)
	guarded, err := NewResilientClientManager(mock, ResilienceOptions{}).GetClientForConfig(context.Background(), "a")
	if err != nil {
		b.Fatal(err)
	}
	for name, c := range map[string]client.Client{"plain": cluster, "guarded": guarded} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var cm corev1.ConfigMap
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Get(ctx, client.ObjectKey{}, &cm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustMetrics(b *testing.B, next ClientManager) ClientManager {
	m, err := NewMetricsClientManager(next, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return m
}
