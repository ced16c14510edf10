package observability

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
)

// DefaultAddress is where the endpoints listen by default.
const DefaultAddress = ":9090"

// Options of the endpoints.
type Options struct {
	// Address is host:port of /metrics, /healthz and /readyz (METRICS_ADDRESS).
	Address string
}

// Module provides the registry (also as prometheus.Registerer), the
// Gatherer of /metrics (NewGatherer: the registry and client-go's request
// counts), the Temporal SDK's client.MetricsHandler and the Readiness, and
// serves the endpoints from start to stop.
var Module = fx.Module("observability",
	fx.Provide(
		NewRegistry,
		func(r *prometheus.Registry) prometheus.Registerer { return r },
		NewGatherer,
		NewReadiness,
		newTemporalMetricsHandler,
		newServer,
	),
	fx.Invoke(func(*Server) {}),
)

func newTemporalMetricsHandler(lc fx.Lifecycle, reg *prometheus.Registry, log *slog.Logger) client.MetricsHandler {
	h, closeScope := NewTemporalMetricsHandler(reg, log)
	lc.Append(fx.StopHook(closeScope))
	return h
}

func newServer(lc fx.Lifecycle, o Options, g prometheus.Gatherer, r *Readiness, log *slog.Logger) *Server {
	s := NewServer(o.Address, Handler(g, r), log)
	lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Shutdown})
	return s
}
