package reliability

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.temporal.io/api/workflowservice/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// Bounds of the waits for a batch: generous, because a fault can cost an
// activity's StartToClose timeout (up to a minute) before its retry, on a
// busy two-core machine.
const (
	settleTimeout = 6 * time.Minute
	pollEvery     = 250 * time.Millisecond
)

// batch is a set of Machines of one test in one namespace, each placed on
// a KubevirtConfig by annotation.
type batch struct {
	ns     string
	names  []string
	config map[string]string // Machine name → KubevirtConfig
	// cluster names the KubeVirt cluster of a KubevirtConfig that is not
	// named after its cluster.
	cluster map[string]string
}

// newBatch creates namespace ns (with its NetworkNamespace) and describes
// n Machines prefix-1 … prefix-n placed alternately on the two clusters,
// unless place says otherwise. Nothing is created on the clusters yet.
func newBatch(t *testing.T, st *stack.Stack, ns, prefix string, n int) *batch {
	t.Helper()
	require.NoError(t, st.Namespace(t.Context(), ns))
	b := &batch{ns: ns, config: map[string]string{}}
	b.add(prefix, n, func(i int) string { return testenv.ClusterName(1 + i%2) })
	return b
}

// add describes n more Machines prefix-1 … prefix-n, placed by place(i).
func (b *batch) add(prefix string, n int, place func(i int) string) []string {
	var added []string
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i+1)
		b.names = append(b.names, name)
		b.config[name] = place(i)
		added = append(added, name)
	}
	return added
}

// create creates the named Machines (all when none is named) with the
// given annotations; the controller takes it from there.
func (b *batch) create(t *testing.T, st *stack.Stack, annotations map[string]string, only ...string) {
	t.Helper()
	if len(only) == 0 {
		only = b.names
	}
	for _, name := range only {
		m := stack.NewMachine(b.ns, name)
		maps.Copy(m.Annotations, annotations)
		m.Annotations[names.PlacementAnnotation] = b.config[name]
		require.NoError(t, st.Env.Supervisor.Client.Create(t.Context(), m), "create Machine %s/%s", b.ns, name)
	}
}

// machines reads the batch's Machines that exist, by name.
func (b *batch) machines(ctx context.Context, st *stack.Stack) (map[string]*v1alpha1.Machine, error) {
	var list v1alpha1.MachineList
	if err := st.Env.Supervisor.Client.List(ctx, &list, client.InNamespace(b.ns)); err != nil {
		return nil, fmt.Errorf("listing Machines in %s: %w", b.ns, err)
	}
	out := map[string]*v1alpha1.Machine{}
	for i := range list.Items {
		if _, ours := b.config[list.Items[i].Name]; ours {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out, nil
}

// phases counts Machines by phase, for progress and failure messages.
func phases(ms map[string]*v1alpha1.Machine) string {
	count := map[string]int{}
	for _, m := range ms {
		count[cmp.Or(m.Status.Phase, "(none)")]++
	}
	keys := slices.Sorted(maps.Keys(count))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, count[k])
	}
	return strings.Join(parts, ", ")
}

// waitRunning waits until every Machine of the batch (or those named) is
// Running and fails at once if one is Failed, with its reason.
func (b *batch) waitRunning(t *testing.T, st *stack.Stack, only ...string) {
	t.Helper()
	b.waitEach(t, st, "Running", only, func(name string, m *v1alpha1.Machine) bool {
		if m != nil && m.Status.Phase == v1alpha1.MachinePhaseFailed {
			require.Failf(t, "a Machine failed", "%s/%s: %s: %s", b.ns, name, deref(m.Status.FailureReason), deref(m.Status.FailureMessage))
		}
		return m != nil && m.Status.Phase == v1alpha1.MachinePhaseRunning
	})
}

// waitEach polls the Machines of the batch (or those named) until done
// holds for each, m being nil for a Machine that does not exist, and
// fails after settleTimeout saying how many are state and the phases.
func (b *batch) waitEach(t *testing.T, st *stack.Stack, state string, only []string, done func(name string, m *v1alpha1.Machine) bool) {
	t.Helper()
	if len(only) == 0 {
		only = b.names
	}
	ctx := t.Context()
	deadline := time.Now().Add(settleTimeout)
	for {
		ms, err := b.machines(ctx, st)
		require.NoError(t, err)
		n := 0
		for _, name := range only {
			if done(name, ms[name]) {
				n++
			}
		}
		if n == len(only) {
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "Machines not "+state+" in time", "%s: %d of %d %s after %s (%s)", b.ns, n, len(only), state, settleTimeout, phases(ms))
		}
		time.Sleep(pollEvery)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// assertOneVMEach asserts exactly one VM per Running Machine across both
// clusters, on the cluster the Machine is placed on, and no VM in the
// namespace that is not a Running Machine's.
func (b *batch) assertOneVMEach(t *testing.T, st *stack.Stack) {
	t.Helper()
	ctx := t.Context()
	ms, err := b.machines(ctx, st)
	require.NoError(t, err)
	where := map[string][]string{} // VM name → clusters
	for _, c := range st.Env.Clusters {
		var vms kubevirtv1.VirtualMachineList
		require.NoError(t, c.Client.List(ctx, &vms, client.InNamespace(b.ns)))
		for _, vm := range vms.Items {
			where[vm.Name] = append(where[vm.Name], c.Name)
		}
	}
	for name, m := range ms {
		if m.Status.Phase != v1alpha1.MachinePhaseRunning {
			continue
		}
		cluster := b.config[name]
		if c, ok := b.cluster[cluster]; ok {
			cluster = c
		}
		assert.Equal(t, []string{cluster}, where[name], "Machine %s/%s: its VMs", b.ns, name)
		delete(where, name)
	}
	assert.Empty(t, where, "VMs in %s that belong to no Running Machine", b.ns)
}

// deleteAll deletes every Machine of the batch (or those named) and waits
// until the finalizers have let them go.
func (b *batch) deleteAll(t *testing.T, st *stack.Stack, only ...string) {
	t.Helper()
	b.startDelete(t, st, only...)
	b.waitGone(t, st, only...)
}

func (b *batch) startDelete(t *testing.T, st *stack.Stack, only ...string) {
	t.Helper()
	if len(only) == 0 {
		only = b.names
	}
	for _, name := range only {
		m := stack.NewMachine(b.ns, name)
		err := st.Env.Supervisor.Client.Delete(t.Context(), m)
		require.True(t, err == nil || apierrors.IsNotFound(err), "delete Machine %s/%s: %v", b.ns, name, err)
	}
}

func (b *batch) waitGone(t *testing.T, st *stack.Stack, only ...string) {
	t.Helper()
	b.waitEach(t, st, "deleted", only, func(_ string, m *v1alpha1.Machine) bool { return m == nil })
}

// assertClean asserts that nothing of the batch's deleted Machines is
// left: no VM, VMI, PVC or NAD on any cluster, no NetworkConfiguration on
// the supervisor.
func (b *batch) assertClean(t *testing.T, st *stack.Stack) {
	t.Helper()
	ctx := t.Context()
	for _, name := range b.names {
		left, err := st.Leftovers(ctx, b.ns, name)
		require.NoError(t, err)
		assert.Empty(t, left, "Machine %s/%s left these behind", b.ns, name)
	}
	var ncs v1alpha1.NetworkConfigurationList
	require.NoError(t, st.Env.Supervisor.Client.List(ctx, &ncs, client.InNamespace(b.ns)))
	var left []string
	for _, nc := range ncs.Items {
		left = append(left, nc.Name)
	}
	assert.Empty(t, left, "NetworkConfigurations left in %s", b.ns)
}

// runs counts the workflow runs of the namespace's Machines by workflow
// ID, for one workflow type, through visibility.
func runs(t *testing.T, st *stack.Stack, ns, workflowType string) map[string]int {
	t.Helper()
	return countRuns(t, st, fmt.Sprintf("%s = '%s' AND WorkflowType = '%s'", names.SearchAttrMachineNamespace, ns, workflowType))
}

func countRuns(t *testing.T, st *stack.Stack, query string) map[string]int {
	t.Helper()
	out := map[string]int{}
	var token []byte
	for {
		resp, err := st.Temporal().ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: temporalclient.DefaultNamespace, Query: query, PageSize: 1000, NextPageToken: token,
		})
		require.NoError(t, err, "visibility query %q", query)
		for _, e := range resp.Executions {
			out[e.GetExecution().GetWorkflowId()]++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return out
		}
	}
}

// assertOneRunEach asserts, through visibility, exactly one run of
// workflowType per Machine of the batch (or those named): no duplicates,
// none missing.
func (b *batch) assertOneRunEach(t *testing.T, st *stack.Stack, workflowType string, id func(ns, name string) string, only ...string) {
	t.Helper()
	if len(only) == 0 {
		only = b.names
	}
	want := map[string]int{}
	for _, name := range only {
		want[id(b.ns, name)] = 1
	}
	var got map[string]int
	// Visibility is written a moment after the run starts.
	require.Eventually(t, func() bool {
		got = runs(t, st, b.ns, workflowType)
		for k := range got {
			if _, ok := want[k]; !ok {
				delete(got, k)
			}
		}
		return len(got) >= len(want)
	}, 30*time.Second, pollEvery, "visibility lists every %s run of %s", workflowType, b.ns)
	var dup []string
	for k, n := range got {
		if n != 1 {
			dup = append(dup, fmt.Sprintf("%s: %d runs", k, n))
		}
	}
	sort.Strings(dup)
	assert.Empty(t, dup, "%s: one %s run per Machine", b.ns, workflowType)
	assert.Len(t, got, len(want))
}

// assertNoOpenWorkflows asserts that no workflow of the namespace's
// Machines is still open.
func assertNoOpenWorkflows(t *testing.T, st *stack.Stack, ns string) {
	t.Helper()
	query := fmt.Sprintf("%s = '%s' AND ExecutionStatus = 'Running'", names.SearchAttrMachineNamespace, ns)
	var open map[string]int
	// Visibility shows a close a moment after it happened.
	ok := assert.Eventually(t, func() bool {
		open = countRuns(t, st, query)
		return len(open) == 0
	}, 30*time.Second, pollEvery)
	if !ok {
		t.Errorf("workflows of %s still open: %v", ns, slices.Sorted(maps.Keys(open)))
	}
}

// vmCount is how many VMs the namespace has across both clusters.
func vmCount(t *testing.T, st *stack.Stack, ns string) int {
	t.Helper()
	n := 0
	for _, c := range st.Env.Clusters {
		var vms kubevirtv1.VirtualMachineList
		require.NoError(t, c.Client.List(t.Context(), &vms, client.InNamespace(ns)))
		n += len(vms.Items)
	}
	return n
}

// midway waits until the batch is under way: at least min of its VMs
// exist and at most max of its Machines are Running. It fails if the
// batch got past that before the test could act.
func (b *batch) midway(t *testing.T, st *stack.Stack, minVMs, maxRunning int) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		ms, err := b.machines(t.Context(), st)
		require.NoError(t, err)
		running := 0
		for _, m := range ms {
			if m.Status.Phase == v1alpha1.MachinePhaseRunning {
				running++
			}
		}
		require.LessOrEqual(t, running, maxRunning, "%s: the batch ran ahead of the test (%s)", b.ns, phases(ms))
		if vmCount(t, st, b.ns) >= minVMs {
			t.Logf("%s under way: %s", b.ns, phases(ms))
			return
		}
		require.True(t, time.Now().Before(deadline), "%s: the batch did not get under way (%s)", b.ns, phases(ms))
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRuns waits until visibility lists at least min runs of workflowType
// for the namespace's Machines.
func waitRuns(t *testing.T, st *stack.Stack, ns, workflowType string, min int) {
	t.Helper()
	require.Eventually(t, func() bool { return len(runs(t, st, ns, workflowType)) >= min },
		time.Minute, 20*time.Millisecond, "%s: %d %s runs", ns, min, workflowType)
}

// timedOut lists the activities of a workflow's last run that Temporal
// retried after a timeout (StartToClose or heartbeat): the ones a lost
// worker had in flight. An activity's history records its last attempt
// only, with the failure of the one before.
func timedOut(t *testing.T, st *stack.Stack, id string) []string {
	t.Helper()
	h, err := history(t.Context(), st.Temporal(), id, "")
	require.NoError(t, err)
	scheduled := map[int64]string{}
	var out []string
	for _, e := range h.Events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[e.EventId] = a.GetActivityType().GetName()
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.Attempt > 1 && a.GetLastFailure().GetTimeoutFailureInfo() != nil {
			out = append(out, scheduled[a.ScheduledEventId])
		}
	}
	return out
}
