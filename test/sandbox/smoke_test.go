package sandbox

import (
	"context"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/runner"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
	"github.com/machineflow/machineflow/internal/vmplan"
	"github.com/machineflow/machineflow/workflows"
)

const (
	machineNamespace = "default"
	machineName      = "demo-small" // examples/machine-small.yaml
	readyLine        = "machineflow is running"
)

func TestMakeRunSmoke(t *testing.T) {
	root, bin := prepare(t)
	dir := t.TempDir()
	temporal := testutil.FreeAddress(t)

	// First run: one example Machine to Running.
	example := filepath.Join(root, "examples", "machine-small.yaml")
	// And one with several KB of cloud-init, more than KubeVirt takes inline.
	cloudInit := filepath.Join(root, "examples", "machine-cloud-init.yaml")
	inline := filepath.Join(root, "examples", "machine-cloud-init-inline.yaml")
	first := startRun(t, root, bin, dir, temporal, strings.Join([]string{example, cloudInit, inline}, ","))
	first.waitOutput(t, readyLine, 5*time.Minute)
	t.Logf("first start: ready after %s", first.readyAfter)

	sup := supervisorClient(t, filepath.Join(dir, "supervisor.kubeconfig"))
	machine := &v1alpha1.Machine{}
	require.Eventually(t, func() bool {
		err := sup.Get(t.Context(), crclient.ObjectKey{Namespace: machineNamespace, Name: machineName}, machine)
		return err == nil && machine.Status.Phase == "Running"
	}, 3*time.Minute, 500*time.Millisecond, "Machine %s/%s Running; last status %+v\n%s", machineNamespace, machineName, machine.Status, first.out)
	assert.Equal(t, testenv.ClusterName(1), machine.Annotations[names.PlacementAnnotation], "placed on DEFAULT_KUBEVIRT_CONFIG")

	kv := supervisorClient(t, filepath.Join(dir, testenv.ClusterName(1)+".kubeconfig"))
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, kv.Get(t.Context(), crclient.ObjectKey{Namespace: machineNamespace, Name: machineName}, vm))
	assert.Equal(t, names.ManagedByValue, vm.Labels[names.ManagedByLabel])
	require.NoError(t, kubevirtadmission.Probe(t.Context(), kv), "KubeVirt's admission judges the sandbox's VMs")

	for _, name := range []string{"demo-cloud-init", "demo-cloud-init-inline"} {
		requireCloudInitInSecret(t, sup, kv, name)
	}

	kvc := &v1alpha1.KubevirtConfig{}
	require.NoError(t, sup.Get(t.Context(), crclient.ObjectKey{Name: testenv.ClusterName(1)}, kvc))
	provider := registeredProvider(t, sup, kvc, first, "Created")

	tc := temporalClient(t, temporal)
	provisionID := workflows.ProvisionWorkflowID(machineNamespace, machineName)
	var provisionRun string
	require.Eventually(t, func() bool {
		d, err := tc.DescribeWorkflow(t.Context(), provisionID, "")
		if err != nil || d.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return false
		}
		provisionRun = d.WorkflowExecution.RunID
		return true
	}, time.Minute, 500*time.Millisecond, "workflow %s completed", provisionID)
	_, err := tc.ScheduleClient().GetHandle(t.Context(), workflows.HealthCheckScheduleID).Describe(t.Context())
	require.NoError(t, err, "the health-check schedule exists")
	tc.Close()

	first.interruptAndCheck(t)
	assert.NoFileExists(t, filepath.Join(dir, "supervisor.kubeconfig"), "the sandbox removes its kubeconfigs")
	assert.FileExists(t, filepath.Join(dir, "temporal.db"))

	// Second run on the same directory, applying the same example again:
	// Temporal's history and the clusters' objects are still there, and
	// neither the apply nor the controller provisions the Machine again.
	second := startRun(t, root, bin, dir, temporal, example)
	second.waitOutput(t, readyLine, 5*time.Minute)
	t.Logf("second start: ready after %s", second.readyAfter)
	// New certificates and ports: the kubeconfig files are rewritten.
	sup = supervisorClient(t, filepath.Join(dir, "supervisor.kubeconfig"))
	kv = supervisorClient(t, filepath.Join(dir, testenv.ClusterName(1)+".kubeconfig"))
	again := &v1alpha1.Machine{}
	require.NoError(t, sup.Get(t.Context(), crclient.ObjectKeyFromObject(machine), again), "the Machine survives a restart")
	assert.Equal(t, machine.UID, again.UID, "the same Machine, not a new one from the example")
	assert.Equal(t, v1alpha1.MachinePhaseRunning, again.Status.Phase)
	vmAgain := &kubevirtv1.VirtualMachine{}
	require.NoError(t, kv.Get(t.Context(), crclient.ObjectKeyFromObject(vm), vmAgain), "the VM survives a restart")
	assert.Equal(t, vm.UID, vmAgain.UID)
	kvcAgain := &v1alpha1.KubevirtConfig{}
	require.NoError(t, sup.Get(t.Context(), crclient.ObjectKeyFromObject(kvc), kvcAgain), "the KubevirtConfig survives a restart")
	assert.Equal(t, kvc.UID, kvcAgain.UID)
	assert.Equal(t, provider.UID, registeredProvider(t, sup, kvcAgain, second, "Exists").UID, "the MachineProvider is kept, not made again")

	tc = temporalClient(t, temporal)
	d, err := tc.DescribeWorkflow(t.Context(), provisionID, "")
	require.NoError(t, err, "workflow history survives a restart")
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.Status)
	assert.Equal(t, provisionRun, d.WorkflowExecution.RunID, "the Machine was provisioned once")
	tc.Close()
	second.interruptAndCheck(t)
}

// BenchmarkRestart measures what a person waits for on a second `make
// run` once the binaries are built: from starting bin/run on an existing run
// directory to its "machineflow is running" line (Temporal, the sandbox's
// API servers, worker, controller, schedule). Stopping is not timed.
func BenchmarkRestart(b *testing.B) {
	root, bin := prepare(b)
	dir := b.TempDir()
	temporal := testutil.FreeAddress(b)
	// The first start creates Temporal's database; restarts reuse it.
	first := startRun(b, root, bin, dir, temporal, "")
	first.waitOutput(b, readyLine, 5*time.Minute)
	first.interruptAndCheck(b)

	b.ResetTimer()
	for range b.N {
		r := startRun(b, root, bin, dir, temporal, "")
		r.waitOutput(b, readyLine, 5*time.Minute)
		b.StopTimer()
		r.interruptAndCheck(b)
		b.StartTimer()
	}
}

// prepare skips under -short and builds the binaries.
func prepare(t testing.TB) (root, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("smoke test of make run: needs ./bin (make tools) and builds the binaries; skipped with -short")
	}
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	return root, buildBinaries(t, root)
}

// buildBinaries builds what `make run` builds into a temporary directory,
// so that the test neither needs nor changes ./bin's machineflow binaries.
func buildBinaries(t testing.TB, root string) string {
	t.Helper()
	bin := t.TempDir()
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, c := range []string{"worker", "controller", "starter", "sandbox", "run"} {
		args = append(args, "./cmd/"+c)
	}
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s\n%s", strings.Join(args, " "), out)
	return bin
}

type run struct {
	cmd        *exec.Cmd
	out        *testutil.SyncBuffer
	started    time.Time
	readyAfter time.Duration
	done       chan struct{}
	err        error
	// tree is every process below the runner, taken once it is ready.
	tree []childproc.Proc
}

// startRun starts bin/run with the Temporal frontend on the given address.
func startRun(t testing.TB, root, bin, dir, temporal, examples string) *run {
	t.Helper()
	r := &run{out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	_, port, err := net.SplitHostPort(temporal)
	require.NoError(t, err)
	r.cmd = exec.Command(filepath.Join(bin, "run"),
		"-dir", dir, "-bin", bin, "-temporal-cli", filepath.Join(root, "bin", "temporal"),
		"-temporal-port", port, "-headless",
		"-examples", examples, "-boot-delay", "1s")
	r.cmd.Dir = root
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	// If the test binary dies, the runner stops everything.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	r.started = time.Now()
	require.NoError(t, r.cmd.Start())
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			<-r.done
		}
		if t.Failed() {
			t.Logf("output of bin/run:\n%s", r.out)
		}
	})
	return r
}

// waitOutput waits for a line of the runner, failing early if it exits, and
// then records the process tree.
func (r *run) waitOutput(t testing.TB, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(r.out.String(), want) {
		select {
		case <-r.done:
			t.Fatalf("bin/run exited (%v) before printing %q", r.err, want)
		case <-deadline:
			t.Fatalf("bin/run did not print %q within %s", want, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.readyAfter = time.Since(r.started).Round(100 * time.Millisecond)
	var err error
	r.tree, err = childproc.Descendants(r.cmd.Process.Pid)
	require.NoError(t, err)
	var comms []string
	for _, p := range r.tree {
		comms = append(comms, p.Comm)
	}
	for _, want := range []string{"temporal", "sandbox", "etcd", "kube-apiserver", "worker", "controller"} {
		assert.Contains(t, comms, want, "bin/run's process tree")
	}
}

// interruptAndCheck is Ctrl-C: SIGINT to the runner, which must exit 0
// having stopped every process it started.
func (r *run) interruptAndCheck(t testing.TB) {
	t.Helper()
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-r.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("bin/run did not stop within 3 minutes of SIGINT")
	}
	require.NoError(t, r.err, "bin/run exits 0 after SIGINT")
	assert.NotContains(t, r.out.String(), "left processes behind")
	assert.Contains(t, r.out.String(), "everything stopped")
	for _, p := range r.tree {
		assert.False(t, p.Alive(), "%s still runs after bin/run exited", p)
	}
}

// registeredProvider waits for the worker's start-up registration
// (NAME_MACHINE_PROVIDER=kubevirt-1, VITISTACK_NAME=sandbox) to log the
// outcome, and checks the MachineProvider it made from kvc in the
// sandbox's Vitistack.
func registeredProvider(t *testing.T, sup crclient.Client, kvc *v1alpha1.KubevirtConfig, r *run, outcome string) *v1alpha1.MachineProvider {
	t.Helper()
	logged := regexp.MustCompile(`(?m)^worker +\| .*msg="MachineProvider registered".* machineProvider=` + regexp.QuoteMeta(kvc.Name) + ` .*outcome=` + outcome + `\b`)
	require.Eventually(t, func() bool { return logged.MatchString(r.out.String()) }, time.Minute, 200*time.Millisecond,
		"the worker logs its MachineProvider registration (%s)", outcome)
	vs := &v1alpha1.Vitistack{}
	require.NoError(t, sup.Get(t.Context(), crclient.ObjectKey{Name: runner.SandboxVitistack}, vs))
	provider := &v1alpha1.MachineProvider{}
	require.NoError(t, sup.Get(t.Context(), crclient.ObjectKey{Name: kvc.Name}, provider), "MachineProvider %s", kvc.Name)
	assert.Equal(t, string(v1alpha1.MachineProviderTypeKubevirt), provider.Spec.ProviderType)
	assert.Equal(t, vs.Spec.Region, provider.Spec.Region, "the region of Vitistack %s", vs.Name)
	assert.Equal(t, names.ManagedByValue, provider.Labels[names.ManagedByLabel])
	if assert.NotNil(t, provider.Spec.Authentication.CredentialsRef) {
		assert.Equal(t, kvc.Spec.KubeconfigSecretRef, provider.Spec.Authentication.CredentialsRef.SecretName,
			"credentials point at the KubevirtConfig's kubeconfig Secret")
	}
	return provider
}

func supervisorClient(t *testing.T, kubeconfig string) crclient.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	s, err := scheme.New()
	require.NoError(t, err)
	c, err := crclient.New(cfg, crclient.Options{Scheme: s})
	require.NoError(t, err)
	return c
}

func temporalClient(t *testing.T, address string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: address,
		Logger:   tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	return c
}

// requireCloudInitInSecret: Machine name goes Running, with several KB of
// cloud-init in a Secret next to its VM, and none in the VM.
func requireCloudInitInSecret(t *testing.T, sup, kv crclient.Client, name string) {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.Eventually(t, func() bool {
		err := sup.Get(t.Context(), crclient.ObjectKey{Namespace: machineNamespace, Name: name}, m)
		return err == nil && m.Status.Phase == v1alpha1.MachinePhaseRunning
	}, 3*time.Minute, 500*time.Millisecond, "Machine %s Running; last status %+v", name, m.Status)
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, kv.Get(t.Context(), crclient.ObjectKey{Namespace: machineNamespace, Name: name}, vm))
	secret := testutil.RequireCloudInitInSecret(t, kv, vm)
	assert.Greater(t, len(secret.Data[vmplan.CloudInitUserDataKey]), 2048, "%s: more than KubeVirt takes inline", name)
}
