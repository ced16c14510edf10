package clients

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/scheme"
)

// ModuleOptions configure the ClientManager that Module provides.
type ModuleOptions struct {
	// ConfigNamespace holds kubeconfig Secrets of KubevirtConfigs that name
	// no namespace (CONFIG_NAMESPACE).
	ConfigNamespace string
	// DefaultConfig places Machines without the placement annotation
	// (DEFAULT_KUBEVIRT_CONFIG).
	DefaultConfig string
	// Resilience tunes the retry and circuit-breaker decorator.
	Resilience ResilienceOptions
	// QPS and Burst are the client-side rate limit towards each KubeVirt
	// cluster (KUBEVIRT_QPS, KUBEVIRT_BURST); zero means DefaultQPS and
	// DefaultBurst.
	QPS   float32
	Burst int
}

type moduleParams struct {
	fx.In

	Options ModuleOptions
	// Supervisor is the client of the cluster holding the KubevirtConfigs.
	Supervisor client.Client
	// Mock, when the graph has one (mock mode), is used instead of a
	// KubevirtClientManager.
	Mock   *MockClientManager `optional:"true"`
	Logger logr.Logger        `optional:"true"`
}

// Module provides the worker's ClientManager: the graph's
// *MockClientManager in mock mode, else a KubevirtClientManager on the
// supervisor client. One fx.Decorate wraps it (fx decorates a type once
// per scope), outermost first: MetricsClientManager, so the metrics show
// what callers get, fail-fast answers of open breakers included, over
// ResilientClientManager. The decoration is not inside an fx.Module on
// purpose: fx scopes a module's decorations to that module, and every
// consumer must get the decorated manager.
var Module = fx.Options(
	fx.Provide(newModuleClientManager),
	fx.Decorate(decorate),
)

func decorate(cm ClientManager, o ModuleOptions, reg prometheus.Registerer) (ClientManager, error) {
	return NewMetricsClientManager(NewResilientClientManager(cm, o.Resilience), reg)
}

func newModuleClientManager(p moduleParams) (ClientManager, error) {
	if p.Mock != nil {
		return p.Mock, nil
	}
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	opts := []Option{WithDefaultConfig(p.Options.DefaultConfig), WithLogger(p.Logger.WithName("clients"))}
	if p.Options.QPS != 0 {
		opts = append(opts, WithQPS(p.Options.QPS))
	}
	if p.Options.Burst != 0 {
		opts = append(opts, WithBurst(p.Options.Burst))
	}
	cm, err := newKubevirtClientManager(p.Supervisor, s, p.Options.ConfigNamespace, opts...)
	if err != nil {
		return nil, fmt.Errorf("KubevirtClientManager: %w", err)
	}
	return cm, nil
}
