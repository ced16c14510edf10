package worker

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx/fxtest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/observability"
)

// The worker's pollers autoscale: they start above the SDK's fixed two
// per kind, and never above MaxTaskPollers. The SDK's temporal_num_pollers
// gauge counts the polls open at a time.
func TestTaskPollersAutoscaleUpToTheCap(t *testing.T) {
	srv := devtemporal.New(t)
	for _, tc := range []struct {
		name      string
		maxPolls  int
		wantPolls float64
	}{
		{"default", 0, 5}, // autoscaling's initial count
		{"capped", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			log := slog.New(slog.DiscardHandler)
			metrics, closeMetrics := observability.NewTemporalMetricsHandler(reg, log)
			t.Cleanup(func() { require.NoError(t, closeMetrics()) })
			c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), MetricsHandler: metrics})
			require.NoError(t, err)
			t.Cleanup(c.Close)
			acts, err := activities.New(activities.Deps{
				Clients:    clients.NewMockClientManager(),
				Supervisor: fake.NewClientBuilder().Build(),
				Settings:   activities.DefaultSettings(),
			})
			require.NoError(t, err)

			// Without dashes: the metrics' labels spell them as underscores.
			queue := "pollers_" + tc.name
			lc := fxtest.NewLifecycle(t)
			New(Params{
				Lifecycle:  lc,
				Options:    Options{TaskQueue: queue, StopTimeout: time.Second, MaxTaskPollers: tc.maxPolls},
				Client:     c,
				Activities: acts,
				Readiness:  observability.NewReadiness(),
				Logger:     log,
			})
			lc.RequireStart()
			t.Cleanup(lc.RequireStop)

			for _, kind := range []string{"activity_task", "workflow_task"} {
				assert.EventuallyWithT(t, func(c *assert.CollectT) {
					assert.Equal(c, tc.wantPolls, numPollers(c, reg, queue, kind))
				}, 30*time.Second, 100*time.Millisecond, "%s pollers", kind)
			}
		})
	}
}

// numPollers reads the SDK's temporal_num_pollers gauge of one task queue
// and poller type.
func numPollers(t require.TestingT, g prometheus.Gatherer, queue, pollerType string) float64 {
	families, err := g.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "temporal_num_pollers" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["task_queue"] == queue && labels["poller_type"] == pollerType {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
