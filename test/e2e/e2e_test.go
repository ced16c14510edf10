package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/freeport"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// outcome is the part of `starter ... --wait -o json` the tests read.
type outcome[R any] struct {
	WorkflowID string   `json:"workflowId"`
	Status     string   `json:"status"`
	Steps      []string `json:"steps"`
	Result     R        `json:"result"`
}

func decode[T any](t *testing.T, stdout string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(stdout), &v), "starter output: %s", stdout)
	return v
}

// starterRun is one finished starter invocation.
type starterRun struct {
	code           int
	stdout, stderr string
}

// starterAll runs one starter invocation per argument list, concurrently.
func (st *suite) starterAll(t *testing.T, argLists [][]string) []starterRun {
	runs := make([]starterRun, len(argLists))
	var wg sync.WaitGroup
	for i, args := range argLists {
		wg.Go(func() { runs[i].code, runs[i].stdout, runs[i].stderr = st.starter(t, args...) })
	}
	wg.Wait()
	return runs
}

// TestProvisionAndDeprovision provisions Machines on both clusters, placed
// by annotation and by --config, one with cloud-init, checks them on the
// supervisor and the clusters, then deprovisions them and checks that
// nothing is left.
func TestProvisionAndDeprovision(t *testing.T) {
	st := need(t)
	ns := st.namespace(t, "e2e-lifecycle")
	ci := newCloudInit("e2e-lifecycle-Pa55w0rd")
	machines := []struct {
		name, config string
		byFlag       bool // --config rather than the placement annotation
		cloudInit    bool
	}{
		{"web-1", testenv.ClusterName(1), false, true},
		{"web-2", testenv.ClusterName(2), false, false},
		{"db-1", testenv.ClusterName(1), true, false},
		{"db-2", testenv.ClusterName(2), true, false},
	}
	var provisions [][]string
	for _, m := range machines {
		annotation := m.config
		args := []string{"provision", ns + "/" + m.name, "--wait", "--poll-interval", "200ms", "-o", "json"}
		if m.byFlag {
			annotation = ""
			args = append(args, "--config", m.config)
		}
		var mutate []func(*v1alpha1.Machine)
		if m.cloudInit {
			mutate = append(mutate, ci.apply)
		}
		st.machine(t, ns, m.name, annotation, map[string]string{names.VMAnnotationPrefix + "owner": "e2e"}, mutate...)
		provisions = append(provisions, args)
	}

	start := time.Now()
	runs := st.starterAll(t, provisions)
	t.Logf("%d Machines provisioned concurrently in %s", len(machines), time.Since(start).Round(10*time.Millisecond))
	for i, m := range machines {
		run := runs[i]
		require.Equal(t, 0, run.code, "provision %s: %s", m.name, run.stderr)
		o := decode[outcome[workflows.ProvisionResult]](t, run.stdout)
		assert.Equal(t, "Completed", o.Status)
		assert.Equal(t, m.config, o.Result.KubevirtConfig, m.name)
		require.NotEmpty(t, o.Result.IPAddresses, m.name)
		pool := st.Sims.AddressPool(m.config)
		addr, err := netip.ParseAddr(o.Result.IPAddresses[0])
		require.NoError(t, err, m.name)
		assert.True(t, pool.Contains(addr), "%s: address %s from the pool %s of %s", m.name, addr, pool, m.config)

		machine := st.getMachine(t, ns, m.name)
		assert.Equal(t, v1alpha1.MachinePhaseRunning, machine.Status.Phase, m.name)
		assert.Equal(t, o.Result.IPAddresses, machine.Status.IPAddresses, m.name)
		assert.Equal(t, m.config, machine.Annotations[names.PlacementAnnotation], m.name)
		assert.Nil(t, machine.Status.FailureReason, m.name)

		checkVM(t, st.vm(t, m.config, ns, m.name), m.name)
		if m.cloudInit {
			st.checkCloudInit(t, m.config, ns, m.name, ci)
		}
		for _, c := range st.Env.Clusters {
			if c.Name != m.config {
				assert.Nil(t, st.vm(t, c.Name, ns, m.name), "%s has no VM on %s", m.name, c.Name)
			}
		}
	}

	code, stdout, stderr := st.starter(t, "status", ns+"/web-1", "-o", "json")
	require.Equal(t, 0, code, stderr)
	report := decode[struct {
		Machine   *struct{ Phase, KubevirtConfig string }
		Workflows []struct {
			Status   string
			Progress *workflows.Progress
		}
	}](t, stdout)
	require.NotNil(t, report.Machine, "the starter read the Machine from the supervisor: %s", stdout)
	assert.Equal(t, v1alpha1.MachinePhaseRunning, report.Machine.Phase)
	assert.Equal(t, testenv.ClusterName(1), report.Machine.KubevirtConfig)
	require.Len(t, report.Workflows, 1)
	assert.Equal(t, "Completed", report.Workflows[0].Status)
	require.NotNil(t, report.Workflows[0].Progress)
	assert.Equal(t, workflows.StepCompleted, report.Workflows[0].Progress.Step)

	require.Eventually(t, func() bool {
		_, stdout, _ := st.starter(t, "list", "--config", testenv.ClusterName(2), "--phase", "Running", "--type", "provision", "-o", "json")
		var rows []struct{ MachineNamespace, MachineName string }
		if json.Unmarshal([]byte(stdout), &rows) != nil {
			return false
		}
		var got []string
		for _, r := range rows {
			if r.MachineNamespace == ns {
				got = append(got, r.MachineName)
			}
		}
		slices.Sort(got)
		return slices.Equal([]string{"db-2", "web-2"}, got)
	}, 20*time.Second, 250*time.Millisecond, "list finds the Machines running on kubevirt-2 by search attributes")

	var deprovisions [][]string
	for _, m := range machines {
		deprovisions = append(deprovisions, []string{"deprovision", ns + "/" + m.name, "--wait", "-o", "json"})
	}
	runs = st.starterAll(t, deprovisions)
	for i, m := range machines {
		require.Equal(t, 0, runs[i].code, "deprovision %s: %s", m.name, runs[i].stderr)
		o := decode[outcome[workflows.DeprovisionResult]](t, runs[i].stdout)
		assert.Equal(t, "Completed", o.Status)
		assert.Contains(t, o.Result.Deleted, fmt.Sprintf("VirtualMachine %s/%s on %s", ns, m.name, m.config))
		assert.Empty(t, o.Result.NotDeleted)

		desc, err := st.Temporal().DescribeWorkflow(t.Context(), workflows.DeprovisionWorkflowID(ns, m.name), "")
		require.NoError(t, err)
		assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.Status)
		err = st.Env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: m.name}, &v1alpha1.NetworkConfiguration{})
		assert.True(t, apierrors.IsNotFound(err), "NetworkConfiguration of %s deleted: %v", m.name, err)
	}
	for _, m := range machines {
		assert.Empty(t, st.remains(t, ns, m.name), "nothing of %s is left", m.name)
	}
}

// checkVM checks the VM's shape against the Machine, its class and the
// NetworkNamespace of the test's namespace.
func checkVM(t *testing.T, vm *kubevirtv1.VirtualMachine, machine string) {
	t.Helper()
	require.NotNil(t, vm, "VM of %s", machine)
	assert.Equal(t, names.ManagedLabels(machine), vm.Labels)
	assert.Equal(t, map[string]string{names.VMAnnotationPrefix + "owner": "e2e"}, vm.Annotations, "only vm.machineflow.io/ annotations pass")
	require.NotNil(t, vm.Spec.RunStrategy)
	assert.Equal(t, kubevirtv1.RunStrategyAlways, *vm.Spec.RunStrategy)
	spec := vm.Spec.Template.Spec
	assert.Equal(t, uint32(stack.ClassCores), spec.Domain.CPU.Cores)
	require.NotNil(t, spec.Domain.Memory.Guest)
	assert.True(t, spec.Domain.Memory.Guest.Equal(resource.MustParse(stack.ClassMemory)), "memory %s", spec.Domain.Memory.Guest)
	require.Len(t, spec.Networks, 1)
	require.NotNil(t, spec.Networks[0].Multus, "VLAN %d: a bridge network, not the pod network", stack.VLANID)
	assert.Equal(t, stack.NADName, spec.Networks[0].Multus.NetworkName)
	require.Len(t, spec.Domain.Devices.Interfaces, 1)
	assert.Regexp(t, `^02:12:`, spec.Domain.Devices.Interfaces[0].MacAddress)
	var claims []string
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims = append(claims, v.PersistentVolumeClaim.ClaimName)
		}
	}
	assert.Equal(t, []string{machine}, claims, "one boot disk, claim named after the Machine")
}

// TestBootFailure: a VM that cannot boot fails the Machine with the reason
// and compensation removes everything the run created, its cloud-init
// Secret included.
func TestBootFailure(t *testing.T) {
	st := need(t)
	ns := st.namespace(t, "e2e-bootfail")
	ci := newCloudInit("e2e-bootfail-Pa55w0rd")
	st.machine(t, ns, "broken", testenv.ClusterName(1), map[string]string{
		kubevirtsim.FailureAnnotation: string(kubevirtsim.CrashLoopBackOff),
	}, ci.apply)

	code, stdout, stderr := st.starter(t, "provision", ns+"/broken", "--wait")
	require.Equal(t, 1, code, "stdout: %s", stdout)
	assert.Regexp(t, `^error: workflow provision/e2e-bootfail/broken failed: VMBootFailed: .*CrashLoopBackOff.*\n$`, stderr)

	m := st.getMachine(t, ns, "broken")
	assert.Equal(t, v1alpha1.MachinePhaseFailed, m.Status.Phase)
	require.NotNil(t, m.Status.FailureReason)
	assert.Equal(t, contract.ErrTypeBootFailed, *m.Status.FailureReason)
	require.NotNil(t, m.Status.FailureMessage)
	assert.Contains(t, *m.Status.FailureMessage, "CrashLoopBackOff")
	assert.Empty(t, st.remains(t, ns, "broken"), "compensation left nothing on the clusters")
	st.requireNotInHistory(t, workflows.ProvisionWorkflowID(ns, "broken"), "cloud-init password of broken", ci.password)
	err := st.Env.Supervisor.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "broken"}, &v1alpha1.NetworkConfiguration{})
	assert.True(t, apierrors.IsNotFound(err), "the NetworkConfiguration was compensated: %v", err)
}

// TestTemporalCLIStart starts ProvisionMachine the way a person would with
// the plain Temporal CLI, and expects the worker to complete it.
func TestTemporalCLIStart(t *testing.T) {
	st := need(t)
	ns := st.namespace(t, "e2e-cli")
	st.machine(t, ns, "from-cli", testenv.ClusterName(2), nil)
	id := workflows.ProvisionWorkflowID(ns, "from-cli")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, st.temporalCLI, "workflow", "start",
		"--type", workflows.ProvisionMachineName,
		"--task-queue", workflows.DefaultTaskQueue,
		"--workflow-id", id,
		"--input", fmt.Sprintf(`{"namespace":%q,"name":"from-cli"}`, ns),
		"--address", st.TemporalAddress(),
	).CombinedOutput()
	require.NoError(t, err, "temporal workflow start: %s", out)

	var res workflows.ProvisionResult
	require.NoError(t, st.Temporal().GetWorkflow(ctx, id, "").Get(ctx, &res))
	assert.Equal(t, testenv.ClusterName(2), res.KubevirtConfig)
	assert.NotEmpty(t, res.IPAddresses)
	assert.Equal(t, v1alpha1.MachinePhaseRunning, st.getMachine(t, ns, "from-cli").Status.Phase)

	desc, err := st.Temporal().DescribeWorkflow(ctx, id, "")
	require.NoError(t, err)
	for key, want := range map[string]string{"MachineNamespace": ns, "MachineName": "from-cli", "KubevirtConfig": testenv.ClusterName(2), "MachinePhase": "Running"} {
		got, _ := desc.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(key))
		assert.Equal(t, want, got, "search attribute %s of a run started without any", key)
	}

	code, _, stderr := st.starter(t, "deprovision", ns+"/from-cli", "--wait")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, st.remains(t, ns, "from-cli"))
}

// TestWorkerRestartMidProvisioning stops the worker with SIGTERM while a
// VM boots, starts it again and expects the provisioning to complete with
// exactly one VM.
func TestWorkerRestartMidProvisioning(t *testing.T) {
	st := need(t)
	ns := st.namespace(t, "e2e-restart")
	config := testenv.ClusterName(1)
	st.machine(t, ns, "slow-boot", config, map[string]string{kubevirtsim.BootDelayAnnotation: "6s"})

	code, _, stderr := st.starter(t, "provision", ns+"/slow-boot")
	require.Equal(t, 0, code, stderr)
	require.Eventually(t, func() bool { return st.vm(t, config, ns, "slow-boot") != nil },
		30*time.Second, 100*time.Millisecond, "the VM is created and the worker waits for it to boot")

	stopped := time.Now()
	require.NoError(t, st.worker().Stop(stack.StopTimeout), "SIGTERM stops the worker in time, leaving nothing behind")
	assert.Equal(t, 0, st.worker().ExitCode(), "graceful shutdown exits 0")
	t.Logf("worker stopped %s after SIGTERM", time.Since(stopped).Round(10*time.Millisecond))
	desc, err := st.Temporal().DescribeWorkflow(t.Context(), workflows.ProvisionWorkflowID(ns, "slow-boot"), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.Status, "the worker stopped mid-provisioning")

	require.NoError(t, st.worker().Start(t.Context()), "restarting the worker")
	code, stdout, stderr := st.starter(t, "provision", ns+"/slow-boot", "--wait", "--timeout", "2m", "--poll-interval", "200ms", "-o", "json")
	require.Equal(t, 0, code, stderr)
	o := decode[outcome[workflows.ProvisionResult]](t, stdout)
	assert.Equal(t, "Completed", o.Status)
	assert.Contains(t, o.Steps, contract.WaitForVirtualMachineName, "the starter attached to the run and showed the step in progress")
	assert.Equal(t, v1alpha1.MachinePhaseRunning, st.getMachine(t, ns, "slow-boot").Status.Phase)

	vms := &kubevirtv1.VirtualMachineList{}
	vmis := &kubevirtv1.VirtualMachineInstanceList{}
	var total, totalVMIs int
	for _, c := range st.Env.Clusters {
		sel := client.MatchingLabels{names.SourceMachineLabel: "slow-boot"}
		require.NoError(t, c.Client.List(t.Context(), vms, client.InNamespace(ns), sel))
		require.NoError(t, c.Client.List(t.Context(), vmis, client.InNamespace(ns), sel))
		total += len(vms.Items)
		totalVMIs += len(vmis.Items)
	}
	assert.Equal(t, 1, total, "one VM for the Machine across all clusters")
	assert.Equal(t, 1, totalVMIs, "one VMI for the Machine across all clusters")
}

// TestHealthCheckSchedule creates the health-check Schedule with the
// starter, triggers it and expects every KubevirtConfig's status written,
// including an unreachable cluster's.
func TestHealthCheckSchedule(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	gone := "kubevirt-gone"
	addr, err := freeport.Address()
	require.NoError(t, err)
	require.NoError(t, st.Env.RegisterCluster(ctx, gone, unreachableKubeconfig(addr)))
	t.Cleanup(func() {
		err := st.Env.Supervisor.Client.Delete(context.Background(), &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: gone}})
		assert.NoError(t, client.IgnoreNotFound(err))
		st.starter(t, "schedule", "delete")
	})

	code, stdout, stderr := st.starter(t, "schedule", "health-check", "--every", "1h")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "schedule cluster-health-check created")
	code, stdout, stderr = st.starter(t, "schedule", "trigger")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "triggered")

	want := map[string]string{testenv.ClusterName(1): "Ready", testenv.ClusterName(2): "Ready", gone: "NotReady"}
	require.Eventually(t, func() bool {
		for name, phase := range want {
			kvc := &v1alpha1.KubevirtConfig{}
			if err := st.Env.Supervisor.Client.Get(ctx, client.ObjectKey{Name: name}, kvc); err != nil || kvc.Status.Phase != phase {
				return false
			}
		}
		return true
	}, time.Minute, 250*time.Millisecond, "the triggered check wrote every KubevirtConfig's status")
	kvc := &v1alpha1.KubevirtConfig{}
	require.NoError(t, st.Env.Supervisor.Client.Get(ctx, client.ObjectKey{Name: gone}, kvc))
	assert.Equal(t, "Unhealthy", kvc.Status.Status)
	assert.Contains(t, kvc.Status.Message, gone, "the reason names the config")

	code, stdout, stderr = st.starter(t, "schedule", "show", "-o", "json")
	require.Equal(t, 0, code, stderr)
	show := decode[struct {
		Every      []string
		Overlap    string
		RecentRuns []struct{ WorkflowID string }
	}](t, stdout)
	assert.Equal(t, []string{"1h0m0s"}, show.Every)
	assert.Equal(t, "Skip", show.Overlap)
	require.Len(t, show.RecentRuns, 1, "the triggered run")
	assert.True(t, strings.HasPrefix(show.RecentRuns[0].WorkflowID, workflows.HealthCheckScheduleID))
}

// TestMetrics reads the worker's /metrics after the runs above: the
// Temporal SDK's series and the ClientManager decorator's are there.
func TestMetrics(t *testing.T) {
	st := need(t)
	// A check of its own, so the ClientManager has been called by the
	// current worker process even when this test runs alone.
	code, _, stderr := st.starter(t, "health-check", "--wait")
	require.Equal(t, 0, code, stderr)

	want := map[string]*regexp.Regexp{
		"the SDK counted the completed check": regexp.MustCompile(`(?m)^temporal_workflow_completed\w*\{[^}]*workflow_type="ClusterHealthCheck"[^}]*\} [1-9]`),
		"SDK request latency":                 regexp.MustCompile(`(?m)^temporal_request_latency_seconds_bucket\{`),
		"ClientManager calls per method and config": regexp.MustCompile(
			`(?m)^machineflow_clientmanager_calls_total\{config="kubevirt-1",method="ValidateConnection"\} [1-9]`),
		"ClientManager latency": regexp.MustCompile(`(?m)^machineflow_clientmanager_call_duration_seconds_bucket\{`),
	}
	var text string
	missing := func() []string {
		text = scrape(t, "http://"+st.worker().MetricsAddress()+"/metrics")
		var out []string
		for what, re := range want {
			if !re.MatchString(text) {
				out = append(out, what)
			}
		}
		return out
	}
	// The SDK's series are reported into the registry every second.
	deadline := time.Now().Add(10 * time.Second)
	for m := missing(); len(m) > 0; m = missing() {
		if time.Now().After(deadline) {
			t.Fatalf("series missing from /metrics after 10s: %v", m)
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, c := range st.Env.Clusters {
		assert.NotContains(t, text, string(c.Kubeconfig), "no kubeconfig in metrics")
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// TestStarterErrors: the starter binary's failures are one line each with
// the documented exit code, and no stack trace.
func TestStarterErrors(t *testing.T) {
	st := need(t)
	closed, err := freeport.Address()
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown Machine", nil, []string{"status", "e2e-lifecycle/nobody"}, 3, "error: no workflow for Machine e2e-lifecycle/nobody"},
		{"malformed Machine", nil, []string{"provision", "nobody"}, 2, `error: Machine "nobody": want NAMESPACE/NAME`},
		{"bad flag", nil, []string{"list", "--phase", "Booting"}, 2, `error: --phase "Booting"`},
		{"unreachable Temporal", []string{"TEMPORAL_ADDRESS=" + closed, "TEMPORAL_CONNECT_TIMEOUT=5s"}, []string{"list"}, 4, "error: connecting to Temporal at " + closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := st.starterWithEnv(t, tc.env, tc.args...)
			assert.Equal(t, tc.code, code, stderr)
			assert.Empty(t, stdout)
			assert.True(t, strings.HasPrefix(stderr, tc.want), stderr)
			assert.LessOrEqual(t, strings.Count(stderr, "\n"), 2, "one error line, plus a usage hint for usage errors: %s", stderr)
			assert.NotContains(t, stderr, "goroutine ")
		})
	}
}

// unreachableKubeconfig points at a port nothing listens on.
func unreachableKubeconfig(addr string) []byte {
	return []byte(`apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster:
    server: https://` + addr + `
    insecure-skip-tls-verify: true
contexts:
- name: gone
  context: {cluster: gone, user: gone}
current-context: gone
users:
- name: gone
  user: {token: not-a-real-token}
`)
}
