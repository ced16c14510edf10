package workflows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/secretscan"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
)

// recordEnv switches TestRecordHistories on (`make histories`). Recording
// rewrites checked-in files, so plain `go test` never does it.
const recordEnv = "MACHINEFLOW_RECORD_HISTORIES"

const (
	recordNamespace = "default"
	recordClass     = "small"
	recordNetwork   = "vlan-100"
	recordVLAN      = 100
)

// recorder runs the real workflows and activities on the Temporal dev
// server against the harness's API servers and the KubeVirt simulator.
type recorder struct {
	c       client.Client
	env     *testenv.Env
	clients *clients.KubevirtClientManager
	starter Starter
	// histories are written only once every path has been recorded and
	// checked, so a failed run leaves testdata/ as it was.
	histories []recorded
}

type recorded struct {
	file    string
	history *historypb.History
}

// TestRecordHistories records one history per main path of the workflows
// into testdata/ and replays them all. See doc.go, "Changing workflow
// code", for when to run it.
func TestRecordHistories(t *testing.T) {
	if os.Getenv(recordEnv) != "1" {
		t.Skipf("records the replay histories into %s/ when %s=1 (make histories)", historiesDir, recordEnv)
	}
	r := newRecorder(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// Order matters: the unreachable-cluster path makes kubevirt-2
	// unreachable for good, which the health check then reports.
	steps := []struct {
		name string
		fn   func(context.Context, *testing.T)
	}{
		{"provision success, then deprovision", r.provisionAndDeprovision},
		{"ISO ejected from a Running Machine", r.ejectISO},
		{"provision with a boot failure", r.bootFailure},
		{"provision cancelled mid-boot", r.cancelledMidBoot},
		{"deprovision of a never provisioned Machine", r.neverProvisioned},
		{"deprovision cancels an open provision", r.deprovisionCancelsProvision},
		{"deprovision with an unreachable cluster, forced by update", r.unreachableForced},
		{"health check with a healthy and an unhealthy cluster", r.healthCheck},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.fn(ctx, t) }) {
			t.FailNow()
		}
	}
	r.write(t)
	replayAll(t, historiesDir)
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	env := testenv.New(t, testenv.Options{Clusters: 2})
	srv := devtemporal.New(t)
	c := srv.Client()

	// With two clusters, a Machine without a placement annotation goes to
	// the default config (DEFAULT_KUBEVIRT_CONFIG), as in production.
	cm := clients.NewKubevirtClientManager(env.Supervisor.Client, env.Scheme, env.ConfigNamespace,
		clients.WithDefaultConfig(testenv.ClusterName(1)), clients.WithRequestTimeout(3*time.Second))
	settings := activities.DefaultSettings()
	settings.PollInitial, settings.PollMax = 50*time.Millisecond, 200*time.Millisecond
	acts, err := activities.New(activities.Deps{Clients: cm, Supervisor: env.Supervisor.Client, Settings: settings})
	require.NoError(t, err)

	simulated.Start(t, env, kubevirtsim.Options{
		AddressPool: "10.101.0.0/16", BootDelay: 300 * time.Millisecond, TerminationDelay: 100 * time.Millisecond, PollInterval: 50 * time.Millisecond,
	})

	w := worker.New(c, DefaultTaskQueue, worker.Options{})
	Register(w, &ControlActivities{Client: c, MaxPollInterval: 200 * time.Millisecond})
	w.RegisterActivity(acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	r := &recorder{c: c, env: env, clients: cm, starter: Starter{Client: c}}
	r.seed(t)
	return r
}

// seed creates what an operator sets up before Machines arrive: a
// MachineClass and a VLAN NetworkNamespace, so that provisioning creates
// a NetworkAttachmentDefinition and a NetworkConfiguration too.
func (r *recorder) seed(t *testing.T) {
	t.Helper()
	sup := r.env.Supervisor.Client
	class := &v1alpha1.MachineClass{ObjectMeta: metav1.ObjectMeta{Name: recordClass}, Spec: v1alpha1.MachineClassSpec{
		Enabled: true, Category: "standard", MachineProviders: []v1alpha1.MachineProviderType{names.ProviderKubevirt},
		CPU:    v1alpha1.MachineClassCPUSpec{Cores: 1, Sockets: 1, Threads: 1},
		Memory: v1alpha1.MachineClassMemorySpec{Quantity: resource.MustParse("2Gi")},
		GPU:    v1alpha1.MachineClassGPUSpec{Cores: 1}, // required by the CRD, unused
	}}
	require.NoError(t, sup.Create(t.Context(), class))
	nn := &v1alpha1.NetworkNamespace{ObjectMeta: metav1.ObjectMeta{Namespace: recordNamespace, Name: recordNetwork},
		Spec: v1alpha1.NetworkNamespaceSpec{DatacenterIdentifier: "dc1", SupervisorIdentifier: "supervisor",
			IPAllocation: &v1alpha1.NetworkNamespaceIPAllocation{Type: "dhcp"}}}
	require.NoError(t, sup.Create(t.Context(), nn))
	nn.Status.VlanID = recordVLAN
	require.NoError(t, sup.Status().Update(t.Context(), nn))
}

// machine creates a Machine on the supervisor; annotations reach the VM
// (and so the simulator) through names.VMAnnotationPrefix, and mutate
// changes the rest before it is created.
func (r *recorder) machine(t *testing.T, name string, annotations map[string]string, mutate ...func(*v1alpha1.Machine)) {
	t.Helper()
	m := &v1alpha1.Machine{
		ObjectMeta: metav1.ObjectMeta{Namespace: recordNamespace, Name: name, Annotations: annotations},
		Spec: v1alpha1.MachineSpec{
			Provider:     v1alpha1.MachineProviderType(names.ProviderKubevirt),
			MachineClass: recordClass,
			Disks:        []v1alpha1.MachineSpecDisk{{SizeGB: 20, Boot: true}},
			Network:      v1alpha1.MachineNetwork{NetworkNamespaceName: recordNetwork},
		},
	}
	for _, f := range mutate {
		f(m)
	}
	require.NoError(t, r.env.Supervisor.Client.Create(t.Context(), m))
}

func (r *recorder) getMachine(t *testing.T, name string) *v1alpha1.Machine {
	t.Helper()
	m := &v1alpha1.Machine{}
	require.NoError(t, r.env.Supervisor.Client.Get(t.Context(), ctrlclient.ObjectKey{Namespace: recordNamespace, Name: name}, m))
	return m
}

// leftovers names what is left of a Machine on a cluster
// (testenv.Cluster.MachineLeftovers).
func (r *recorder) leftovers(t *testing.T, cluster, machine string) []string {
	t.Helper()
	left, err := r.env.Cluster(cluster).MachineLeftovers(t.Context(), recordNamespace, machine)
	require.NoError(t, err)
	return left
}

// keep stores a closed run's history under file (without .json).
func (r *recorder) keep(t *testing.T, file string, run client.WorkflowRun) *historypb.History {
	t.Helper()
	h := historyOf(t, r.c, run)
	for _, e := range h.Events {
		require.NotEqual(t, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, e.GetEventType(),
			"%s: a workflow task failed (event %d): the history would not show the path cleanly", file, e.GetEventId())
	}
	t.Logf("%s: %d events", file, len(h.Events))
	r.histories = append(r.histories, recorded{file: file, history: h})
	return h
}

// awaitPendingActivity waits until the run of id has a pending activity of
// the given type for which ok holds.
func (r *recorder) awaitPendingActivity(ctx context.Context, t *testing.T, id, activityType string, ok func(*workflowpb.PendingActivityInfo) bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		desc, err := r.c.DescribeWorkflow(ctx, id, "")
		require.NoError(t, err, "describe %s", id)
		for _, pa := range desc.RawResponse.GetPendingActivities() {
			if pa.GetActivityType().GetName() == activityType && ok(pa) {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no pending %s in the expected state: %v", id, activityType, ctx.Err())
		case <-tick.C:
		}
	}
}

func historyHasEvent(h *historypb.History, typ enumspb.EventType) bool {
	for _, e := range h.Events {
		if e.GetEventType() == typ {
			return true
		}
	}
	return false
}

// scheduledActivities lists the activity types a history scheduled, in order.
func scheduledActivities(h *historypb.History) []string {
	var out []string
	for _, e := range h.Events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, a.GetActivityType().GetName())
		}
	}
	return out
}

func (r *recorder) provisionAndDeprovision(ctx context.Context, t *testing.T) {
	const name = "vm-ok"
	cluster := testenv.ClusterName(1)
	r.machine(t, name, nil)

	run, err := r.starter.StartProvision(ctx, ProvisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	var res ProvisionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, cluster, res.KubevirtConfig, "placed by the default config")
	require.Equal(t, name, res.VMName)
	require.NotEmpty(t, res.IPAddresses)
	require.True(t, strings.HasPrefix(res.IPAddresses[0], "10.101."), "address from %s's pool: %v", cluster, res.IPAddresses)
	m := r.getMachine(t, name)
	require.Equal(t, v1alpha1.MachinePhaseRunning, m.Status.Phase)
	require.Equal(t, cluster, m.Annotations[names.PlacementAnnotation])
	on := " on " + cluster
	require.ElementsMatch(t, []string{"VirtualMachine default/" + name + on, "VirtualMachineInstance default/" + name + on,
		"PersistentVolumeClaim default/" + name + on, "NetworkAttachmentDefinition default/vlan100" + on},
		r.leftovers(t, cluster, name))
	r.keep(t, "provision-success", run)

	drun, err := r.starter.StartDeprovision(ctx, DeprovisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	var dres DeprovisionResult
	require.NoError(t, drun.Get(ctx, &dres))
	require.Equal(t, cluster, dres.KubevirtConfig)
	require.False(t, dres.Forced)
	require.Empty(t, dres.NotDeleted)
	require.Contains(t, dres.Deleted, fmt.Sprintf("VirtualMachine %s/%s on %s", recordNamespace, name, cluster))
	require.Empty(t, r.leftovers(t, cluster, name))
	m = r.getMachine(t, name)
	require.Equal(t, v1alpha1.MachinePhaseTerminating, m.Status.Phase)
	require.Equal(t, cluster, m.Annotations[names.PlacementAnnotation], "the placement stays for audit")
	r.keep(t, "deprovision-provisioned", drun)
}

// ejectISO provisions a Machine booted from an ISO, annotates it
// cdrom-ejected as its installer would, and runs EjectISO. The ISO's size
// comes from a HEAD request, answered here; nothing imports the ISO
// (the harness has no CDI), so the VM spec is what changes. The image URL
// carries a password and a signed query, none of which may reach the
// provision's history: the VM gets the URL from the Machine.
func (r *recorder) ejectISO(ctx context.Context, t *testing.T) {
	const name = "vm-iso"
	const password, signature, path = "isoPa55w0rd", "sig-7f3a9c", "/signed-installer.iso"
	cluster := testenv.ClusterName(1)
	iso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(700<<20))
	}))
	defer iso.Close()
	imageURL := strings.Replace(iso.URL, "://", "://installer:"+password+"@", 1) + path + "?X-Amz-Signature=" + signature
	r.machine(t, name, map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume, names.BootSourceTypeAnnotation: "http"},
		func(m *v1alpha1.Machine) { m.Spec.OS.ImageID = imageURL })
	prov, err := r.starter.StartProvision(ctx, ProvisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	require.NoError(t, prov.Get(ctx, nil))
	vmKey := ctrlclient.ObjectKey{Namespace: recordNamespace, Name: name}
	before := r.vm(t, cluster, vmKey)
	require.Equal(t, []string{"disk cdrom-iso", "volume cdrom-iso", "dataVolumeTemplate " + name + "-iso"}, isoParts(before),
		"the provision booted %s from the ISO", name)
	require.Equal(t, imageURL, before.Spec.DataVolumeTemplates[0].Spec.Source.HTTP.URL)
	ph := historyOf(t, r.c, prov)
	require.Contains(t, scheduledActivities(ph), contract.EnsureVirtualMachineName)
	urlParts := &secretscan.Set{}
	urlParts.Add("the ISO URL's password", []byte(password))
	urlParts.Add("the ISO URL's signature", []byte(signature))
	urlParts.Add("the ISO URL's path", []byte(path))
	found, err := urlParts.ScanHistory("the provision's history", ph)
	require.NoError(t, err)
	require.Empty(t, found, "the provision's history carries the image URL")

	m := r.getMachine(t, name)
	patch := ctrlclient.MergeFrom(m.DeepCopy())
	m.Annotations[names.CDROMEjectedAnnotation] = "true"
	require.NoError(t, r.env.Supervisor.Client.Patch(ctx, m, patch))

	run, err := r.starter.StartEjectISO(ctx, EjectISOInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	var res EjectISOResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, EjectISOResult{KubevirtConfig: cluster,
		Deleted: []string{"ISO cdrom-iso of VirtualMachine " + recordNamespace + "/" + name + " on " + cluster}}, res)
	after := r.vm(t, cluster, vmKey)
	require.Empty(t, isoParts(after), "the ISO is gone from the VM spec")
	require.Len(t, after.Spec.Template.Spec.Domain.Devices.Disks, len(before.Spec.Template.Spec.Domain.Devices.Disks)-1,
		"every other disk is kept")
	require.Equal(t, "true", r.getMachine(t, name).Annotations[names.ISOCleanedUpAnnotation])
	h := r.keep(t, "ejectiso-success", run)
	require.Equal(t, []string{contract.LookupPlacementName, contract.CleanupISOName}, scheduledActivities(h))
}

func (r *recorder) vm(t *testing.T, cluster string, key ctrlclient.ObjectKey) *kubevirtv1.VirtualMachine {
	t.Helper()
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, r.env.Cluster(cluster).Client.Get(t.Context(), key, vm))
	return vm
}

// isoParts names what of an installation ISO a VM spec holds: the
// cdrom-iso disk and volume and the <vm>-iso DataVolumeTemplate.
func isoParts(vm *kubevirtv1.VirtualMachine) []string {
	var out []string
	for _, d := range vm.Spec.Template.Spec.Domain.Devices.Disks {
		if d.Name == "cdrom-iso" {
			out = append(out, "disk "+d.Name)
		}
	}
	for _, v := range vm.Spec.Template.Spec.Volumes {
		if v.Name == "cdrom-iso" {
			out = append(out, "volume "+v.Name)
		}
	}
	for _, dvt := range vm.Spec.DataVolumeTemplates {
		if dvt.Name == vm.Name+"-iso" {
			out = append(out, "dataVolumeTemplate "+dvt.Name)
		}
	}
	return out
}

func (r *recorder) bootFailure(ctx context.Context, t *testing.T) {
	const name = "vm-crash"
	cluster := testenv.ClusterName(1)
	r.machine(t, name, map[string]string{kubevirtsim.FailureAnnotation: string(kubevirtsim.CrashLoopBackOff)})

	run, err := r.starter.StartProvision(ctx, ProvisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "provision ended with %v", err)
	require.Equal(t, contract.ErrTypeBootFailed, appErr.Type())
	m := r.getMachine(t, name)
	require.Equal(t, v1alpha1.MachinePhaseFailed, m.Status.Phase)
	require.NotNil(t, m.Status.FailureReason)
	require.Equal(t, contract.ErrTypeBootFailed, *m.Status.FailureReason)
	require.Empty(t, r.leftovers(t, cluster, name), "compensation removed what the run created")
	h := r.keep(t, "provision-boot-failure", run)
	require.Contains(t, scheduledActivities(h), contract.DeleteVirtualMachineName)
}

// bootingProvision provisions a Machine whose VM never becomes ready and
// returns once the run waits for it, with its objects on the cluster.
func (r *recorder) bootingProvision(ctx context.Context, t *testing.T, name string) client.WorkflowRun {
	t.Helper()
	r.machine(t, name, map[string]string{kubevirtsim.NeverReadyAnnotation: "true"})
	run, err := r.starter.StartProvision(ctx, ProvisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	r.awaitPendingActivity(ctx, t, run.GetID(), contract.WaitForVirtualMachineName, func(pa *workflowpb.PendingActivityInfo) bool {
		return pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED
	})
	require.NotEmpty(t, r.leftovers(t, testenv.ClusterName(1), name), "the run has created objects")
	return run
}

func (r *recorder) cancelledMidBoot(ctx context.Context, t *testing.T) {
	const name = "vm-cancel"
	cluster := testenv.ClusterName(1)
	run := r.bootingProvision(ctx, t, name)
	require.NoError(t, r.c.CancelWorkflow(ctx, run.GetID(), run.GetRunID()))
	err := run.Get(ctx, nil)
	var canceled *temporal.CanceledError
	require.True(t, errors.As(err, &canceled), "provision ended with %v", err)
	m := r.getMachine(t, name)
	require.Equal(t, v1alpha1.MachinePhasePending, m.Status.Phase)
	require.Nil(t, m.Status.FailureReason)
	require.Empty(t, r.leftovers(t, cluster, name), "compensation removed what the run created")
	h := r.keep(t, "provision-cancelled-mid-boot", run)
	require.True(t, historyHasEvent(h, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED))
	require.Contains(t, scheduledActivities(h), contract.DeleteVirtualMachineName)
}

func (r *recorder) neverProvisioned(ctx context.Context, t *testing.T) {
	const name = "vm-never"
	r.machine(t, name, nil)

	run, err := r.starter.StartDeprovision(ctx, DeprovisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	var res DeprovisionResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, DeprovisionResult{}, res, "nothing to delete")
	m := r.getMachine(t, name)
	require.Empty(t, m.Annotations[names.PlacementAnnotation])
	require.Empty(t, m.Status.Phase, "a Machine that was never placed is not touched")
	h := r.keep(t, "deprovision-never-provisioned", run)
	require.Equal(t, []string{contract.LookupPlacementName}, scheduledActivities(h))
}

func (r *recorder) deprovisionCancelsProvision(ctx context.Context, t *testing.T) {
	const name = "vm-open"
	cluster := testenv.ClusterName(1)
	prov := r.bootingProvision(ctx, t, name)
	run, err := r.starter.StartDeprovision(ctx, DeprovisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	var res DeprovisionResult
	require.NoError(t, run.Get(ctx, &res))
	err = prov.Get(ctx, nil)
	var canceled *temporal.CanceledError
	require.True(t, errors.As(err, &canceled), "provision ended with %v", err)
	require.Equal(t, cluster, res.KubevirtConfig)
	require.Empty(t, r.leftovers(t, cluster, name))
	require.Equal(t, v1alpha1.MachinePhaseTerminating, r.getMachine(t, name).Status.Phase)
	h := r.keep(t, "deprovision-cancels-open-provision", run)
	require.True(t, historyHasEvent(h, enumspb.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED))
	acts := scheduledActivities(h)
	require.NotEmpty(t, acts)
	require.Equal(t, AwaitWorkflowClosedName, acts[0], "the deprovision waited for the provision to close first")
}

// unreachableForced provisions on kubevirt-2, then rotates its kubeconfig
// Secret to an address nothing listens on: the cluster is gone for
// machineflow, and stays gone for the health check that follows.
func (r *recorder) unreachableForced(ctx context.Context, t *testing.T) {
	const name = "vm-lost"
	cluster := testenv.ClusterName(2)
	r.machine(t, name, nil)
	prov, err := r.starter.StartProvision(ctx, ProvisionInput{Namespace: recordNamespace, Name: name, KubevirtConfig: cluster})
	require.NoError(t, err)
	require.NoError(t, prov.Get(ctx, nil))

	require.NoError(t, r.env.RegisterCluster(ctx, cluster, deadKubeconfig(t, r.env.Cluster(cluster).Kubeconfig)))
	r.clients.InvalidateClient(cluster)

	run, err := r.starter.StartDeprovision(ctx, DeprovisionInput{Namespace: recordNamespace, Name: name})
	require.NoError(t, err)
	// A few failed attempts show in the history as the retried activity's
	// last failure, the way an operator would find it before forcing.
	r.awaitPendingActivity(ctx, t, run.GetID(), contract.DeleteVirtualMachineName, func(pa *workflowpb.PendingActivityInfo) bool {
		return pa.GetAttempt() >= 2 && pa.GetLastFailure() != nil
	})
	handle, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), UpdateName: ForceUpdate, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	require.NoError(t, handle.Get(ctx, nil))

	var res DeprovisionResult
	require.NoError(t, run.Get(ctx, &res))
	require.True(t, res.Forced)
	require.Equal(t, cluster, res.KubevirtConfig)
	require.Len(t, res.NotDeleted, 3, "VM, volumes and network were given up on: %v", res.NotDeleted)
	require.Contains(t, res.NotDeleted[0], "VirtualMachine "+recordNamespace+"/"+name)
	require.Equal(t, []string{"NetworkConfiguration " + recordNamespace + "/" + name + " on the supervisor"}, res.Deleted,
		"the supervisor's NetworkConfiguration is deleted anyway")
	require.Equal(t, v1alpha1.MachinePhaseTerminating, r.getMachine(t, name).Status.Phase)
	h := r.keep(t, "deprovision-unreachable-forced", run)
	require.True(t, historyHasEvent(h, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
}

func (r *recorder) healthCheck(ctx context.Context, t *testing.T) {
	healthy, unhealthy := testenv.ClusterName(1), testenv.ClusterName(2)
	run, err := r.starter.StartHealthCheck(ctx)
	require.NoError(t, err)
	var report HealthReport
	require.NoError(t, run.Get(ctx, &report))
	require.Len(t, report.Clusters, 2)
	require.Equal(t, healthy, report.Clusters[0].KubevirtConfig)
	require.True(t, report.Clusters[0].Healthy, "%s: %s", healthy, report.Clusters[0].Reason)
	require.Equal(t, unhealthy, report.Clusters[1].KubevirtConfig)
	require.False(t, report.Clusters[1].Healthy)
	require.Contains(t, report.Clusters[1].Reason, unhealthy)
	for config, phase := range map[string]string{healthy: "Ready", unhealthy: "NotReady"} {
		kvc := &v1alpha1.KubevirtConfig{}
		require.NoError(t, r.env.Supervisor.Client.Get(ctx, ctrlclient.ObjectKey{Name: config}, kvc))
		require.Equal(t, phase, kvc.Status.Phase, "recorded on KubevirtConfig %s", config)
	}
	h := r.keep(t, "healthcheck-mixed", run)
	require.Equal(t, 1, countOf(scheduledActivities(h), contract.InvalidateClusterClientName), "only the unhealthy cluster's client is dropped")
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// deadKubeconfig is kubeconfig with every server moved to a port that was
// just closed, so connections are refused at once: a stopped cluster. The
// credentials stay, so the secret check covers them too.
func deadKubeconfig(t *testing.T, kubeconfig []byte) []byte {
	t.Helper()
	return kubeconfigFor(t, kubeconfig, "https://"+testutil.FreeAddress(t))
}

// kubeconfigFor is kubeconfig with every server replaced by server.
func kubeconfigFor(t testing.TB, kubeconfig []byte, server string) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	require.NoError(t, err)
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	out, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return out
}

// write checks every history for secret material and writes it to
// testdata/<file>.json in the JSON of `temporal workflow show --output
// json`. Other files there (histories of older versions) are kept.
func (r *recorder) write(t *testing.T) {
	t.Helper()
	kubeconfigs := &secretscan.Set{}
	for _, c := range append([]*testenv.Cluster{r.env.Supervisor}, r.env.Clusters...) {
		added := kubeconfigs.Add("kubeconfig of "+c.Name, c.Kubeconfig)
		require.True(t, slices.ContainsFunc(added, func(what string) bool { return strings.HasSuffix(what, " client key") }),
			"the harness's kubeconfig of %s has no client key: the secret check would check nothing", c.Name)
	}
	require.NoError(t, os.MkdirAll(historiesDir, 0o755))
	for _, h := range r.histories {
		found, err := kubeconfigs.ScanHistory(h.file, h.history)
		require.NoError(t, err)
		require.Empty(t, found, "%s carries kubeconfig material", h.file)
		data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h.history)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(historiesDir, h.file+".json"), append(data, '\n'), 0o644))
	}
}
