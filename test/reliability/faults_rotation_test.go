package reliability

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
	"github.com/machineflow/machineflow/workflows"
)

// pickupTimeout bounds how long the worker takes to use a rotated
// kubeconfig: the ClientManager's revalidation interval (30 s) plus the
// next use.
const pickupTimeout = 2 * time.Minute

// A kubeconfig Secret rotated while Machines keep arriving: the worker
// builds a client from the new Secret within the revalidation interval,
// without a restart, and once it has, the old credentials are revoked and
// provisioning goes on. Rotation is done as an operator would: a new user
// bound by RBAC, the Secret rewritten, the old user's binding deleted once
// the worker shows it uses the new one. The first rotation moves off the
// harness's system:masters user, which cannot be revoked, onto a user that
// can; the second one is the rotation under test.
func TestKubeconfigRotatedDuringBatch(t *testing.T) {
	st := need(t)
	cluster := st.Env.Cluster(testenv.ClusterName(1))
	worker := st.Workers[0]
	pid := worker.Pid()
	t.Cleanup(func() {
		// Back to the cluster's own kubeconfig for the tests after this one.
		assert.NoError(t, st.Env.RegisterCluster(context.Background(), cluster.Name, cluster.Kubeconfig))
	})

	b := newBatch(t, st, "rel-rotation", "vm", 0)
	trickle := newTrickle(t, st, b, cluster.Name, 2*time.Second)

	first := rotate(t, st, cluster, "rel-rotation-first")
	waitPickup(t, worker, cluster.Name, first)
	second := rotate(t, st, cluster, "rel-rotation-second")
	assert.Equal(t, true, waitPickup(t, worker, cluster.Name, second)["replaced"], "the client in use was replaced")
	revokedAt := revoke(t, cluster, first)
	t.Logf("revoked user %s at %d Machines; %s goes on with user %s", first.user, trickle.count(), worker.Name(), second.user)

	// Machines created after the revocation can only work with the new
	// credentials.
	trickle.until(t, revokedAt, 4)
	b.waitRunning(t, st)
	t.Logf("%d Machines Running across two rotations", len(b.names))
	assert.Equal(t, pid, worker.Pid(), "the worker was not restarted")
	assert.True(t, worker.Running())
	b.assertOneVMEach(t, st)
	b.assertOneRunEach(t, st, workflows.ProvisionMachineName, workflows.ProvisionWorkflowID)
	b.deleteAll(t, st)
	b.assertClean(t, st)
	assertNoOpenWorkflows(t, st, b.ns)
}

// credentials is one user of a cluster, bound to cluster-admin.
type credentials struct {
	user, binding string
	kubeconfig    []byte
	at            time.Time // when the Secret was rewritten with it
}

// rotate makes a new user with a binding, writes its kubeconfig into the
// cluster's Secret and returns it.
func rotate(t *testing.T, st *stack.Stack, cluster *testenv.Cluster, user string) credentials {
	t.Helper()
	ctx := t.Context()
	kubeconfig, err := cluster.AddUser(user)
	require.NoError(t, err)
	rememberSecret("rotated kubeconfig "+user, kubeconfig)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	require.NoError(t, cluster.Client.Create(ctx, binding))
	c := clientFor(t, st, kubeconfig)
	require.Eventually(t, func() bool { return c.List(ctx, &kubevirtv1.VirtualMachineList{}) == nil },
		10*time.Second, 50*time.Millisecond, "user %s may list VMs", user)
	cred := credentials{user: user, binding: binding.Name, kubeconfig: kubeconfig, at: time.Now()}
	require.NoError(t, st.Env.RegisterCluster(ctx, cluster.Name, kubeconfig))
	return cred
}

// revoke deletes the user's binding and waits until the cluster refuses
// it.
func revoke(t *testing.T, cluster *testenv.Cluster, cred credentials) time.Time {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, cluster.Client.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cred.binding}}))
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cred.kubeconfig)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: cluster.Client.Scheme()})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return apierrors.IsForbidden(c.List(ctx, &kubevirtv1.VirtualMachineList{})) },
		10*time.Second, 50*time.Millisecond, "user %s is revoked", cred.user)
	return time.Now()
}

func clientFor(t *testing.T, st *stack.Stack, kubeconfig []byte) client.Client {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: st.Env.Scheme})
	require.NoError(t, err)
	return c
}

// waitPickup waits until the worker logs that it built a client for the
// config after cred was written, and returns that log line: the client
// was built from cred's kubeconfig, the Secret's only content since. Its
// "replaced" is true when a client built from an older Secret was in
// use, which is a rotation picked up without a restart.
func waitPickup(t *testing.T, w *services.Service, config string, cred credentials) map[string]any {
	t.Helper()
	var found map[string]any
	require.Eventually(t, func() bool {
		for _, line := range logLines(t, w.LogPath()) {
			if line["msg"] != "built client" || line["kubevirtConfig"] != config {
				continue
			}
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(line["time"]))
			require.NoError(t, err)
			if ts.After(cred.at) {
				t.Logf("%s built its %s client from user %s's kubeconfig %s after the rotation (replaced: %v)",
					w.Name(), config, cred.user, ts.Sub(cred.at).Round(time.Millisecond), line["replaced"])
				found = line
				return true
			}
		}
		return false
	}, pickupTimeout, 250*time.Millisecond, "%s builds its %s client from the rotated Secret", w.Name(), config)
	return found
}

// logLines decodes a JSON log, leaving out a line still being written.
func logLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	}
	return testutil.JSONLines(t, string(data))
}

// trickle creates a Machine on a cluster every interval, so that
// activities keep using the cluster's client across the rotations. The
// batch is the trickle's until it is halted.
type trickle struct {
	mu    sync.Mutex
	stop  chan struct{}
	done  chan struct{}
	times []time.Time // creation time of each Machine
}

func newTrickle(t *testing.T, st *stack.Stack, b *batch, config string, every time.Duration) *trickle {
	t.Helper()
	tr := &trickle{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tr.done)
		for i := 1; ; i++ {
			name := b.add(fmt.Sprintf("vm-%d", i), 1, func(int) string { return config })[0]
			m := stack.NewMachine(b.ns, name)
			m.Annotations[names.PlacementAnnotation] = config
			// Boots long enough that some waits span a rotation.
			m.Annotations[kubevirtsim.BootDelayAnnotation] = "3s"
			if err := st.Env.Supervisor.Client.Create(context.Background(), m); err != nil {
				t.Errorf("create Machine %s/%s: %v", b.ns, name, err)
				return
			}
			tr.mu.Lock()
			tr.times = append(tr.times, time.Now())
			tr.mu.Unlock()
			select {
			case <-tr.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	t.Cleanup(tr.halt)
	return tr
}

func (tr *trickle) halt() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
}

func (tr *trickle) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.times)
}

// until lets the trickle create n more Machines after since, then stops
// it.
func (tr *trickle) until(t *testing.T, since time.Time, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		after := 0
		for _, at := range tr.times {
			if at.After(since) {
				after++
			}
		}
		return after >= n
	}, time.Minute, 100*time.Millisecond)
	tr.halt()
}
