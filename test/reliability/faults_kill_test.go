package reliability

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/activities/contract"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// killPoint is one activity of a workflow type in which the worker is
// killed.
type killPoint struct {
	workflow, activity string
}

func (k killPoint) String() string { return k.workflow + "/" + k.activity }

// killPointHistories are the recorded histories (workflows/testdata) of
// the main paths; the activities they schedule are the kill points.
var killPointHistories = map[string]string{
	"provision-success.json":                  workflows.ProvisionMachineName,
	"deprovision-provisioned.json":            workflows.DeprovisionMachineName,
	"deprovision-cancels-open-provision.json": workflows.DeprovisionMachineName,
}

// writes are the activities held at their first write rather than their
// first request: the write then lands after the worker died, and the
// retry must adopt what it finds. The others only read (or, like
// AwaitWorkflowClosed, talk to Temporal alone).
var writes = map[string]bool{
	contract.UpdateMachineStatusName:        true,
	contract.EnsureNamespaceName:            true,
	contract.EnsureVolumesName:              true,
	contract.EnsureNetworkName:              true,
	contract.EnsureVirtualMachineName:       true,
	contract.DeleteVirtualMachineName:       true,
	contract.DeleteVolumesName:              true,
	contract.DeleteNetworkName:              true,
	contract.DeleteNetworkConfigurationName: true,
}

// reads are the activities held at their first request.
var reads = map[string]bool{
	contract.ResolvePlacementName:      true,
	contract.ValidateClusterName:       true,
	contract.LoadMachineName:           true,
	contract.WaitForVirtualMachineName: true,
	contract.LookupPlacementName:       true,
}

// killPoints lists every activity the main paths of ProvisionMachine and
// DeprovisionMachine schedule, from their recorded histories, so that an
// activity added to a workflow is a kill point without editing this test.
func killPoints(t *testing.T) []killPoint {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	var out []killPoint
	for _, file := range slices.Sorted(maps.Keys(killPointHistories)) {
		f, err := os.Open(filepath.Join(root, "workflows", "testdata", file))
		require.NoError(t, err)
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		require.NoError(t, f.Close())
		require.NoError(t, err, file)
		for _, e := range h.Events {
			if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
				k := killPoint{killPointHistories[file], a.GetActivityType().GetName()}
				if !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	}
	return out
}

// killTarget is one Machine driven to one kill point.
type killTarget struct {
	killPoint
	b        *batch
	name     string
	config   string
	remote   *stack.Gate
	sup, rem *stack.Hold
	held     *stack.HeldRequest
}

func (k *killTarget) provisionID() string   { return workflows.ProvisionWorkflowID(k.b.ns, k.name) }
func (k *killTarget) deprovisionID() string { return workflows.DeprovisionWorkflowID(k.b.ns, k.name) }

// id is the workflow the kill point is in.
func (k *killTarget) id() string {
	if k.workflow == workflows.ProvisionMachineName {
		return k.provisionID()
	}
	return k.deprovisionID()
}

// started reports whether activity is in flight in workflow id.
func started(ctx context.Context, st *stack.Stack, id, activity string) (bool, error) {
	desc, err := st.Temporal().DescribeWorkflow(ctx, id, "")
	if err != nil {
		return false, fmt.Errorf("describe %s: %w", id, err)
	}
	if desc.RawResponse.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return false, fmt.Errorf("%s closed (%s) before its kill point", id, desc.RawResponse.GetWorkflowExecutionInfo().GetStatus())
	}
	for _, p := range desc.RawResponse.GetPendingActivities() {
		if p.GetActivityType().GetName() == activity && p.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			return true, nil
		}
	}
	return false, nil
}

// step lets the Machine's requests through one at a time until it holds
// the one of the kill point: a request made while the kill point's
// activity is in flight (its first write, for writes). A request that is
// not it is released at once, so the Machine moves along its workflow at
// its own pace with exactly one request in the gates at a time.
func (k *killTarget) step(ctx context.Context, st *stack.Stack) error {
	// AwaitWorkflowClosed talks to Temporal only: the provision it waits
	// for is held in its compensation's VM delete instead.
	id, activity, write := k.id(), k.activity, writes[k.activity]
	if k.activity == workflows.AwaitWorkflowClosedName {
		id, activity, write = k.provisionID(), contract.DeleteVirtualMachineName, true
	}
	for {
		var r *stack.HeldRequest
		select {
		case r = <-k.sup.C():
		case r = <-k.rem.C():
		case <-ctx.Done():
			return fmt.Errorf("%s: kill point not reached: %w", k, ctx.Err())
		}
		in, err := started(ctx, st, id, activity)
		if err != nil {
			r.Release()
			return fmt.Errorf("%s: %w", k, err)
		}
		if in && (!write || r.Mutating()) {
			k.held = r
			break
		}
		r.Release()
	}
	if k.activity != workflows.AwaitWorkflowClosedName {
		return nil
	}
	for {
		in, err := started(ctx, st, k.deprovisionID(), k.activity)
		if in || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: kill point not reached: %w", k, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// reachTimeout bounds the drive of every Machine to its kill point.
const reachTimeout = 3 * time.Minute

// The worker killed with SIGKILL inside each activity of ProvisionMachine
// and DeprovisionMachine, once per activity, and started again: every
// provision completes with one VM, every deprovision leaves nothing, and
// no workflow runs twice.
//
// Each kill point is one Machine. The worker reaches the supervisor and
// each Machine's KubevirtConfig (a config per Machine, all on kubevirt-2)
// through stack.Gates, which hold every request of that Machine; the test
// releases them one by one until the Machine's held request belongs to its
// kill point's activity (its first write, for activities that write). With
// every Machine held at its kill point, one SIGKILL hits all of them; the
// held requests are then released, so the writes land with their caller
// gone, and the worker is started again. Temporal notices the lost
// activities by their StartToClose or heartbeat timeout (at most a minute)
// and retries them on the new worker, which the histories show.
func TestWorkerKilledInEachActivity(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	points := killPoints(t)
	for _, k := range points {
		require.True(t, writes[k.activity] || reads[k.activity] || k.activity == workflows.AwaitWorkflowClosedName,
			"kill point %s: no way to hold it; add the activity to writes or reads", k)
	}
	t.Logf("%d kill points: %v", len(points), points)

	// The supervisor through a gate, for a worker of its own.
	supGate, err := stack.NewGate(st.Env.Supervisor.Config)
	require.NoError(t, err)
	t.Cleanup(supGate.Close)
	supKubeconfig, err := supGate.Kubeconfig()
	require.NoError(t, err)
	rememberSecret("kubeconfig of the supervisor gate", supKubeconfig)
	kubeconfigPath := filepath.Join(t.TempDir(), "supervisor-gate.kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfigPath, supKubeconfig, 0o600))

	// A KubevirtConfig per Machine, through a gate to kubevirt-2.
	cluster := st.Env.Cluster(testenv.ClusterName(2))
	upstream, err := clientcmd.RESTConfigFromKubeConfig(cluster.Kubeconfig)
	require.NoError(t, err)
	var targets []*killTarget
	for i, k := range points {
		g, err := stack.NewGate(upstream)
		require.NoError(t, err)
		t.Cleanup(g.Close)
		kubeconfig, err := g.Kubeconfig()
		require.NoError(t, err)
		config := fmt.Sprintf("rel-kill-%d", i+1)
		rememberSecret("kubeconfig of KubevirtConfig "+config, kubeconfig)
		require.NoError(t, st.Env.RegisterCluster(ctx, config, kubeconfig))
		b := newBatch(t, st, config, "vm", 0)
		b.add("vm", 1, func(int) string { return config })
		b.cluster = map[string]string{config: cluster.Name}
		targets = append(targets, &killTarget{killPoint: k, b: b, name: b.names[0], config: config, remote: g})
	}
	t.Cleanup(func() { unregister(t, st, targets) })

	// Only the gated worker may run the Machines' activities.
	plain := st.Workers[0]
	require.NoError(t, plain.Stop(stack.StopTimeout))
	gated, err := st.AddWorkerWithEnv(ctx, "KUBECONFIG="+kubeconfigPath)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, gated.Stop(stack.StopTimeout))
		assert.NoError(t, plain.Start(context.Background()))
	})

	// Machines to deprovision exist first, through the open gates; the one
	// whose deprovision waits for its provision never boots.
	for _, k := range targets {
		if k.workflow != workflows.DeprovisionMachineName {
			continue
		}
		var annotations map[string]string
		if k.activity == workflows.AwaitWorkflowClosedName {
			annotations = map[string]string{kubevirtsim.NeverReadyAnnotation: "true"}
		}
		k.b.create(t, st, annotations)
	}
	for _, k := range targets {
		if k.workflow != workflows.DeprovisionMachineName {
			continue
		}
		if k.activity == workflows.AwaitWorkflowClosedName {
			require.Eventually(t, func() bool {
				in, err := started(ctx, st, k.provisionID(), contract.WaitForVirtualMachineName)
				return err == nil && in
			}, reachTimeout, 100*time.Millisecond, "%s: its provision waits for the boot", k)
			continue
		}
		k.b.waitRunning(t, st)
	}

	// Hold everything of each Machine, start or delete it, and drive it
	// to its kill point.
	start := time.Now()
	for _, k := range targets {
		prefix := "/namespaces/" + k.b.ns + "/"
		k.sup = supGate.Hold(func(r *http.Request) bool { return strings.Contains(r.URL.Path, prefix) })
		k.rem = k.remote.Hold(func(*http.Request) bool { return true })
		if k.workflow == workflows.ProvisionMachineName {
			k.b.create(t, st, nil)
		} else {
			k.b.startDelete(t, st)
		}
	}
	reachCtx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	var g errgroup.Group
	for _, k := range targets {
		g.Go(func() error { return k.step(reachCtx, st) })
	}
	require.NoError(t, g.Wait())
	for _, k := range targets {
		t.Logf("kill point %-45s held at %s", k, k.held)
	}
	t.Logf("%d Machines at their kill points in %s", len(targets), time.Since(start).Round(100*time.Millisecond))

	require.NoError(t, gated.Kill())
	for _, k := range targets {
		k.sup.Close()
		k.rem.Close()
	}
	killed := time.Now()
	require.NoError(t, gated.Start(ctx))

	for _, k := range targets {
		if k.workflow == workflows.ProvisionMachineName {
			k.b.waitRunning(t, st)
		} else {
			k.b.waitGone(t, st)
		}
	}
	t.Logf("every Machine settled %s after the kill", time.Since(killed).Round(100*time.Millisecond))

	for _, k := range targets {
		assert.Contains(t, timedOut(t, st, k.id()), k.activity,
			"%s: the killed worker had the activity in flight, and Temporal retried it after a timeout", k)
		k.b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
		if k.workflow == workflows.ProvisionMachineName {
			k.b.assertOneVMEach(t, st)
			continue
		}
		k.b.assertOneRunEach(t, st, workflows.DeprovisionMachineName, workflows.DeprovisionWorkflowID)
		k.b.assertClean(t, st)
	}

	for _, k := range targets {
		if k.workflow == workflows.ProvisionMachineName {
			k.b.startDelete(t, st)
		}
	}
	for _, k := range targets {
		k.b.waitGone(t, st)
		k.b.assertClean(t, st)
		assertNoOpenWorkflows(t, st, k.b.ns)
	}
}

// unregister removes the Machines' KubevirtConfigs and Secrets.
func unregister(t *testing.T, st *stack.Stack, targets []*killTarget) {
	ctx := context.Background()
	c := st.Env.Supervisor.Client
	for _, k := range targets {
		kvc := &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: k.config}}
		assert.NoError(t, crclient.IgnoreNotFound(c.Delete(ctx, kvc)), "delete KubevirtConfig %s", k.config)
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: st.Env.ConfigNamespace, Name: testenv.KubeconfigSecretName(k.config)}}
		assert.NoError(t, crclient.IgnoreNotFound(c.Delete(ctx, secret)), "delete Secret of %s", k.config)
	}
}
