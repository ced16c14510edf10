package workflows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/supervisor"
)

// BenchmarkProvisionMachine runs a successful provision in the test
// environment: the cost of the workflow code and its 17 activities, without
// a Temporal service. The history size of the same run on the dev server
// is logged by TestOnDevServer.
func BenchmarkProvisionMachine(b *testing.B) {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(quietLogger())
	b.ReportAllocs()
	for b.Loop() {
		env := ts.NewTestWorkflowEnvironment()
		newFakes().register(env)
		RegisterWorkflows(env)
		env.ExecuteWorkflow(ProvisionMachineName, ProvisionInput{Namespace: "default", Name: "vm1"})
		if err := env.GetWorkflowError(); err != nil {
			b.Fatal(err)
		}
	}
}

// healthCheckT is the per-check timeout of BenchmarkClusterHealthFanOut
// (the managers' request timeout) and the unit of its figures.
const healthCheckT = time.Second

// BenchmarkClusterHealthFanOut checks 50 KubevirtConfigs, 45 on the
// harness's KubeVirt API server and 5 on black holes (they accept TCP and
// never answer), each check bounded by T = 1 s, several ways over the same
// configs in one run. It reports the median wall time of a check of all
// 50 in T, and the slowest as T-max. Checks that run at once wait for the
// black holes together, hence the target of at most 1.5 T.
//
//   - HealthCheck: KubevirtClientManager.HealthCheck.
//   - workflow: ClusterHealthCheck started and awaited on the Temporal dev
//     server, its activities run by an in-process worker as cmd/worker
//     runs them: autoscaling task pollers as internal/worker sets them
//     (which this package's tests cannot import), and the manager
//     decorated as clients.Module decorates it (metrics over the
//     resilient decorator, which passes ValidateConnection through).
//   - fixed-pollers: the same with the SDK's default of two task pollers
//     per kind, which can leave tasks waiting in task queue partitions
//     that no poller is on: what autoscaling gains.
//   - sequential: one ValidateConnection after the other, as the operator's
//     HealthCheck did, given the timeout it lacked (without one a black
//     hole holds it forever).
//
// Every run must find exactly the black holes unhealthy. One check takes
// seconds: run with -benchtime 5x (make bench-health).
func BenchmarkClusterHealthFanOut(b *testing.B) {
	h := newHealthFanOut(b)
	b.Run("HealthCheck", func(b *testing.B) {
		h.measure(b, func(ctx context.Context) ([]string, error) {
			var unhealthy []string
			for name := range h.manager.HealthCheck(ctx) {
				unhealthy = append(unhealthy, name)
			}
			return unhealthy, nil
		})
	})
	for _, queue := range h.queues {
		b.Run(queue, func(b *testing.B) { h.measure(b, h.workflow(queue)) })
	}
	b.Run("sequential", func(b *testing.B) {
		h.measure(b, func(ctx context.Context) ([]string, error) {
			configs, err := h.manager.ListKubevirtConfigs(ctx)
			if err != nil {
				return nil, err
			}
			var unhealthy []string
			for _, c := range configs {
				if err := h.manager.ValidateConnection(ctx, c.Name); err != nil {
					unhealthy = append(unhealthy, c.Name)
				}
			}
			return unhealthy, nil
		})
	})
}

// healthFanOut is BenchmarkClusterHealthFanOut's set-up: the configs, one
// manager whose requests time out after healthCheckT, and a worker per
// workflow variant on the dev server, each on a task queue named after
// its variant and running the real activities.
type healthFanOut struct {
	manager  *clients.KubevirtClientManager
	temporal client.Client
	queues   []string
	// holes are the black holes' config names, sorted.
	holes []string
}

func newHealthFanOut(b *testing.B) *healthFanOut {
	const configs, holes = 50, 5
	env := testenv.New(b, testenv.Options{Clusters: 1})
	ctx := b.Context()
	h := &healthFanOut{}
	cluster := env.Clusters[0]
	for i := range holes {
		name := fmt.Sprintf("hole-%d", i)
		require.NoError(b, env.RegisterCluster(ctx, name, kubeconfigFor(b, cluster.Kubeconfig, testutil.BlackHole(b))))
		h.holes = append(h.holes, name)
	}
	for i := range configs - holes - 1 { // the harness registered cluster itself
		require.NoError(b, env.RegisterCluster(ctx, fmt.Sprintf("good-%02d", i), cluster.Kubeconfig))
	}

	// The supervisor client the worker makes, with its client-side rate
	// limit, rather than the harness's unthrottled one.
	kubeconfig := filepath.Join(b.TempDir(), "supervisor.kubeconfig")
	require.NoError(b, os.WriteFile(kubeconfig, env.Supervisor.Kubeconfig, 0o600))
	sup, err := supervisor.New(supervisor.Options{Kubeconfig: kubeconfig})
	require.NoError(b, err)
	h.manager = clients.NewKubevirtClientManager(sup, env.Scheme, env.ConfigNamespace,
		clients.WithRequestTimeout(healthCheckT))
	decorated, err := clients.NewMetricsClientManager(
		clients.NewResilientClientManager(h.manager, clients.ResilienceOptions{}),
		prometheus.NewRegistry())
	require.NoError(b, err)

	autoscaling := worker.Options{
		WorkflowTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{}),
	}
	acts, err := activities.New(activities.Deps{Clients: decorated, Supervisor: sup, Settings: activities.DefaultSettings()})
	require.NoError(b, err)
	srv := devtemporal.New(b)
	h.temporal = srv.Client()
	for _, v := range []struct {
		queue   string
		options worker.Options
	}{
		{"workflow", autoscaling},
		{"fixed-pollers", worker.Options{}},
	} {
		w := worker.New(h.temporal, v.queue, v.options)
		Register(w, &ControlActivities{Client: h.temporal})
		w.RegisterActivity(acts)
		require.NoError(b, w.Start())
		b.Cleanup(w.Stop)
		h.queues = append(h.queues, v.queue)
	}
	return h
}

// workflow returns a check that runs ClusterHealthCheck on queue.
func (h *healthFanOut) workflow(queue string) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		run, err := Starter{Client: h.temporal, TaskQueue: queue}.StartHealthCheck(ctx)
		if err != nil {
			return nil, err
		}
		var report HealthReport
		if err := run.Get(ctx, &report); err != nil {
			return nil, err
		}
		var unhealthy []string
		for _, c := range report.Clusters {
			if !c.Healthy {
				unhealthy = append(unhealthy, c.KubevirtConfig)
			}
		}
		return unhealthy, nil
	}
}

// measure runs check once untimed, so that every client is built and
// every status recorded (the steady state of a scheduled check), then
// times it and reports the median and the slowest run in T.
func (h *healthFanOut) measure(b *testing.B, check func(context.Context) ([]string, error)) {
	ctx := b.Context()
	expect := func() {
		unhealthy, err := check(ctx)
		if err != nil {
			b.Fatal(err)
		}
		slices.Sort(unhealthy)
		if !slices.Equal(unhealthy, h.holes) {
			b.Fatalf("unhealthy configs: %v, want the black holes %v", unhealthy, h.holes)
		}
	}
	expect()
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		expect()
		took = append(took, time.Since(start))
	}
	b.ReportMetric(median(took).Seconds()/healthCheckT.Seconds(), "T")
	b.ReportMetric(slices.Max(took).Seconds()/healthCheckT.Seconds(), "T-max")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
