// Package observability serves the process's /metrics, /healthz and
// /readyz on one listener (METRICS_ADDRESS).
//
// One Prometheus registry holds everything of ours: Go and process
// collectors, our own metrics (the ClientManager decorator's) and the
// Temporal SDK's. /metrics adds client-go's request counts by host from
// controller-runtime's registry (NewGatherer says why from there). The
// SDK reports through tally (go.temporal.io/sdk/contrib/tally) into that
// registry rather than through a second endpoint, so a scrape config needs
// one target per pod. Timers are exported as histograms, which aggregate
// across replicas; summaries would not.
//
// /healthz answers 200 while the process serves HTTP: restarting it cannot
// fix Temporal or a cluster being down. /readyz runs the registered
// readiness checks (the worker adds "worker started" and "Temporal
// reachable") and answers 503 naming the failing ones.
package observability
