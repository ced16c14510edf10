package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/controller"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/supervisor"
	"github.com/machineflow/machineflow/workflows"
)

func loadWith(env map[string]string, args ...string) (config, error) {
	return load(args, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
}

func TestDefaults(t *testing.T) {
	c, err := loadWith(nil)
	require.NoError(t, err)
	assert.Equal(t, workflows.DefaultTaskQueue, c.Controller.Trigger.TaskQueue)
	assert.Equal(t, controller.Backoff{Initial: controller.DefaultRetryInitial, Max: controller.DefaultRetryMax}, c.Controller.Trigger.RetryBackoff)
	assert.Equal(t, 4, c.Controller.MaxConcurrentReconciles)
	assert.Equal(t, controller.DefaultMaxRunWaiters, c.Controller.MaxRunWaiters)
	assert.Equal(t, managerOptions{MetricsAddress: ":8080", ProbeAddress: ":8081", LeaderElect: true,
		LeaderElectionID: "machineflow-controller", LeaderElectionNamespace: "machineflow-system", StopTimeout: 20 * time.Second}, c.Manager)
	assert.Equal(t, "localhost:7233", c.Temporal.Address)
	assert.Equal(t, supervisor.Options{QPS: supervisor.DefaultQPS, Burst: supervisor.DefaultBurst}, c.Supervisor)
}

func TestEnvironmentAndFlagsWin(t *testing.T) {
	c, err := loadWith(map[string]string{
		"MAX_CONCURRENT_RECONCILES": "16",
		"REQUEUE_MAX":               "5m",
		"LEADER_ELECTION_NAMESPACE": "ops",
		"TEMPORAL_ADDRESS":          "temporal:7233",
		"SUPERVISOR_QPS":            "200",
		"SUPERVISOR_BURST":          "300",
		"MAX_RUN_WAITERS":           "-1",
	}, "--max-concurrent-reconciles=2", "--leader-elect=false", "--boot-timeout=20m", "--supervisor-burst=400")
	require.NoError(t, err)
	assert.Equal(t, 2, c.Controller.MaxConcurrentReconciles, "the flag wins over the variable")
	assert.Equal(t, 5*time.Minute, c.Controller.RequeueMax)
	assert.Equal(t, -1, c.Controller.MaxRunWaiters, "no run waiters")
	assert.Equal(t, "ops", c.Manager.LeaderElectionNamespace)
	assert.False(t, c.Manager.LeaderElect)
	assert.Equal(t, 20*time.Minute, c.Controller.Trigger.BootTimeout)
	assert.Equal(t, "temporal:7233", c.Temporal.Address)
	assert.Equal(t, supervisor.Options{QPS: 200, Burst: 400}, c.Supervisor)

	c, err = loadWith(map[string]string{"LEADER_ELECT": "false"})
	require.NoError(t, err)
	assert.False(t, c.Manager.LeaderElect, "LEADER_ELECT turns leader election off")
	c, err = loadWith(map[string]string{"LEADER_ELECT": "false"}, "--leader-elect")
	require.NoError(t, err)
	assert.True(t, c.Manager.LeaderElect, "the flag alone wins over the variable")
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	_, err := loadWith(map[string]string{
		"MAX_CONCURRENT_RECONCILES": "0",
		"RETRY_BACKOFF_INITIAL":     "1h",
		"RETRY_BACKOFF_MAX":         "1m",
		"REQUEUE_MIN":               "nope",
		"BOOT_TIMEOUT":              "48h",
		"METRICS_BIND_ADDRESS":      "8080",
		"LEADER_ELECTION_NAMESPACE": "Not_A_Namespace",
		"LOG_FORMAT":                "xml",
		"LEADER_ELECT":              "sometimes",
		"TEMPORAL_API_KEY":          "very-secret-api-key",
		"SUPERVISOR_QPS":            "0",
	}, "--kubeconfig=/does/not/exist")
	require.Error(t, err)
	for _, want := range []string{
		"MAX_CONCURRENT_RECONCILES=0: must be at least 1",
		"RETRY_BACKOFF_INITIAL=1h0m0s, RETRY_BACKOFF_MAX=1m0s: want 0 < initial <= max",
		`REQUEUE_MIN="nope": not a duration`,
		"BOOT_TIMEOUT=48h0m0s: must be 0 (the default) up to 24h0m0s",
		`METRICS_BIND_ADDRESS="8080": must be [host]:port, or 0 to turn it off`,
		`LEADER_ELECTION_NAMESPACE="Not_A_Namespace"`,
		`LOG_FORMAT="xml"`,
		`LEADER_ELECT="sometimes": not a boolean (true or false)`,
		"--kubeconfig: stat /does/not/exist",
		"SUPERVISOR_QPS=0: must be positive",
	} {
		assert.ErrorContains(t, err, want)
	}
	assert.NotContains(t, err.Error(), "very-secret-api-key")

	_, err = loadWith(nil, "extra")
	require.EqualError(t, err, `unexpected argument "extra": the controller takes flags only`)
}

func TestGraphIsComplete(t *testing.T) {
	c, err := loadWith(nil)
	require.NoError(t, err)
	require.NoError(t, fx.ValidateApp(app(c)))
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestAppRunsTheController starts the app as main does, against a real
// supervisor and Temporal dev server (no worker: the workflow is only
// started), and stops it as SIGTERM would. Its logr.Logger, which the
// manager, controller-runtime and client-go (through klog) log with, is
// captured: a clean stop logs no error.
func TestAppRunsTheController(t *testing.T) {
	env := testenv.New(t, testenv.Options{SupervisorOnly: true})
	srv := devtemporal.New(t)
	kubeconfig := filepath.Join(t.TempDir(), "supervisor.kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, env.Supervisor.Kubeconfig, 0o600))
	metrics, probes := testutil.FreeAddress(t), testutil.FreeAddress(t)
	c, err := loadWith(map[string]string{
		"TEMPORAL_ADDRESS":          srv.FrontendHostPort(),
		"LEADER_ELECTION_NAMESPACE": env.ConfigNamespace,
		"METRICS_BIND_ADDRESS":      metrics,
		"HEALTH_PROBE_BIND_ADDRESS": probes,
		"LOG_LEVEL":                 "error",
	}, "--kubeconfig="+kubeconfig)
	require.NoError(t, err)

	var logs testutil.SyncBuffer
	captured, err := logging.New(&logs, logging.Options{Format: logging.FormatJSON, Level: "info"})
	require.NoError(t, err)
	t.Cleanup(klog.ClearLogger)
	app := fxtest.New(t, app(c), fx.Decorate(func(logr.Logger) logr.Logger { return captured.Logr }))
	app.RequireStart()

	ctx := context.Background()
	sup := env.Supervisor.Client
	require.NoError(t, sup.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}))
	require.NoError(t, sup.Create(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "m1"},
		Spec: v1alpha1.MachineSpec{Provider: v1alpha1.MachineProviderType(names.ProviderKubevirt)}}))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := &v1alpha1.Machine{}
		if !assert.NoError(c, sup.Get(ctx, client.ObjectKey{Namespace: "app", Name: "m1"}, m)) {
			return
		}
		assert.Contains(c, m.Finalizers, names.Finalizer)
		var reason string
		for _, cond := range m.Status.Conditions {
			if cond.Type == controller.ConditionLifecycleWorkflow {
				reason = cond.Reason
			}
		}
		assert.Equal(c, controller.ReasonProvisionRunning, reason)
	}, 30*time.Second, 100*time.Millisecond)
	desc, err := srv.Client().DescribeWorkflow(ctx, workflows.ProvisionWorkflowID("app", "m1"), "")
	require.NoError(t, err)
	assert.Equal(t, workflows.ProvisionMachineName, desc.WorkflowType.Name)

	code, _ := get(t, "http://"+probes+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, body := get(t, "http://"+probes+"/readyz")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = get(t, "http://"+metrics+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `controller_runtime_reconcile_total{controller="machineflow-machine"`)

	lease := &coordinationv1.Lease{}
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: env.ConfigNamespace, Name: "machineflow-controller"}, lease))
	require.NotEmpty(t, ptr.Deref(lease.Spec.HolderIdentity, ""), "leader while running")

	app.RequireStop()
	require.NoError(t, sup.Get(ctx, client.ObjectKey{Namespace: env.ConfigNamespace, Name: "machineflow-controller"}, lease))
	assert.Empty(t, ptr.Deref(lease.Spec.HolderIdentity, ""), "the lease is released on stop, so a new replica leads at once")
	code, _ = get(t, "http://"+probes+"/healthz")
	assert.Zero(t, code, "the probe server is down after stop")

	var errorLines []map[string]any
	acquired := false
	for _, l := range testutil.JSONLines(t, logs.String()) {
		if l["level"] == "ERROR" {
			errorLines = append(errorLines, l)
		}
		acquired = acquired || l["msg"] == "Successfully acquired lease"
	}
	assert.Empty(t, errorLines, "a clean stop logs no error")
	assert.True(t, acquired, "client-go's leader election logs through the app's logger:\n%s", logs.String())
}
