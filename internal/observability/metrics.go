package observability

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewGatherer is what /metrics serves: reg, and controller-runtime's
// registry, which holds client-go's rest_client_requests_total{code,
// method,host}: every request the process makes to the supervisor and the
// KubeVirt API servers, by host. The controller serves the same series
// from the same registry.
//
// client-go takes one metrics adapter per process (the first
// registration wins, later ones are ignored), and controller-runtime's
// metrics package registers its own from init whenever it is linked in.
// Gathering that registry counts the requests whatever the init order;
// registering a second adapter would silently count nothing.
func NewGatherer(reg *prometheus.Registry) prometheus.Gatherer {
	return prometheus.Gatherers{reg, crmetrics.Registry}
}

// sdkReportInterval is how often tally copies the SDK's metrics into the
// registry: a scrape sees values at most this old.
const sdkReportInterval = time.Second

// NewTemporalMetricsHandler returns the Temporal SDK's metrics handler,
// reporting into reg under the SDK's names (temporal_*), and the closer
// that stops the reporting. Registration conflicts (the SDK emitting one
// name with two tag sets) are logged, not fatal: losing one series must not
// stop a worker.
func NewTemporalMetricsHandler(reg *prometheus.Registry, log *slog.Logger) (client.MetricsHandler, func() error) {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError: func(err error) {
			log.Warn("Dropping a Temporal SDK metric", "error", err)
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
		// tally's own cardinality gauges say nothing about the worker.
		OmitCardinalityMetrics: true,
	}, sdkReportInterval)
	scope = sdktally.NewPrometheusNamingScope(scope)
	return sdktally.NewMetricsHandler(scope), func() error {
		if err := closer.Close(); err != nil {
			return fmt.Errorf("closing the Temporal metrics scope: %w", err)
		}
		return nil
	}
}
