package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/workflows"
)

// TestFakesMatchActivities keeps the fakes honest: every activity of
// package activities exists on the fakes with the same signature.
func TestFakesMatchActivities(t *testing.T) {
	real, fake := reflect.TypeFor[*activities.Activities](), reflect.TypeFor[*fakeActivities]()
	require.Equal(t, real.NumMethod(), fake.NumMethod(), "the fakes have exactly the activities")
	for i := range real.NumMethod() {
		m := real.Method(i)
		f, ok := fake.MethodByName(m.Name)
		require.True(t, ok, "fake for activity %s", m.Name)
		for j := 1; j < m.Type.NumIn(); j++ {
			assert.Equal(t, m.Type.In(j), f.Type.In(j), "%s argument %d", m.Name, j)
		}
		for j := range m.Type.NumOut() {
			assert.Equal(t, m.Type.Out(j), f.Type.Out(j), "%s result %d", m.Name, j)
		}
	}
}

// devEnv is a dev server with a worker running the real workflows on the
// fake activities, and the environment that points the CLI at it.
type devEnv struct {
	client client.Client
	fakes  *fakeActivities
	env    map[string]string
}

func newDevEnv(t testing.TB) *devEnv {
	srv := devtemporal.New(t)
	fakes := newFakeActivities()
	w := worker.New(srv.Client(), workflows.DefaultTaskQueue, worker.Options{})
	workflows.Register(w, &workflows.ControlActivities{Client: srv.Client(), MaxPollInterval: 200 * time.Millisecond})
	w.RegisterActivity(fakes)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &devEnv{
		client: srv.Client(),
		fakes:  fakes,
		// No supervisor: HOME has no ~/.kube/config.
		env: map[string]string{"TEMPORAL_ADDRESS": srv.FrontendHostPort(), "HOME": t.TempDir()},
	}
}

func (d *devEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runCLI(t.Context(), d.env, args...)
}

// start runs the CLI in the background; done yields its exit code.
func (d *devEnv) start(t *testing.T, args ...string) (stdout, stderr *testutil.SyncBuffer, done <-chan int) {
	stdout, stderr = &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	codes := make(chan int, 1)
	go func() {
		codes <- Main(t.Context(), args, stdout, stderr, func(k string) (string, bool) { v, ok := d.env[k]; return v, ok })
	}()
	return stdout, stderr, codes
}

func waitCode(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(time.Minute):
		t.Fatal("the command did not return within a minute")
		return -1
	}
}

func TestOnDevServer(t *testing.T) {
	d := newDevEnv(t)
	t.Setenv("KUBECONFIG", "") // clientcmd reads it from the process

	t.Run("provision --wait shows the result", func(t *testing.T) {
		code, stdout, stderr := d.run(t, "provision", "default/vm-ok", "--config", "kv-b", "--wait", "--poll-interval", "50ms")
		require.Equal(t, ExitOK, code, stderr)
		assert.Contains(t, stdout, "workflow provision/default/vm-ok started (run ")
		assert.Contains(t, stdout, "workflow provision/default/vm-ok completed\n")
		assert.Contains(t, stdout, "  KubevirtConfig:  kv-b\n")
		assert.Contains(t, stdout, "  IP addresses:    10.0.0.5\n")

		code, stdout, _ = d.run(t, "provision", "default/vm-ok", "-o", "json")
		require.Equal(t, ExitOK, code)
		var s Started
		require.NoError(t, json.Unmarshal([]byte(stdout), &s))
		assert.True(t, s.Started, "a closed run is started again")
		assert.Equal(t, "provision/default/vm-ok", s.WorkflowID)
		require.NoError(t, d.client.GetWorkflow(t.Context(), s.WorkflowID, s.RunID).Get(t.Context(), nil))
	})

	t.Run("status shows an ISO eject run next to the provision", func(t *testing.T) {
		run, err := workflows.Starter{Client: d.client}.StartEjectISO(t.Context(), workflows.EjectISOInput{Namespace: "default", Name: "vm-ok"})
		require.NoError(t, err)
		require.NoError(t, run.Get(t.Context(), nil))

		code, stdout, stderr := d.run(t, "status", "default/vm-ok")
		require.Equal(t, ExitOK, code, stderr)
		assert.Contains(t, stdout, "Workflow provision/default/vm-ok (ProvisionMachine)\n")
		assert.Regexp(t, `Workflow eject-iso/default/vm-ok \(EjectISO\)\n(  .*\n)*  Step: +Completed\n`, stdout)
	})

	t.Run("a running provision is reused and followed step by step", func(t *testing.T) {
		code, stdout, _ := d.run(t, "provision", "default/"+machineSlow)
		require.Equal(t, ExitOK, code)
		require.Contains(t, stdout, "started")

		code, stdout, stderr := d.run(t, "provision", "default/"+machineSlow, "--config", "kv-b")
		require.Equal(t, ExitOK, code)
		assert.Contains(t, stdout, "workflow provision/default/slow already running")
		assert.Contains(t, stderr, "keeps the input it was started with")

		require.Eventually(t, func() bool {
			_, stdout, _ := d.run(t, "status", "default/"+machineSlow)
			return strings.Contains(stdout, "Step:            WaitForVirtualMachine")
		}, 20*time.Second, 100*time.Millisecond)
		code, stdout, _ = d.run(t, "status", "default/"+machineSlow)
		require.Equal(t, ExitOK, code)
		assert.Contains(t, stdout, "Machine default/slow\n  (Machine not shown: no kubeconfig for the supervisor")
		assert.Contains(t, stdout, "Workflow provision/default/slow (ProvisionMachine)\n")
		assert.Contains(t, stdout, "Status:          Running\n")
		assert.Contains(t, stdout, "KubevirtConfig:  kv-a\n", "the open run kept its own input")
		assert.Contains(t, stdout, "Phase:           Creating\n")
		assert.NotContains(t, stdout, "deprovision/", "no deprovision exists")

		var open []WorkflowSummary
		require.Eventually(t, func() bool {
			code, stdout, _ := d.run(t, "list", "--open", "-o", "json")
			return code == ExitOK && json.Unmarshal([]byte(stdout), &open) == nil && len(open) == 1
		}, 20*time.Second, 200*time.Millisecond, "only the slow provision is open, once visibility has caught up")
		assert.Equal(t, WorkflowSummary{
			WorkflowID: "provision/default/slow", RunID: open[0].RunID, Type: workflows.ProvisionMachineName, Status: "Running",
			MachineNamespace: "default", MachineName: machineSlow, KubevirtConfig: "kv-a", Phase: "Creating", StartTime: open[0].StartTime,
		}, open[0])

		out, _, done := d.start(t, "provision", "default/"+machineSlow, "--wait", "--poll-interval", "50ms")
		require.Eventually(t, func() bool { return strings.Contains(out.String(), contract.WaitForVirtualMachineName) },
			20*time.Second, 20*time.Millisecond, "the step in progress is shown")
		close(d.fakes.release)
		require.Equal(t, ExitOK, waitCode(t, done))
		assert.Regexp(t, `already running \(run [^)]+\); waiting\n  \[ *[0-9.]+s\]  WaitForVirtualMachine`, out.String())
		assert.Contains(t, out.String(), "workflow provision/default/slow completed\n")
	})

	t.Run("a failed provision prints its reason and exits 1", func(t *testing.T) {
		code, stdout, stderr := d.run(t, "provision", "default/"+machineBootFails, "--wait")
		assert.Equal(t, ExitFailed, code)
		assert.Equal(t, "error: workflow provision/default/boot-fails failed: VMBootFailed: WaitForVirtualMachine: VM default/boot-fails on kv-a failed to boot: CrashLoopBackOff\n", stderr)
		assert.NotContains(t, stdout, "completed")

		code, stdout, _ = d.run(t, "provision", "default/"+machineBootFails, "--wait", "-o", "json")
		assert.Equal(t, ExitFailed, code)
		var o Outcome
		require.NoError(t, json.Unmarshal([]byte(stdout), &o), stdout)
		assert.Equal(t, "Failed", o.Status)
		assert.Equal(t, []Cause{
			{Type: contract.ErrTypeBootFailed, Message: "WaitForVirtualMachine: VM default/boot-fails on kv-a failed to boot: CrashLoopBackOff"},
			{Type: "ActivityFailed", Message: "activity WaitForVirtualMachine failed"},
			{Type: contract.ErrTypeBootFailed, Message: "VM default/boot-fails on kv-a failed to boot: CrashLoopBackOff"},
		}, o.Failure)
	})

	t.Run("list filters by search attributes", func(t *testing.T) {
		var failed []WorkflowSummary
		require.Eventually(t, func() bool {
			_, stdout, _ := d.run(t, "list", "--phase", "Failed", "-o", "json")
			return json.Unmarshal([]byte(stdout), &failed) == nil && len(failed) == 2
		}, 20*time.Second, 200*time.Millisecond, "both failed runs of boot-fails, once visibility has them")
		for _, w := range failed {
			assert.Equal(t, "kv-a", w.KubevirtConfig)
			assert.Equal(t, "provision/default/boot-fails", w.WorkflowID)
			assert.Equal(t, "Failed", w.Status)
			assert.NotNil(t, w.CloseTime)
		}

		code, stdout, _ := d.run(t, "list", "--machine", "default/vm-ok", "--config", "kv-b")
		require.Equal(t, ExitOK, code)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Len(t, lines, 2, "header and the one run placed on kv-b: %s", stdout)
		assert.Regexp(t, `^WORKFLOW ID +TYPE +STATUS +PHASE +CONFIG +STARTED +CLOSED$`, lines[0])
		assert.Regexp(t, `^provision/default/vm-ok +ProvisionMachine +Completed +Running +kv-b +\S+ +\S+$`, lines[1])

		code, stdout, stderr := d.run(t, "list", "--machine", "default/nobody")
		assert.Equal(t, ExitOK, code)
		assert.Empty(t, stdout)
		assert.Equal(t, "no workflows found\n", stderr)
	})

	t.Run("status of an unknown Machine exits 3", func(t *testing.T) {
		code, stdout, stderr := d.run(t, "status", "default/nobody")
		assert.Equal(t, ExitNotFound, code)
		assert.Empty(t, stdout)
		assert.Equal(t, "error: no workflow for Machine default/nobody (neither provision/default/nobody nor deprovision/default/nobody exists)\n", stderr)
	})

	t.Run("deprovision --wait lists what was deleted", func(t *testing.T) {
		code, stdout, stderr := d.run(t, "deprovision", "default/vm-ok", "--wait")
		require.Equal(t, ExitOK, code, stderr)
		assert.Contains(t, stdout, "workflow deprovision/default/vm-ok completed\n")
		assert.Contains(t, stdout, "  Deleted:         VirtualMachine default/vm-ok, PersistentVolumeClaim default/vm-ok, NetworkConfiguration default/vm-ok\n")
		assert.NotContains(t, stdout, "Forced")
	})

	t.Run("deprovision --force sends the force update to a running deprovision", func(t *testing.T) {
		code, _, _ := d.run(t, "deprovision", "default/"+machineStuck)
		require.Equal(t, ExitOK, code)
		require.Eventually(t, func() bool {
			_, stdout, _ := d.run(t, "status", "default/"+machineStuck)
			return strings.Contains(stdout, "Step:            DeleteVirtualMachine")
		}, 30*time.Second, 200*time.Millisecond, "the deprovision retries deleting the VM on the unreachable cluster")

		code, _, stderr := d.run(t, "deprovision", "default/"+machineStuck, "--wait", "--timeout", "1s")
		assert.Equal(t, ExitTimeout, code)
		assert.Equal(t, "error: workflow deprovision/default/stuck still running after --timeout 1s\n", stderr)

		ctx, interrupt := context.WithCancel(t.Context()) // what Ctrl-C does in cmd/starter
		time.AfterFunc(500*time.Millisecond, interrupt)
		code, _, stderr = runCLI(ctx, d.env, "deprovision", "default/"+machineStuck, "--wait")
		assert.Equal(t, ExitFailed, code)
		assert.Equal(t, "error: stopped waiting (context canceled); workflow deprovision/default/stuck keeps running\n", stderr)

		code, stdout, stderr := d.run(t, "deprovision", "default/"+machineStuck, "--force", "--wait", "--poll-interval", "100ms")
		require.Equal(t, ExitOK, code, stderr)
		assert.Contains(t, stderr, `sent "force" to the running deprovision/default/stuck`)
		assert.Contains(t, stdout, "already running")
		assert.Contains(t, stdout, "  Not deleted:     VirtualMachine default/stuck on kv-a, PersistentVolumeClaims of Machine default/stuck on kv-a, NetworkAttachmentDefinitions of Machine default/stuck on kv-a\n")
		assert.Contains(t, stdout, "  Forced:          yes")
	})

	t.Run("health-check --wait prints the report", func(t *testing.T) {
		code, stdout, stderr := d.run(t, "health-check", "--wait")
		require.Equal(t, ExitOK, code, stderr)
		assert.Regexp(t, `(?m)^kv-a +true +\S+ +\S+ +-$`, stdout)
		assert.Regexp(t, `(?m)^kv-b +false +\S+ +\S+ +ClusterUnreachable: connection refused$`, stdout)

		code, stdout, _ = d.run(t, "health-check", "--wait", "-o", "json")
		require.Equal(t, ExitOK, code)
		var o struct {
			Status string
			Result workflows.HealthReport
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &o))
		assert.Equal(t, "Completed", o.Status)
		require.Len(t, o.Result.Clusters, 2)
		assert.False(t, o.Result.Clusters[1].Healthy)
	})

	t.Run("schedule lifecycle", func(t *testing.T) {
		code, _, stderr := d.run(t, "schedule", "show")
		assert.Equal(t, ExitNotFound, code)
		assert.Equal(t, "error: no schedule cluster-health-check (create it with `starter schedule health-check --every 5m`)\n", stderr)

		code, stdout, _ := d.run(t, "schedule", "health-check", "--every", "1h")
		require.Equal(t, ExitOK, code)
		assert.Equal(t, "schedule cluster-health-check created: ClusterHealthCheck every 1h0m0s, overlapping runs skipped\n", stdout)
		code, stdout, _ = d.run(t, "schedule", "health-check", "--every", "2h")
		require.Equal(t, ExitOK, code)
		assert.Contains(t, stdout, "schedule cluster-health-check updated")

		before := d.fakes.healthRecords("kv-a")
		code, stdout, _ = d.run(t, "schedule", "trigger")
		require.Equal(t, ExitOK, code)
		assert.Equal(t, "schedule cluster-health-check triggered\n", stdout)
		require.Eventually(t, func() bool { return d.fakes.healthRecords("kv-a") > before }, 30*time.Second, 100*time.Millisecond,
			"the triggered run recorded the clusters' health")

		code, stdout, _ = d.run(t, "schedule", "show", "-o", "json")
		require.Equal(t, ExitOK, code)
		var r ScheduleReport
		require.NoError(t, json.Unmarshal([]byte(stdout), &r))
		assert.Equal(t, []string{"2h0m0s"}, r.Every, "the update replaced the interval")
		assert.Equal(t, "Skip", r.Overlap)
		assert.Equal(t, workflows.ClusterHealthCheckName, r.Workflow)
		assert.Equal(t, workflows.DefaultTaskQueue, r.TaskQueue)
		require.NotEmpty(t, r.RecentRuns)
		assert.True(t, strings.HasPrefix(r.RecentRuns[0].WorkflowID, workflows.HealthCheckWorkflowID), r.RecentRuns[0].WorkflowID)

		code, stdout, _ = d.run(t, "schedule", "show")
		require.Equal(t, ExitOK, code)
		assert.Contains(t, stdout, "  Every:       2h0m0s\n")
		assert.Contains(t, stdout, "Recent runs:\nSCHEDULED")

		code, _, _ = d.run(t, "schedule", "delete")
		require.Equal(t, ExitOK, code)
		code, _, _ = d.run(t, "schedule", "delete")
		assert.Equal(t, ExitNotFound, code)
	})
}

// BenchmarkProvisionWait is the starter's overhead around a workflow:
// `provision --wait` of a Machine whose activities return at once (argument
// parsing, dialing, the start, status polls and the result) against the
// same workflow started and awaited with the SDK directly, on the dev
// server.
func BenchmarkProvisionWait(b *testing.B) {
	d := newDevEnv(b)
	b.Run("starter", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			code, _, stderr := runCLI(b.Context(), d.env, "provision", fmt.Sprintf("default/cli-%d", i), "--wait", "--poll-interval", "50ms")
			if code != ExitOK {
				b.Fatalf("exit %d: %s", code, stderr)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		starter := workflows.Starter{Client: d.client}
		for i := 0; b.Loop(); i++ {
			run, err := starter.StartProvision(b.Context(), workflows.ProvisionInput{Namespace: "default", Name: fmt.Sprintf("sdk-%d", i)})
			if err == nil {
				err = run.Get(b.Context(), nil)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
