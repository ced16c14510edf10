package clients

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// MetricsClientManager decorates a ClientManager with Prometheus metrics
// of its calls, labelled by method and config:
//
//	machineflow_clientmanager_calls_total{method,config}
//	machineflow_clientmanager_errors_total{method,config,reason}
//	machineflow_clientmanager_call_duration_seconds{method,config}
//
// config is empty for methods that concern no single config
// (ListKubevirtConfigs, HealthCheck, InvalidateAll); for
// GetOrCreateClientFromMachine it is the chosen config, empty when none
// was chosen. HealthCheck counts one error per failing config, labelled
// with that config. reason is a fixed word per sentinel (unreachable,
// circuit_open, config_not_found, ...), so cardinality stays at methods ×
// configs × reasons.
//
// Each call's counter and histogram are looked up once per method and
// config and then kept, because the vectors' label lookups (hashing and a
// locked map per vector) were more than half of the decorator's cost on
// the cached-client path. The handles are dropped with InvalidateClient
// and InvalidateAll, so they are bounded by the configs in use; the
// series themselves stay, as counters must.
type MetricsClientManager struct {
	next     ClientManager
	calls    *prometheus.CounterVec
	errs     *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.RWMutex
	series map[seriesKey]series
}

type seriesKey struct{ method, config string }

// series are the handles of one method and config.
type series struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

var _ ClientManager = (*MetricsClientManager)(nil)

// NewMetricsClientManager decorates next and registers the metrics on reg.
// Decorating several managers on one registry shares the metrics.
func NewMetricsClientManager(next ClientManager, reg prometheus.Registerer) (*MetricsClientManager, error) {
	m := &MetricsClientManager{
		next:   next,
		series: map[seriesKey]series{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "machineflow", Subsystem: "clientmanager", Name: "calls_total",
			Help: "ClientManager calls by method and KubevirtConfig.",
		}, []string{"method", "config"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "machineflow", Subsystem: "clientmanager", Name: "errors_total",
			Help: "ClientManager errors by method, KubevirtConfig and reason.",
		}, []string{"method", "config", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "machineflow", Subsystem: "clientmanager", Name: "call_duration_seconds",
			Help: "ClientManager call latency by method and KubevirtConfig.",
			// From a cached lookup (µs) to a call retried after request
			// timeouts (10 s each).
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"method", "config"}),
	}
	var err error
	if m.calls, err = register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.errs, err = register(reg, m.errs); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("registering ClientManager metrics: %w", err)
}

func (m *MetricsClientManager) observe(method, config string, start time.Time, err error) {
	s := m.seriesOf(method, config)
	s.calls.Inc()
	s.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		m.errs.WithLabelValues(method, config, ErrorReason(err)).Inc()
	}
}

func (m *MetricsClientManager) seriesOf(method, config string) series {
	k := seriesKey{method, config}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	s = series{calls: m.calls.WithLabelValues(method, config), duration: m.duration.WithLabelValues(method, config)}
	m.mu.Lock()
	m.series[k] = s
	m.mu.Unlock()
	return s
}

// forget drops the handles of config, or of every config when all.
func (m *MetricsClientManager) forget(config string, all bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if all || k.config == config {
			delete(m.series, k)
		}
	}
}

// errorReasons are checked in order: ErrCircuitOpen before
// ErrClusterUnreachable, which its errors also match.
var errorReasons = []struct {
	sentinel error
	reason   string
}{
	{ErrCircuitOpen, "circuit_open"},
	{ErrConfigNotFound, "config_not_found"},
	{ErrInvalidKubeconfig, "invalid_kubeconfig"},
	{ErrUnauthorized, "unauthorized"},
	{ErrClusterUnreachable, "unreachable"},
	{ErrKubeVirtAPIMissing, "kubevirt_api_missing"},
	{ErrAmbiguousPlacement, "ambiguous_placement"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
}

// ErrorReason is the metric label of err: a fixed word per sentinel of
// this package, "other" for anything else.
func ErrorReason(err error) string {
	for _, r := range errorReasons {
		if errors.Is(err, r.sentinel) {
			return r.reason
		}
	}
	return "other"
}

// GetClientForConfig is counted with the config.
func (m *MetricsClientManager) GetClientForConfig(ctx context.Context, name string) (client.Client, error) {
	start := time.Now()
	c, err := m.next.GetClientForConfig(ctx, name)
	m.observe("GetClientForConfig", name, start, err)
	return c, err
}

// GetOrCreateClientFromMachine is counted with the chosen config.
func (m *MetricsClientManager) GetOrCreateClientFromMachine(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error) {
	start := time.Now()
	c, name, err := m.next.GetOrCreateClientFromMachine(ctx, machine)
	m.observe("GetOrCreateClientFromMachine", name, start, err)
	return c, name, err
}

// ListKubevirtConfigs is counted without a config.
func (m *MetricsClientManager) ListKubevirtConfigs(ctx context.Context) ([]v1alpha1.KubevirtConfig, error) {
	start := time.Now()
	configs, err := m.next.ListKubevirtConfigs(ctx)
	m.observe("ListKubevirtConfigs", "", start, err)
	return configs, err
}

// GetConfigNamespace is a getter and not counted.
func (m *MetricsClientManager) GetConfigNamespace() string { return m.next.GetConfigNamespace() }

// InvalidateClient is counted with the config.
func (m *MetricsClientManager) InvalidateClient(name string) {
	start := time.Now()
	m.next.InvalidateClient(name)
	m.observe("InvalidateClient", name, start, nil)
	m.forget(name, false)
}

// InvalidateAll is counted without a config.
func (m *MetricsClientManager) InvalidateAll() {
	start := time.Now()
	m.next.InvalidateAll()
	m.observe("InvalidateAll", "", start, nil)
	m.forget("", true)
}

// ValidateConnection is counted with the config.
func (m *MetricsClientManager) ValidateConnection(ctx context.Context, name string) error {
	start := time.Now()
	err := m.next.ValidateConnection(ctx, name)
	m.observe("ValidateConnection", name, start, err)
	return err
}

// HealthCheck is counted once without a config, and each failure with its
// config.
func (m *MetricsClientManager) HealthCheck(ctx context.Context) map[string]error {
	start := time.Now()
	failures := m.next.HealthCheck(ctx)
	m.observe("HealthCheck", "", start, nil)
	for name, err := range failures {
		m.errs.WithLabelValues("HealthCheck", name, ErrorReason(err)).Inc()
	}
	return failures
}

// GetRESTConfigForConfig is counted with the config.
func (m *MetricsClientManager) GetRESTConfigForConfig(ctx context.Context, name string) (*rest.Config, error) {
	start := time.Now()
	cfg, err := m.next.GetRESTConfigForConfig(ctx, name)
	m.observe("GetRESTConfigForConfig", name, start, err)
	return cfg, err
}
