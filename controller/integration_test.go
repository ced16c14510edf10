package controller

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1beta1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/machineflow/machineflow/activities"
	"github.com/machineflow/machineflow/clients"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// e2e is the whole system in one process: a supervisor and one KubeVirt
// cluster (real API servers) with the simulator, the Temporal dev server,
// a worker running the real workflows and activities, and managers
// running the reconciler, started and stopped by the test.
type e2e struct {
	env      *testenv.Env
	cluster  *testenv.Cluster
	temporal client.Client
	trigger  *countingTrigger
	requests *requestCounter
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	ctrllog.SetLogger(logr.Discard())
	env := testenv.New(t, testenv.Options{Clusters: 1})
	srv := devtemporal.New(t)
	s := &e2e{env: env, cluster: env.Clusters[0], temporal: srv.Client(), requests: newRequestCounter()}

	simulated.Start(t, env, kubevirtsim.Options{AddressPool: "10.100.0.0/16",
		BootDelay: 300 * time.Millisecond, TerminationDelay: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond})

	cm := clients.NewKubevirtClientManager(env.Supervisor.Client, env.Scheme, env.ConfigNamespace)
	settings := activities.DefaultSettings()
	settings.PollInitial, settings.PollMax = 50*time.Millisecond, 200*time.Millisecond
	acts, err := activities.New(activities.Deps{Clients: cm, Supervisor: env.Supervisor.Client, Settings: settings})
	require.NoError(t, err)
	w := worker.New(s.temporal, workflows.DefaultTaskQueue, worker.Options{})
	workflows.Register(w, &workflows.ControlActivities{Client: s.temporal, MaxPollInterval: 200 * time.Millisecond})
	w.RegisterActivity(acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	trigger, err := NewTemporalTrigger(s.temporal, TemporalTriggerOptions{})
	require.NoError(t, err)
	s.trigger = &countingTrigger{Trigger: trigger, calls: map[string]int{}}
	return s
}

// startManager runs a controller-runtime manager with the reconciler, as
// cmd/controller does (leader election included), and returns its stop,
// which may be called more than once.
func (s *e2e) startManager(t *testing.T) (stop func() error) {
	t.Helper()
	return s.startManagerRequeue(t, 200*time.Millisecond, 5*time.Second)
}

// startManagerRequeue is startManager with the reconciler's RequeueMin
// and RequeueMax.
func (s *e2e) startManagerRequeue(t *testing.T, requeueMin, requeueMax time.Duration) (stop func() error) {
	t.Helper()
	cfg := rest.CopyConfig(s.env.Supervisor.Config)
	cfg.Wrap(s.requests.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        s.env.Scheme,
		Logger:                        logr.Discard(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "machineflow-controller",
		LeaderElectionNamespace:       s.env.ConfigNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	require.NoError(t, err)
	r := &MachineReconciler{Trigger: s.trigger, RequeueMin: requeueMin, RequeueMax: requeueMax}
	// One process runs several managers in turn: the controller name is
	// registered again each time.
	require.NoError(t, r.SetupWithManager(mgr, crcontroller.Options{MaxConcurrentReconciles: 8, SkipNameValidation: ptr.To(true)}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var (
		once    sync.Once
		stopErr error
	)
	return func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
}

func (s *e2e) namespace(t *testing.T, name string) string {
	t.Helper()
	require.NoError(t, s.env.Supervisor.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

func (s *e2e) createMachine(t *testing.T, ns, name string, mutate func(*v1alpha1.Machine)) {
	t.Helper()
	m := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.MachineSpec{Provider: v1alpha1.MachineProviderType(names.ProviderKubevirt)}}
	if mutate != nil {
		mutate(m)
	}
	require.NoError(t, s.env.Supervisor.Client.Create(t.Context(), m))
}

func (s *e2e) machine(t *testing.T, ns, name string) (*v1alpha1.Machine, error) {
	m := &v1alpha1.Machine{}
	err := s.env.Supervisor.Client.Get(t.Context(), crclient.ObjectKey{Namespace: ns, Name: name}, m)
	return m, err
}

// provisioned: Running, and the reconciler has seen the run complete.
func provisioned(m *v1alpha1.Machine) bool {
	c := conditionOf(m, ConditionLifecycleWorkflow)
	return m.Status.Phase == v1alpha1.MachinePhaseRunning && c != nil && c.Reason == ReasonProvisionCompleted
}

func (s *e2e) waitProvisioned(t *testing.T, ns string, machines ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, name := range machines {
			m, err := s.machine(t, ns, name)
			if !assert.NoError(c, err) {
				return
			}
			assert.True(c, provisioned(m), "Machine %s/%s: phase %q, conditions %+v", ns, name, m.Status.Phase, m.Status.Conditions)
		}
	}, 90*time.Second, 200*time.Millisecond)
}

func (s *e2e) waitGone(t *testing.T, ns, name string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := s.machine(t, ns, name)
		return apierrors.IsNotFound(err)
	}, 60*time.Second, 200*time.Millisecond, "Machine %s/%s is still there", ns, name)
}

// runs lists the executions of a workflow type for the Machines of a
// namespace, by workflow ID, through the visibility store.
func (s *e2e) runs(t *testing.T, workflowType, ns string) map[string]int {
	t.Helper()
	out := map[string]int{}
	var token []byte
	for {
		resp, err := s.temporal.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflowType, names.SearchAttrMachineNamespace, ns),
			NextPageToken: token,
		})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			out[e.Execution.WorkflowId]++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out
		}
	}
}

// requireRuns waits until visibility shows exactly one run per Machine.
func (s *e2e) requireRuns(t *testing.T, workflowType, ns string, machines ...string) {
	t.Helper()
	want := map[string]int{}
	for _, name := range machines {
		id := workflows.ProvisionWorkflowID(ns, name)
		if workflowType == workflows.DeprovisionMachineName {
			id = workflows.DeprovisionWorkflowID(ns, name)
		}
		want[id] = 1
	}
	var got map[string]int
	if !assert.Eventually(t, func() bool { got = s.runs(t, workflowType, ns); return maps.Equal(got, want) }, 10*time.Second, 200*time.Millisecond) {
		t.Fatalf("%s runs in %s: got %v, want one per Machine %v", workflowType, ns, got, machines)
	}
}

func (s *e2e) vms(t *testing.T, ns string) []string {
	t.Helper()
	l := &kubevirtv1.VirtualMachineList{}
	require.NoError(t, s.cluster.Client.List(t.Context(), l, crclient.InNamespace(ns)))
	var out []string
	for _, vm := range l.Items {
		out = append(out, vm.Name)
	}
	return out
}

// eventReasons lists the reasons of the Events about a Machine, in order.
func (s *e2e) eventReasons(t *testing.T, ns, name string) []string {
	t.Helper()
	l := &eventsv1.EventList{}
	require.NoError(t, s.env.Supervisor.Client.List(t.Context(), l, crclient.InNamespace(ns)))
	slices.SortFunc(l.Items, func(a, b eventsv1.Event) int { return a.EventTime.Compare(b.EventTime.Time) })
	var out []string
	for _, e := range l.Items {
		if e.Regarding.Name == name && e.ReportingController == ControllerName {
			out = append(out, e.Reason)
		}
	}
	return out
}

func TestIntegration(t *testing.T) {
	s := newE2E(t)
	stop := s.startManager(t)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping the manager: %v", err)
		}
	})

	ns := s.namespace(t, "lifecycle")
	// Another provider's Machine is created first, so it is in the cache
	// through everything below.
	s.createMachine(t, ns, "aws", func(m *v1alpha1.Machine) { m.Spec.Provider = "aws" })

	t.Run("create and delete a Machine", func(t *testing.T) {
		s.createMachine(t, ns, "m1", nil)
		s.waitProvisioned(t, ns, "m1")
		m, err := s.machine(t, ns, "m1")
		require.NoError(t, err)
		assert.Equal(t, []string{names.Finalizer}, m.Finalizers)
		assert.Equal(t, s.cluster.Name, m.Annotations[names.PlacementAnnotation])
		applied := conditionOf(m, ConditionSpecApplied)
		require.NotNil(t, applied)
		assert.Equal(t, "True", applied.Status)
		assert.Equal(t, []string{"m1"}, s.vms(t, ns))
		s.requireRuns(t, workflows.ProvisionMachineName, ns, "m1")
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Equal(c, []string{EventProvisionStarted, EventProvisionCompleted}, s.eventReasons(t, ns, "m1"))
		}, 10*time.Second, 200*time.Millisecond)

		require.NoError(t, s.env.Supervisor.Client.Delete(t.Context(), m))
		s.waitGone(t, ns, "m1")
		assert.Empty(t, s.vms(t, ns), "the VM went with the Machine")
		s.requireRuns(t, workflows.DeprovisionMachineName, ns, "m1")
		var res workflows.DeprovisionResult
		require.NoError(t, s.temporal.GetWorkflow(t.Context(), workflows.DeprovisionWorkflowID(ns, "m1"), "").Get(t.Context(), &res))
		assert.Contains(t, res.Deleted, "VirtualMachine "+ns+"/m1 on "+s.cluster.Name)
		assert.False(t, res.Forced)
		s.requireRuns(t, workflows.ProvisionMachineName, ns, "m1")
	})

	t.Run("an ISO-booted Machine gets its ISO ejected", func(t *testing.T) { s.ejectISO(t) })

	t.Run("restarting the controller mid-way duplicates nothing", func(t *testing.T) {
		rns := s.namespace(t, "restart")
		s.createMachine(t, rns, "slow", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{kubevirtsim.BootDelayAnnotation: "4s"}
		})
		s.waitRun(t, workflows.ProvisionWorkflowID(rns, "slow"))
		require.NoError(t, stop())
		stop = s.startManager(t)
		s.waitProvisioned(t, rns, "slow")
		s.requireRuns(t, workflows.ProvisionMachineName, rns, "slow")

		m, err := s.machine(t, rns, "slow")
		require.NoError(t, err)
		require.NoError(t, s.env.Supervisor.Client.Delete(t.Context(), m))
		s.waitRun(t, workflows.DeprovisionWorkflowID(rns, "slow"))
		require.NoError(t, stop())
		stop = s.startManager(t)
		s.waitGone(t, rns, "slow")
		assert.Empty(t, s.vms(t, rns))
		s.requireRuns(t, workflows.DeprovisionMachineName, rns, "slow")
		s.requireRuns(t, workflows.ProvisionMachineName, rns, "slow")
		started := slices.DeleteFunc(s.eventReasons(t, rns, "slow"), func(r string) bool { return r != EventProvisionStarted })
		assert.Len(t, started, 1, "one start, one Event, across the restart")
	})

	t.Run("fifty Machines at once", func(t *testing.T) {
		fns := s.namespace(t, "fifty")
		var machines []string
		for i := range 50 {
			machines = append(machines, fmt.Sprintf("m%02d", i))
		}
		start, startRequests := time.Now(), s.requests.snapshot()
		var wg sync.WaitGroup
		for _, name := range machines {
			wg.Go(func() { s.createMachine(t, fns, name, nil) })
		}
		wg.Wait()
		s.waitProvisioned(t, fns, machines...)
		took, provisioning := time.Since(start), 0
		for k, n := range s.requests.snapshot() {
			if !strings.Contains(k, "leases") {
				provisioning += n - startRequests[k]
			}
		}
		t.Logf("50 Machines provisioned through the controller in %s; the controller made %.1f API requests per Machine on the way (finalizer, conditions, Events)",
			took.Round(100*time.Millisecond), float64(provisioning)/float64(len(machines)))
		s.requireRuns(t, workflows.ProvisionMachineName, fns, machines...)
		assert.ElementsMatch(t, machines, s.vms(t, fns))

		// Steady state: every Machine Running. What does the controller
		// still ask of the API server and of Temporal?
		window := 20 * time.Second
		before, ensuresBefore := s.requests.snapshot(), s.trigger.total()
		time.Sleep(window)
		after, ensures := s.requests.snapshot(), s.trigger.total()-ensuresBefore
		delta := map[string]int{}
		total, leases := 0, 0
		for k, n := range after {
			if d := n - before[k]; d > 0 {
				delta[k] = d
				total += d
				if strings.Contains(k, "leases") {
					leases += d
				}
			}
		}
		perMinute := func(n int) float64 { return float64(n) / window.Minutes() }
		t.Logf("steady state, %d Running Machines, %s: %d API requests (%v); %.1f/min for leader election, %.3f/min per Machine otherwise; %d Trigger calls",
			len(machines), window, total, delta, perMinute(leases), perMinute(total-leases)/float64(len(machines)), ensures)
		assert.Zero(t, ensures, "a Running Machine is never requeued")
	})

	t.Run("a closed run reaches its Machine at once, not at the requeue", func(t *testing.T) {
		require.NoError(t, stop())
		// Requeues of ten minutes and more: within the bounds below, only
		// the run waiters can tell the reconciler that a run closed.
		stop = s.startManagerRequeue(t, 10*time.Minute, time.Hour)
		wns := s.namespace(t, "waiters")
		s.createMachine(t, wns, "w1", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{kubevirtsim.BootDelayAnnotation: "2s"}
		})
		s.waitRun(t, workflows.ProvisionWorkflowID(wns, "w1"))
		require.Eventually(t, func() bool { return testutil.ToFloat64(runWaitersGauge) == 1 }, 30*time.Second, 20*time.Millisecond,
			"a waiter follows the open provision")
		s.waitProvisioned(t, wns, "w1")
		waitersRunning(t, 0)

		m, err := s.machine(t, wns, "w1")
		require.NoError(t, err)
		require.NoError(t, s.env.Supervisor.Client.Delete(t.Context(), m))
		s.waitGone(t, wns, "w1")
		waitersRunning(t, 0)
		assert.Empty(t, s.vms(t, wns))

		// A run open when the manager stops: its waiter ends with it.
		s.createMachine(t, wns, "w2", func(m *v1alpha1.Machine) {
			m.Annotations = map[string]string{kubevirtsim.BootDelayAnnotation: "1h"}
		})
		s.waitRun(t, workflows.ProvisionWorkflowID(wns, "w2"))
		waitersRunning(t, 1)
		require.NoError(t, stop())
		assert.Zero(t, testutil.ToFloat64(runWaitersGauge), "the manager stops after its waiters")
		assert.Zero(t, waiterGoroutines())
	})

	t.Run("a Machine of another provider is left alone", func(t *testing.T) {
		m, err := s.machine(t, ns, "aws")
		require.NoError(t, err)
		assert.Empty(t, m.Finalizers)
		assert.Empty(t, m.Status.Conditions)
		assert.Zero(t, s.trigger.callsFor(ns+"/aws"))
		for _, id := range []string{workflows.ProvisionWorkflowID(ns, "aws"), workflows.DeprovisionWorkflowID(ns, "aws")} {
			_, err := s.temporal.DescribeWorkflow(t.Context(), id, "")
			var notFound *serviceerror.NotFound
			assert.ErrorAs(t, err, &notFound, "no workflow %s", id)
		}
	})
}

// ejectISO boots a Machine from an ISO, annotates it cdrom-ejected as its
// installer would, and follows the controller's EjectISO to the end. The
// Machine stays Running afterwards, so the steady-state check of "fifty
// Machines at once" covers it too: once clean, it is not reconciled again.
func (s *e2e) ejectISO(t *testing.T) {
	const name = "installer"
	ns := s.namespace(t, "iso")
	ctx := t.Context()
	// The activities size the ISO with a HEAD request: 3 GiB here, so its
	// DataVolume asks for 4Gi (10% slack) instead of the default 8Gi.
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(3<<30))
	}))
	defer images.Close()
	s.createMachine(t, ns, name, func(m *v1alpha1.Machine) {
		m.Annotations = map[string]string{names.BootSourceAnnotation: names.BootSourceDataVolume, names.BootSourceTypeAnnotation: "http"}
		m.Spec.OS.ImageID = images.URL + "/installer.iso"
	})
	s.waitProvisioned(t, ns, name)

	vmKey := crclient.ObjectKey{Namespace: ns, Name: name}
	vm := &kubevirtv1.VirtualMachine{}
	require.NoError(t, s.cluster.Client.Get(ctx, vmKey, vm))
	require.Equal(t, [3]bool{true, true, true}, isoInSpec(vm), "disk, volume and DataVolumeTemplate of the ISO")
	i := slices.IndexFunc(vm.Spec.DataVolumeTemplates, func(d kubevirtv1.DataVolumeTemplateSpec) bool { return d.Name == name+"-iso" })
	tmpl := vm.Spec.DataVolumeTemplates[i]
	assert.Equal(t, "4Gi", tmpl.Spec.Storage.Resources.Requests.Storage().String(), "sized by the HEAD request")
	// The harness has no KubeVirt controllers or CDI: the DataVolume that
	// KubeVirt makes from the template (its labels, owned by the VM) is
	// made here.
	dv := &cdiv1beta1.DataVolume{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tmpl.Name, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(vm, kubevirtv1.VirtualMachineGroupVersionKind)}},
		Spec: tmpl.Spec,
	}
	require.NoError(t, s.cluster.Client.Create(ctx, dv))

	m, err := s.machine(t, ns, name)
	require.NoError(t, err)
	patch := crclient.MergeFrom(m.DeepCopy())
	m.Annotations[names.CDROMEjectedAnnotation] = "true"
	require.NoError(t, s.env.Supervisor.Client.Patch(ctx, m, patch))

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m, err := s.machine(t, ns, name)
		if !assert.NoError(c, err) {
			return
		}
		assert.Equal(c, "true", m.Annotations[names.ISOCleanedUpAnnotation])
		if cond := conditionOf(m, ConditionISOEjected); assert.NotNil(c, cond) {
			assert.Equal(c, ReasonISOEjectCompleted, cond.Reason)
			assert.Equal(c, "True", cond.Status)
		}
	}, 30*time.Second, 200*time.Millisecond)
	require.NoError(t, s.cluster.Client.Get(ctx, vmKey, vm))
	assert.Equal(t, [3]bool{}, isoInSpec(vm), "the ISO is gone from the VM spec")
	err = s.cluster.Client.Get(ctx, crclient.ObjectKeyFromObject(dv), &cdiv1beta1.DataVolume{})
	assert.True(t, apierrors.IsNotFound(err), "DataVolume %s/%s is deleted: %v", ns, dv.Name, err)
	var res workflows.EjectISOResult
	require.NoError(t, s.temporal.GetWorkflow(ctx, workflows.EjectISOWorkflowID(ns, name), "").Get(ctx, &res))
	assert.Equal(t, workflows.EjectISOResult{KubevirtConfig: s.cluster.Name, Deleted: []string{
		"ISO cdrom-iso of VirtualMachine " + ns + "/" + name + " on " + s.cluster.Name,
		"DataVolume " + ns + "/" + dv.Name + " on " + s.cluster.Name,
	}}, res)
	assert.Equal(t, map[string]int{workflows.EjectISOWorkflowID(ns, name): 1}, s.runs(t, workflows.EjectISOName, ns))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{EventProvisionStarted, EventProvisionCompleted, EventISOEjectStarted, EventISOEjected}, s.eventReasons(t, ns, name))
	}, 10*time.Second, 200*time.Millisecond)
}

// isoInSpec says whether a VM's spec has the cdrom-iso disk, the cdrom-iso
// volume and the <vm>-iso DataVolumeTemplate.
func isoInSpec(vm *kubevirtv1.VirtualMachine) [3]bool {
	const cdrom = "cdrom-iso"
	return [3]bool{
		slices.ContainsFunc(vm.Spec.Template.Spec.Domain.Devices.Disks, func(d kubevirtv1.Disk) bool { return d.Name == cdrom }),
		slices.ContainsFunc(vm.Spec.Template.Spec.Volumes, func(v kubevirtv1.Volume) bool { return v.Name == cdrom }),
		slices.ContainsFunc(vm.Spec.DataVolumeTemplates, func(d kubevirtv1.DataVolumeTemplateSpec) bool { return d.Name == vm.Name+"-iso" }),
	}
}

// waitRun waits until a workflow ID has an open run.
func (s *e2e) waitRun(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, err := s.temporal.DescribeWorkflow(t.Context(), id, "")
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "workflow %s never started", id)
}

// countingTrigger counts the Ensure calls the reconciler makes per Machine.
type countingTrigger struct {
	Trigger
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingTrigger) count(m *v1alpha1.Machine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[m.Namespace+"/"+m.Name]++
}

func (c *countingTrigger) EnsureProvisioned(ctx context.Context, m *v1alpha1.Machine) (Run, error) {
	c.count(m)
	return c.Trigger.EnsureProvisioned(ctx, m)
}

func (c *countingTrigger) EnsureDeprovisioned(ctx context.Context, m *v1alpha1.Machine, force bool) (Run, error) {
	c.count(m)
	return c.Trigger.EnsureDeprovisioned(ctx, m, force)
}

func (c *countingTrigger) EnsureISOEjected(ctx context.Context, m *v1alpha1.Machine) (Run, error) {
	c.count(m)
	return c.Trigger.EnsureISOEjected(ctx, m)
}

func (c *countingTrigger) callsFor(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[key]
}

func (c *countingTrigger) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// requestCounter counts the requests a rest.Config makes, by method and
// resource ("GET machines", "WATCH machines", "PUT leases").
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func newRequestCounter() *requestCounter { return &requestCounter{counts: map[string]int{}} }

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *requestCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		method := r.Method
		if r.URL.Query().Get("watch") == "true" {
			method = "WATCH"
		}
		c.mu.Lock()
		c.counts[method+" "+resourceOf(r.URL.Path)]++
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (c *requestCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// resourceOf is the resource of an API path: /api/v1/namespaces/x/events,
// /apis/g/v/namespaces/x/machines/m/status → events, machines.
func resourceOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if s == "namespaces" && i+2 < len(segs) {
			return segs[i+2]
		}
	}
	return segs[len(segs)-1]
}
