package scale

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	kubevirtv1 "kubevirt.io/api/core/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

var (
	machines     = flag.Int("machines", 200, "Machines that BenchmarkProvision provisions and BenchmarkDeprovision deletes")
	bootDelay    = flag.Duration("boot-delay", 500*time.Millisecond, "simulated boot time of those Machines' VMs")
	steadyWindow = flag.Duration("steady-window", 30*time.Second, "how long BenchmarkSteadyState counts requests")
)

const (
	scaleNamespace = "scale"
	// raisedNamespace holds the Machines of BenchmarkProvision/limits=raised.
	raisedNamespace  = "scale-raised"
	historyNamespace = "history"
	// historySample Machines boot in historyFastBoot and as many in
	// historySlowBoot in BenchmarkProvisionHistory.
	historySample   = 10
	historyFastBoot = 0
	historySlowBoot = 10 * time.Second
	// simPollInterval is the simulators' List interval: kubevirtsim's
	// default, rather than the stack's 100 ms, because listing 100 VMs and
	// their VMIs ten times a second per cluster would make the simulators
	// a large share of the API servers' load.
	simPollInterval = 200 * time.Millisecond
	// callers is how many creates, starts or deletes the benchmark has in
	// flight at once: enough that issuing them is not what is measured.
	callers = 16
	// sectionTimeout bounds each benchmark's work.
	sectionTimeout = 10 * time.Minute
	// settleQuiet is how long the controller's request count must stay
	// unchanged before its start-up reconciles count as done.
	settleQuiet = 3 * time.Second
)

// The vitistack kubevirt-operator's requests at rest, the model
// BenchmarkSteadyState reports beside its measurement. Every Machine is
// requeued after 5 s, so reconciled 12 times a minute, and a reconcile of
// a Running Machine makes, on its KubeVirt cluster (whose client is not
// cached): a Get of the namespace (step 5), of the VM (7) and of the VMI
// (8), and for the status a List of the pods and a List of the Events of
// the namespace; on the supervisor one Status().Update, which is never
// skipped because lastUpdated changes on every write. The Gets of the
// Machine go through the manager's cache and cost nothing. Each status
// write also triggers a reconcile of its own (about one a second
// per Machine), which this model leaves out: it is a lower bound.
const (
	operatorReconcilesPerMinute  = 12
	operatorRequestsPerReconcile = 3 + 2 + 1
)

// workerLimits are client rate limits a worker runs with.
type workerLimits struct {
	name string
	env  []string
}

var (
	// defaultLimits are the production defaults: 50 requests a second per
	// API resource to the supervisor, 20 per resource to each KubeVirt
	// cluster.
	defaultLimits = workerLimits{name: "default"}
	// raisedLimits are far above what two cores can serve, so that the
	// machine, not a rate limiter, bounds provisioning.
	raisedLimits = workerLimits{name: "raised", env: []string{
		"SUPERVISOR_QPS=1000", "SUPERVISOR_BURST=2000", "KUBEVIRT_QPS=1000", "KUBEVIRT_BURST=2000",
	}}
)

func (l workerLimits) String() string {
	if len(l.env) == 0 {
		return l.name + " (no settings)"
	}
	return l.name + " (" + strings.Join(l.env, " ") + ")"
}

// env is the stack the benchmarks share, and what they leave each other.
type env struct {
	*stack.Stack
	// worker is the one worker running; workers are every worker started,
	// by the name of their limits (a stopped one is started again).
	worker  *services.Service
	workers map[string]*services.Service
	// roles names the API servers by host:port: "supervisor" or the
	// cluster's KubevirtConfig name.
	roles   map[string]string
	watcher crclient.WithWatch
	starter workflows.Starter
	// namespaces already created on the supervisor.
	namespaces map[string]bool
	// provisioned are scaleNamespace's Machines, Running; nil before
	// provisioning and after BenchmarkDeprovision.
	provisioned []*v1alpha1.Machine
	// adopted: the controller runs and has reconciled provisioned.
	adopted bool
}

var (
	shared    *env
	sharedErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "scale: tear-down: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// need returns the shared stack, started on first use; a failed benchmark
// logs the tails of the logs.
func need(b *testing.B) *env {
	b.Helper()
	if testing.Short() {
		b.Skip("scale: skipped with -short: needs the Temporal dev server and API servers from ./bin (make tools)")
	}
	if *machines < 2 {
		b.Fatalf("-machines=%d: want at least 2, one per cluster", *machines)
	}
	if shared == nil && sharedErr == nil {
		start := time.Now()
		shared, sharedErr = startEnv(context.Background())
		b.Logf("stack started in %s", time.Since(start).Round(100*time.Millisecond))
	}
	if sharedErr != nil {
		b.Fatal(sharedErr)
	}
	b.Cleanup(func() {
		if b.Failed() {
			b.Log(shared.LogTails(40))
		}
	})
	return shared
}

// startEnv starts two KubeVirt clusters, Temporal and one worker with the
// default limits, without the controller: BenchmarkProvision starts its
// workflows through the starter API, and a controller would start them
// first.
func startEnv(ctx context.Context) (*env, error) {
	s, err := stack.Start(ctx, stack.Options{
		Clusters: 2,
		Sim:      kubevirtsim.Options{PollInterval: simPollInterval},
	})
	if err != nil {
		return nil, err
	}
	e := &env{
		Stack:      s,
		worker:     s.Workers[0],
		workers:    map[string]*services.Service{defaultLimits.name: s.Workers[0]},
		roles:      map[string]string{hostOf(s.Env.Supervisor.Config.Host): "supervisor"},
		starter:    workflows.Starter{Client: s.Temporal()},
		namespaces: map[string]bool{},
	}
	for _, c := range s.Env.Clusters {
		e.roles[hostOf(c.Config.Host)] = c.Name
	}
	if e.watcher, err = crclient.NewWithWatch(s.Env.Supervisor.Config, crclient.Options{Scheme: s.Env.Scheme}); err != nil {
		return nil, errors.Join(fmt.Errorf("supervisor watch client: %w", err), s.Stop())
	}
	return e, nil
}

func isSupervisor(role string) bool { return role == "supervisor" }
func isKubevirt(role string) bool   { return strings.HasPrefix(role, "kubevirt-") }

// BenchmarkProvisionHistory provisions historySample Machines whose VMs
// boot at once and as many that take 10 s, all at the same time, and
// reports the workflow history events per provision of each (the
// median): waiting happens inside one heartbeating activity, so a slow
// boot must not cost a single event more (DESIGN.md, principle 2). It
// fails if the fewest events of the slow boots differ from the fewest of
// the fast ones. The Machines are deprovisioned again afterwards.
func BenchmarkProvisionHistory(b *testing.B) {
	e := need(b)
	ctx, cancel := context.WithTimeout(b.Context(), sectionTimeout)
	defer cancel()
	if e.Controller != nil {
		b.Fatal("the controller runs already: it would race the starter API and the clean-up below")
	}
	e.useWorker(ctx, b, defaultLimits)
	e.namespace(ctx, b, historyNamespace)
	boots := map[string]time.Duration{}
	ms := e.newMachines(historyNamespace, 2*historySample, func(i int) time.Duration {
		if i%2 == 0 {
			return historyFastBoot
		}
		return historySlowBoot
	})
	for _, m := range ms {
		boots[m.Name], _ = time.ParseDuration(m.Annotations[kubevirtsim.BootDelayAnnotation])
	}

	p := e.provision(ctx, b, ms)
	byBoot := map[time.Duration][]int64{}
	for name, n := range p.events {
		byBoot[boots[name]] = append(byBoot[boots[name]], n)
	}
	fast, slow := byBoot[historyFastBoot], byBoot[historySlowBoot]
	slices.Sort(fast)
	slices.Sort(slow)
	b.Logf("history events per provision: boot %s %v; boot %s %v", time.Duration(historyFastBoot), fast, historySlowBoot, slow)
	// The least of each group: a busy machine can add a workflow task
	// timeout to any run (two events), but a cost of waiting would show in
	// every slow boot.
	if fast[0] != slow[0] {
		b.Errorf("history length depends on boot time: boot %s %v, boot %s %v", time.Duration(historyFastBoot), fast, historySlowBoot, slow)
	}
	b.ReportMetric(float64(fast[len(fast)/2]), "events/provision-boot-0s")
	b.ReportMetric(float64(slow[len(slow)/2]), "events/provision-boot-10s")

	e.deprovisionWithStarter(ctx, b, ms)
}

// BenchmarkProvision provisions -machines Machines, spread over two
// KubeVirt clusters by the placement annotation, through the starter API
// (workflows.Starter, what cmd/starter and the controller use) with no
// controller running, and reports throughput (Machines over the time from
// the first start to the last Machine seen Running on the supervisor),
// the latency from a Machine's start to Running, history events per
// provision, the worker's peak RSS and CPU, and the worker's requests per
// Machine to the supervisor and to the KubeVirt API servers.
//
// It does so twice, each time with a worker of its own: limits=raised
// with the client rate limits far above what the machine can serve (its
// Machines are deprovisioned again), then limits=default with the
// production defaults, whose Machines the benchmarks below use.
func BenchmarkProvision(b *testing.B) {
	e := need(b)
	if e.Controller != nil {
		b.Fatal("the controller runs: it would start the workflows itself")
	}
	b.Run("limits="+raisedLimits.name, func(b *testing.B) {
		ctx, cancel := context.WithTimeout(b.Context(), sectionTimeout)
		defer cancel()
		e.useWorker(ctx, b, raisedLimits)
		ms := e.benchProvision(ctx, b, raisedNamespace)
		e.deprovisionWithStarter(ctx, b, ms)
	})
	b.Run("limits="+defaultLimits.name, func(b *testing.B) {
		ctx, cancel := context.WithTimeout(b.Context(), sectionTimeout)
		defer cancel()
		if e.provisioned != nil {
			b.Fatal("the Machines are provisioned already")
		}
		e.useWorker(ctx, b, defaultLimits)
		e.provisioned = e.benchProvision(ctx, b, scaleNamespace)
	})
}

// benchProvision provisions -machines Machines in namespace with the
// running worker, reports what BenchmarkProvision does and returns them.
func (e *env) benchProvision(ctx context.Context, b *testing.B, namespace string) []*v1alpha1.Machine {
	b.Helper()
	e.namespace(ctx, b, namespace)
	ms := e.newMachines(namespace, *machines, func(int) time.Duration { return *bootDelay })
	p := e.provision(ctx, b, ms)

	n := float64(len(ms))
	b.ReportMetric(n/p.span().Seconds(), "machines/s")
	latencies := p.latencies()
	for _, q := range []float64{50, 95, 99} {
		b.ReportMetric(percentile(latencies, q).Seconds(), fmt.Sprintf("p%g-s", q))
	}
	events := slices.Collect(func(yield func(int64) bool) {
		for _, v := range p.events {
			if !yield(v) {
				return
			}
		}
	})
	slices.Sort(events)
	b.ReportMetric(float64(events[len(events)/2]), "events/provision")
	rss, err := peakRSS(e.worker.Pid())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/1e6, "worker-peak-RSS-MB")
	b.ReportMetric(p.requests.total(isSupervisor)/n, "supervisor-req/machine")
	b.ReportMetric(p.requests.total(isKubevirt)/n, "kubevirt-req/machine")
	b.ReportMetric(float64(p.cpu.of("worker").Milliseconds())/n, "worker-CPU-ms/machine")
	b.ReportMetric(float64(p.cpu.ours().Milliseconds())/n, "stack-CPU-ms/machine")
	b.ReportMetric(p.cpu.busyPercent(), "machine-busy-%")
	b.Logf("%d Machines, boot delay %s, simulator poll %s: %.1f Machines/s over %s; start to Running p50 %s p95 %s p99 %s max %s; events/provision %d..%d; worker peak RSS %.0f MB",
		len(ms), *bootDelay, simPollInterval, n/p.span().Seconds(), p.span().Round(time.Millisecond),
		percentile(latencies, 50).Round(time.Millisecond), percentile(latencies, 95).Round(time.Millisecond),
		percentile(latencies, 99).Round(time.Millisecond), percentile(latencies, 100).Round(time.Millisecond),
		events[0], events[len(events)-1], float64(rss)/1e6)
	b.Logf("worker requests: %s", p.requests)
	b.Logf("CPU while provisioning: %s", p.cpu)
	return ms
}

// BenchmarkSteadyState starts the controller beside the worker with the
// -machines Machines Running (provisioning them first if
// BenchmarkProvision did not), waits until it has adopted them, and counts
// the requests worker and controller make to the API servers over
// -steady-window, as requests per minute; beside it the operator's
// model for as many Machines. The cost of one ClusterHealthCheck run, the
// only scheduled work, is reported separately.
func BenchmarkSteadyState(b *testing.B) {
	e := need(b)
	ctx, cancel := context.WithTimeout(b.Context(), sectionTimeout)
	defer cancel()
	e.ensureProvisioned(ctx, b)
	e.ensureAdopted(ctx, b)
	n := float64(len(e.provisioned))

	before := e.requestsOfAll(ctx, b)
	cpuBefore := e.sampleCPU(b)
	start := time.Now()
	sleep(ctx, *steadyWindow)
	window := time.Since(start)
	delta := e.requestsOfAll(ctx, b).minus(before)
	cpu := e.sampleCPU(b).since(cpuBefore)
	e.assertRunning(ctx, b, e.provisioned)
	perMinute := delta.total(func(string) bool { return true }) / window.Minutes()
	b.ReportMetric(perMinute, "req/min")
	b.ReportMetric(perMinute/n, "req/min/machine")
	operator := n * operatorReconcilesPerMinute * operatorRequestsPerReconcile
	b.ReportMetric(operator, "operator-req/min")
	b.ReportMetric(operator/n, "operator-req/min/machine")
	b.Logf("%d Machines Running, window %s: worker and controller made %g requests (%s); the operator's model: %g requests a minute",
		len(e.provisioned), window.Round(time.Millisecond), delta.total(func(string) bool { return true }), delta, operator)
	b.Logf("CPU at rest: %s", cpu)

	before = e.requestsOf(ctx, b, e.worker)
	run, err := e.starter.StartHealthCheck(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		b.Fatalf("ClusterHealthCheck: %v", err)
	}
	check := e.requestsOf(ctx, b, e.worker).minus(before)
	b.ReportMetric(check.total(func(string) bool { return true }), "health-check-req/run")
	b.Logf("one ClusterHealthCheck run: %s", check)
}

// BenchmarkDeprovision deletes the -machines Machines on the supervisor
// (provisioning them and starting the controller first if the benchmarks
// above did not) and lets the controller deprovision them, and reports
// throughput (Machines over the time from the first delete to the last
// Machine gone from the supervisor) and latency, and the requests of
// worker and controller per Machine. It fails unless every
// DeprovisionMachine completed and nothing is left: no VM, VMI, PVC or NAD
// of any of them on either cluster, no Machine and no
// NetworkConfiguration in the namespace.
func BenchmarkDeprovision(b *testing.B) {
	e := need(b)
	ctx, cancel := context.WithTimeout(b.Context(), sectionTimeout)
	defer cancel()
	e.ensureProvisioned(ctx, b)
	e.ensureAdopted(ctx, b)
	ms := e.provisioned
	n := float64(len(ms))

	w, err := watchMachines(ctx, e.watcher, scaleNamespace)
	if err != nil {
		b.Fatal(err)
	}
	before := e.requestsOfAll(ctx, b)
	cpuBefore := e.sampleCPU(b)
	deleted := make([]time.Time, len(ms))
	err = forEach(ctx, ms, func(ctx context.Context, i int, m *v1alpha1.Machine) error {
		deleted[i] = time.Now()
		return e.Env.Supervisor.Client.Delete(ctx, m)
	})
	if err != nil {
		b.Fatal(err)
	}
	goneAt, err := w.await(ctx, machineNames(ms), gone)
	if err != nil {
		b.Fatal(err)
	}
	delta := e.requestsOfAll(ctx, b).minus(before)
	cpu := e.sampleCPU(b).since(cpuBefore)
	e.provisioned, e.adopted = nil, false

	first, last := slices.MinFunc(deleted, time.Time.Compare), time.Time{}
	latencies := make([]time.Duration, len(ms))
	for i, m := range ms {
		latencies[i] = goneAt[m.Name].Sub(deleted[i])
		if goneAt[m.Name].After(last) {
			last = goneAt[m.Name]
		}
	}
	closed := e.assertDeprovisioned(ctx, b, ms)
	lags := make([]time.Duration, len(ms))
	for i, m := range ms {
		lags[i] = goneAt[m.Name].Sub(closed[i])
	}

	span := last.Sub(first)
	b.ReportMetric(n/span.Seconds(), "machines/s")
	for _, q := range []float64{50, 95, 99} {
		b.ReportMetric(percentile(latencies, q).Seconds(), fmt.Sprintf("p%g-s", q))
	}
	b.ReportMetric(percentile(lags, 50).Seconds(), "close-to-gone-p50-s")
	b.ReportMetric(delta.total(isSupervisor)/n, "supervisor-req/machine")
	b.ReportMetric(delta.total(isKubevirt)/n, "kubevirt-req/machine")
	b.ReportMetric(float64(cpu.of("worker").Milliseconds())/n, "worker-CPU-ms/machine")
	b.ReportMetric(float64(cpu.ours().Milliseconds())/n, "stack-CPU-ms/machine")
	b.ReportMetric(cpu.busyPercent(), "machine-busy-%")
	b.Logf("%d Machines deleted: %.1f Machines/s over %s; delete to gone p50 %s p95 %s p99 %s max %s; deprovision closed to Machine gone (the controller's requeue) p50 %s max %s",
		len(ms), n/span.Seconds(), span.Round(time.Millisecond), percentile(latencies, 50).Round(time.Millisecond),
		percentile(latencies, 95).Round(time.Millisecond), percentile(latencies, 99).Round(time.Millisecond),
		percentile(latencies, 100).Round(time.Millisecond), percentile(lags, 50).Round(time.Millisecond),
		percentile(lags, 100).Round(time.Millisecond))
	b.Logf("worker and controller requests: %s", delta)
	b.Logf("CPU while deprovisioning: %s", cpu)
}

// namespace creates a supervisor namespace with its NetworkNamespace once.
func (e *env) namespace(ctx context.Context, b *testing.B, name string) {
	b.Helper()
	if e.namespaces[name] {
		return
	}
	if err := e.Namespace(ctx, name); err != nil {
		b.Fatal(err)
	}
	e.namespaces[name] = true
}

// newMachines are n Machines (not yet created) placed on the clusters in
// turn by the placement annotation, each with the simulated boot delay
// boot(i).
func (e *env) newMachines(namespace string, n int, boot func(i int) time.Duration) []*v1alpha1.Machine {
	ms := make([]*v1alpha1.Machine, n)
	for i := range ms {
		m := stack.NewMachine(namespace, fmt.Sprintf("m-%04d", i))
		m.Annotations[names.PlacementAnnotation] = e.Env.Clusters[i%len(e.Env.Clusters)].Name
		m.Annotations[kubevirtsim.BootDelayAnnotation] = boot(i).String()
		ms[i] = m
	}
	return ms
}

// provisioning is what provisioning a set of Machines measured.
type provisioning struct {
	started, running map[string]time.Time
	// events is the history length of each Machine's provision.
	events map[string]int64
	// requests are the worker's, from the first start to the last Running.
	requests requests
	cpu      cpuUse
}

// span is from the first start to the last Machine seen Running.
func (p provisioning) span() time.Duration {
	var first, last time.Time
	for _, t := range p.started {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	for _, t := range p.running {
		if t.After(last) {
			last = t
		}
	}
	return last.Sub(first)
}

func (p provisioning) latencies() []time.Duration {
	var out []time.Duration
	for name, t := range p.started {
		out = append(out, p.running[name].Sub(t))
	}
	return out
}

// provision creates ms, starts a ProvisionMachine for each through the
// starter API and waits until each is Running on the supervisor. It fails
// the benchmark unless every run completed with the VM on the cluster the
// Machine was placed on, and each cluster has exactly the VMs placed there.
func (e *env) provision(ctx context.Context, b *testing.B, ms []*v1alpha1.Machine) provisioning {
	b.Helper()
	err := forEach(ctx, ms, func(ctx context.Context, _ int, m *v1alpha1.Machine) error {
		return e.Env.Supervisor.Client.Create(ctx, m)
	})
	if err != nil {
		b.Fatalf("creating the Machines: %v", err)
	}
	namespace := ms[0].Namespace
	w, err := watchMachines(ctx, e.watcher, namespace)
	if err != nil {
		b.Fatal(err)
	}
	before := e.requestsOf(ctx, b, e.worker)
	cpuBefore := e.sampleCPU(b)

	started := make([]time.Time, len(ms))
	runs := make([]client.WorkflowRun, len(ms))
	err = forEach(ctx, ms, func(ctx context.Context, i int, m *v1alpha1.Machine) (err error) {
		started[i] = time.Now()
		runs[i], err = e.starter.StartProvision(ctx, workflows.ProvisionInput{Namespace: m.Namespace, Name: m.Name})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	runningAt, err := w.await(ctx, machineNames(ms), running)
	if err != nil {
		b.Fatalf("waiting for Running: %v", err)
	}
	p := provisioning{
		started:  map[string]time.Time{},
		running:  runningAt,
		events:   map[string]int64{},
		requests: e.requestsOf(ctx, b, e.worker).minus(before),
		cpu:      e.sampleCPU(b).since(cpuBefore),
	}

	// Provisioning cannot be done without requests: none counted means the
	// worker does not serve the counter, and every figure from it (the
	// zero at rest above all) would be a lie.
	if p.requests.total(isSupervisor) == 0 || p.requests.total(isKubevirt) == 0 {
		b.Fatalf("the worker counted no requests to the supervisor or the KubeVirt clusters (%s): is %s on its /metrics?", p.requests, requestsMetric)
	}
	perCluster := map[string]int{}
	var failed []string
	for i, m := range ms {
		p.started[m.Name] = started[i]
		placed := m.Annotations[names.PlacementAnnotation]
		perCluster[placed]++
		var res workflows.ProvisionResult
		if err := runs[i].Get(ctx, &res); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", m.Name, err))
			continue
		}
		if res.KubevirtConfig != placed || res.VMName != m.Name {
			failed = append(failed, fmt.Sprintf("%s: VM %s on %s, want on %s", m.Name, res.VMName, res.KubevirtConfig, placed))
		}
		desc, err := e.Temporal().DescribeWorkflow(ctx, runs[i].GetID(), runs[i].GetRunID())
		if err != nil {
			b.Fatal(err)
		}
		p.events[m.Name] = int64(desc.HistoryLength)
	}
	if len(failed) > 0 {
		b.Fatalf("%d of %d provisions failed: %v", len(failed), len(ms), firstOf(failed, 10))
	}
	for _, c := range e.Env.Clusters {
		vms := &kubevirtv1.VirtualMachineList{}
		if err := c.Client.List(ctx, vms, crclient.InNamespace(namespace)); err != nil {
			b.Fatal(err)
		}
		if len(vms.Items) != perCluster[c.Name] {
			b.Fatalf("%s has %d VMs in %s, want %d", c.Name, len(vms.Items), namespace, perCluster[c.Name])
		}
	}
	e.assertRunning(ctx, b, ms)
	return p
}

// assertRunning fails unless every one of ms is Running on the supervisor.
func (e *env) assertRunning(ctx context.Context, b *testing.B, ms []*v1alpha1.Machine) {
	b.Helper()
	list := &v1alpha1.MachineList{}
	if err := e.Env.Supervisor.Client.List(ctx, list, crclient.InNamespace(ms[0].Namespace)); err != nil {
		b.Fatal(err)
	}
	phase := map[string]string{}
	for _, m := range list.Items {
		phase[m.Name] = m.Status.Phase
	}
	var notRunning []string
	for _, m := range ms {
		if phase[m.Name] != v1alpha1.MachinePhaseRunning {
			notRunning = append(notRunning, fmt.Sprintf("%s: %q", m.Name, phase[m.Name]))
		}
	}
	if len(notRunning) > 0 {
		b.Fatalf("%d of %d Machines not Running: %v", len(notRunning), len(ms), firstOf(notRunning, 10))
	}
}

// ensureProvisioned provisions -machines Machines with the default limits
// unless BenchmarkProvision has, without reporting: for benchmarks run
// alone with -bench.
func (e *env) ensureProvisioned(ctx context.Context, b *testing.B) {
	b.Helper()
	if e.provisioned != nil {
		return
	}
	if e.Controller != nil {
		b.Fatal("the Machines were deprovisioned and the controller runs: run the benchmark in a new process")
	}
	e.useWorker(ctx, b, defaultLimits)
	e.namespace(ctx, b, scaleNamespace)
	ms := e.newMachines(scaleNamespace, *machines, func(int) time.Duration { return *bootDelay })
	e.provision(ctx, b, ms)
	e.provisioned = ms
}

// useWorker makes the worker with limits l the one running: it stops the
// running one if that has other limits, and starts l's, made on first
// use.
func (e *env) useWorker(ctx context.Context, b *testing.B, l workerLimits) {
	b.Helper()
	w := e.workers[l.name]
	if w != nil && w == e.worker && w.Running() {
		return
	}
	if err := e.worker.Stop(stack.StopTimeout); err != nil {
		b.Fatalf("stopping %s: %v", e.worker.Name(), err)
	}
	var err error
	if w == nil {
		w, err = e.AddWorkerWithEnv(ctx, l.env...)
		e.workers[l.name] = w
	} else {
		err = w.Start(ctx)
	}
	if err != nil {
		b.Fatalf("starting the worker with %s limits: %v", l.name, err)
	}
	e.worker = w
	b.Logf("%s runs with the %s limits", w.Name(), l)
}

// ensureAdopted starts the controller unless it runs and waits until it
// has reconciled every provisioned Machine: each carries the finalizer,
// and the controller has made no request for settleQuiet. That start-up
// work (finalizer, conditions, Events) happens once per Machine and is
// not steady state.
func (e *env) ensureAdopted(ctx context.Context, b *testing.B) {
	b.Helper()
	if e.adopted {
		return
	}
	start := time.Now()
	if e.Controller == nil {
		if _, err := e.StartController(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for {
		list := &v1alpha1.MachineList{}
		if err := e.Env.Supervisor.Client.List(ctx, list, crclient.InNamespace(scaleNamespace)); err != nil {
			b.Fatal(err)
		}
		withFinalizer := 0
		for _, m := range list.Items {
			if slices.Contains(m.Finalizers, names.Finalizer) {
				withFinalizer++
			}
		}
		if withFinalizer == len(e.provisioned) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("the controller put its finalizer on %d of %d Machines: %v", withFinalizer, len(e.provisioned), ctx.Err())
		}
		sleep(ctx, 200*time.Millisecond)
	}
	last, quietSince := e.requestsOf(ctx, b, e.Controller), time.Now()
	for time.Since(quietSince) < settleQuiet {
		if ctx.Err() != nil {
			b.Fatalf("the controller did not settle: %v", ctx.Err())
		}
		sleep(ctx, 500*time.Millisecond)
		now := e.requestsOf(ctx, b, e.Controller)
		if len(now.minus(last)) > 0 {
			last, quietSince = now, time.Now()
		}
	}
	adoption := last.total(func(string) bool { return true })
	if adoption == 0 {
		b.Fatalf("the controller counted no requests while adopting: is %s on its /metrics?", requestsMetric)
	}
	b.ReportMetric(adoption/float64(len(e.provisioned)), "controller-adopt-req/machine")
	b.Logf("the controller adopted %d Running Machines in %s with %g requests (%s)",
		len(e.provisioned), time.Since(start).Round(100*time.Millisecond), adoption, last)
	e.adopted = true
}

// deprovisionWithStarter deprovisions ms through the starter API (no
// controller runs to do it), deletes them and checks nothing is left.
func (e *env) deprovisionWithStarter(ctx context.Context, b *testing.B, ms []*v1alpha1.Machine) {
	b.Helper()
	err := forEach(ctx, ms, func(ctx context.Context, _ int, m *v1alpha1.Machine) error {
		run, err := e.starter.StartDeprovision(ctx, workflows.DeprovisionInput{Namespace: m.Namespace, Name: m.Name})
		if err != nil {
			return err
		}
		if err := run.Get(ctx, nil); err != nil {
			return fmt.Errorf("deprovision %s: %w", m.Name, err)
		}
		return e.Env.Supervisor.Client.Delete(ctx, m)
	})
	if err != nil {
		b.Fatal(err)
	}
	e.assertDeprovisioned(ctx, b, ms)
}

// assertDeprovisioned fails unless the last DeprovisionMachine of each of
// ms completed and nothing of them is left on the clusters or the
// supervisor. It returns when each run closed.
func (e *env) assertDeprovisioned(ctx context.Context, b *testing.B, ms []*v1alpha1.Machine) (closed []time.Time) {
	b.Helper()
	namespace := ms[0].Namespace
	leftovers := make([][]string, len(ms))
	closed = make([]time.Time, len(ms))
	err := forEach(ctx, ms, func(ctx context.Context, i int, m *v1alpha1.Machine) error {
		id := workflows.DeprovisionWorkflowID(m.Namespace, m.Name)
		desc, err := e.Temporal().DescribeWorkflow(ctx, id, "")
		if err != nil {
			return err
		}
		if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || desc.WorkflowCloseTime == nil {
			return fmt.Errorf("workflow %s is %s", id, desc.Status)
		}
		closed[i] = *desc.WorkflowCloseTime
		leftovers[i], err = e.Leftovers(ctx, m.Namespace, m.Name)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if left := slices.Concat(leftovers...); len(left) > 0 {
		b.Fatalf("%d objects left behind: %v", len(left), firstOf(left, 10))
	}
	for _, list := range []crclient.ObjectList{&v1alpha1.MachineList{}, &v1alpha1.NetworkConfigurationList{}} {
		if err := e.Env.Supervisor.Client.List(ctx, list, crclient.InNamespace(namespace)); err != nil {
			b.Fatal(err)
		}
		if n := meta.LenList(list); n > 0 {
			b.Fatalf("%d %T items left in %s", n, list, namespace)
		}
	}
	return closed
}

// requestsOf scrapes one process's request counts.
func (e *env) requestsOf(ctx context.Context, b *testing.B, p *services.Service) requests {
	b.Helper()
	r, err := scrapeRequests(ctx, p.MetricsAddress(), e.roles)
	if err != nil {
		b.Fatalf("%s: %v", p.Name(), err)
	}
	return r
}

// requestsOfAll is the worker's and the controller's requests together.
func (e *env) requestsOfAll(ctx context.Context, b *testing.B) requests {
	b.Helper()
	return e.requestsOf(ctx, b, e.worker).plus(e.requestsOf(ctx, b, e.Controller))
}

func machineNames(ms []*v1alpha1.Machine) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// forEach calls fn for every element of s, callers at a time, and returns
// the first error.
func forEach[T any](ctx context.Context, s []T, fn func(ctx context.Context, i int, v T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(callers)
	for i, v := range s {
		g.Go(func() error { return fn(ctx, i, v) })
	}
	return g.Wait()
}
