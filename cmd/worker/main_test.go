package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/config"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/sim/mockmode"
	"github.com/machineflow/machineflow/workflows"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// workerBinary builds cmd/worker once per test run: the tests run the
// real binary, as an operator would.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "machineflow-worker-test")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "worker")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr, "building cmd/worker")
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard)
	require.NoError(t, err)
	return cfg
}

func TestGraphIsCompleteInBothModes(t *testing.T) {
	for _, mode := range []string{config.ClientManagerReal, config.ClientManagerMock} {
		t.Run(mode, func(t *testing.T) {
			require.NoError(t, fx.ValidateApp(app(loadConfig(t, map[string]string{"CLIENT_MANAGER": mode}))))
		})
	}
}

// runWorker runs the binary; its stderr is collected in the returned buffer.
type workerProcess struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
	done   chan struct{}
	err    error
}

func startWorker(t *testing.T, env []string, args ...string) *workerProcess {
	t.Helper()
	cmd := exec.Command(workerBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	p := &workerProcess{cmd: cmd, stderr: &testutil.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("worker stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process does not
// end within limit.
func (p *workerProcess) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		t.Fatalf("worker still running after %s", limit)
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestInvalidConfigurationExitsWithOneLine(t *testing.T) {
	for name, tc := range map[string]struct {
		env  []string
		args []string
		want string
	}{
		"ip source":      {[]string{"IP_SOURCE=foo"}, nil, `invalid configuration: activity settings: IP_SOURCE="foo": must be vmi or networkconfiguration`},
		"client manager": {nil, []string{"--client-manager", "fake"}, `invalid configuration: CLIENT_MANAGER="fake": must be real or mock`},
		"tls pair":       {[]string{"TEMPORAL_TLS_CERT=/tmp/c.pem", "TEMPORAL_API_KEY=super-secret-key"}, nil, `invalid configuration: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: set both or neither`},
	} {
		t.Run(name, func(t *testing.T) {
			p := startWorker(t, tc.env, tc.args...)
			assert.Equal(t, 2, p.wait(t, time.Minute))
			assert.Equal(t, tc.want+"\n", p.stderr.String())
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	p := startWorker(t, nil, "-h")
	assert.Equal(t, 0, p.wait(t, time.Minute))
	for _, want := range []string{"-temporal-address", "$TEMPORAL_ADDRESS", "-client-manager", "$IP_SOURCE", "$WORKER_STOP_TIMEOUT"} {
		assert.Contains(t, p.stderr.String(), want)
	}
}

func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestMockModeAgainstDevServer runs the worker binary in mock mode against
// a real Temporal dev server: demo Machines provision (and the failing one
// fails), /metrics carries the SDK's and the ClientManager's series, and
// SIGTERM stops it with status 0 after letting a running activity finish.
func TestMockModeAgainstDevServer(t *testing.T) {
	srv := devtemporal.New(t)
	metrics := "http://" + testutil.FreeAddress(t)
	p := startWorker(t, []string{
		"TEMPORAL_ADDRESS=" + srv.FrontendHostPort(),
		"CLIENT_MANAGER=mock",
		"METRICS_ADDRESS=" + strings.TrimPrefix(metrics, "http://"),
		"LOG_FORMAT=json",
		"WORKER_STOP_TIMEOUT=20s",
	})
	require.Eventually(t, func() bool {
		code, _, err := httpGet(metrics + "/readyz")
		return err == nil && code == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "worker never became ready")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	starter := workflows.Starter{Client: srv.Client()}

	run, err := starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: mockmode.Namespace, Name: "demo-1"})
	require.NoError(t, err)
	var result workflows.ProvisionResult
	require.NoError(t, run.Get(ctx, &result))
	assert.Equal(t, mockmode.ConfigA, result.KubevirtConfig)
	assert.Equal(t, "demo-1", result.VMName)
	assert.NotEmpty(t, result.IPAddresses)

	run, err = starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: mockmode.Namespace, Name: "demo-3"})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &result))
	assert.Equal(t, mockmode.ConfigB, result.KubevirtConfig, "demo-3 is annotated for demo-b")

	run, err = starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: mockmode.Namespace, Name: mockmode.FailingMachine})
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, contract.ErrTypeBootFailed, appErr.Type())

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body, err := httpGet(metrics + "/metrics")
		require.NoError(c, err)
		assert.Equal(c, http.StatusOK, code)
		assert.Contains(c, body, `temporal_workflow_completed_total{`)
		assert.Contains(c, body, `temporal_activity_execution_latency_seconds_bucket{`)
		assert.Contains(c, body, `machineflow_clientmanager_calls_total{config="demo-a",method="GetClientForConfig"}`)
		assert.Contains(c, body, `machineflow_clientmanager_calls_total{config="demo-b",method="GetOrCreateClientFromMachine"}`)
		assert.Contains(c, body, `machineflow_clientmanager_call_duration_seconds_bucket{config="demo-a",method="ValidateConnection"`)
	}, 30*time.Second, 200*time.Millisecond)

	// SIGTERM while WaitForVirtualMachine runs: the worker stops polling,
	// lets the activity finish, and exits 0.
	run, err = starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: mockmode.Namespace, Name: "demo-2"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		desc, err := srv.Client().WorkflowService().DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
			Namespace: "default",
			Execution: &commonpb.WorkflowExecution{WorkflowId: run.GetID(), RunId: run.GetRunID()},
		})
		if err != nil {
			return false
		}
		for _, a := range desc.PendingActivities {
			if a.ActivityType.GetName() == contract.WaitForVirtualMachineName && a.State == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "demo-2 never reached WaitForVirtualMachine")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t, time.Minute), "SIGTERM is a clean stop")

	history := srv.Client().GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var waitScheduled int64
	waitCompleted := false
	for history.HasNext() {
		ev, err := history.Next()
		require.NoError(t, err)
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == contract.WaitForVirtualMachineName {
				waitScheduled = ev.GetEventId()
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId() == waitScheduled {
				waitCompleted = true
			}
		}
	}
	assert.True(t, waitCompleted, "the running activity finished before the worker exited")

	// Every line is structured JSON with lowerCamel keys.
	entries := testutil.JSONLines(t, p.stderr.String())
	for _, entry := range entries {
		for key := range entry {
			assert.NotRegexp(t, `^[A-Z]`, key, "log key in %v", entry)
		}
	}
	assert.NotEmpty(t, entries)
	assert.Contains(t, p.stderr.String(), `"msg":"Worker stopped"`)
}
