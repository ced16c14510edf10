package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

const fieldOwner = client.FieldOwner("machineflow-deploy-test")

// clusterName is the KubeVirt cluster that needEnv starts and registers
// on the supervisor.
const clusterName = "kubevirt-1"

// The API servers are started by the first test that needs them and
// shared by the rest; TestMain stops them.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func needEnv(t *testing.T) *testenv.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped with -short: needs the testenv API servers (`make tools`)")
	}
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// The supervisor RBAC test needs a KubevirtConfig and its
		// kubeconfig Secret to exist; the KubeVirt cluster behind them
		// takes deploy/kubevirt-cluster.
		env, envErr = testenv.Start(ctx, testenv.Options{Clusters: 1})
	})
	require.NoError(t, envErr)
	return env
}

// warnings collects the API server's warning headers (Pod Security
// violations among them), which client-go would otherwise only log.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// adminClient is the supervisor's admin with warnings collected.
func adminClient(t *testing.T, e *testenv.Env) (client.Client, *warnings) {
	t.Helper()
	return clusterClient(t, e.Supervisor)
}

// clusterClient is the admin of c with warnings collected.
func clusterClient(t *testing.T, c *testenv.Cluster) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandlerWithContext = w
	cl, err := client.New(cfg, client.Options{Scheme: c.Client.Scheme()})
	require.NoError(t, err)
	return cl, w
}

// installServiceMonitorCRD installs (or updates) the testdata stand-in for
// the Prometheus Operator's CRD and waits until it is served.
func installServiceMonitorCRD(t *testing.T, e *testenv.Env) {
	t.Helper()
	_, err := envtest.InstallCRDs(e.Supervisor.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(repoRoot(t), "test", "deploy", "testdata", "crds")},
		ErrorIfPathMissing: true,
	})
	require.NoError(t, err)
}

// apply server-side applies obj, for real or as a dry-run. obj is left as
// rendered: the server's answer goes into a copy.
func apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured, dryRun bool) error {
	opts := []client.ApplyOption{fieldOwner, client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), opts...); err != nil {
		return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// applyNamespaces applies the Namespaces of m for real: a dry-run of the
// objects inside them needs them to exist, with their Pod Security labels.
func applyNamespaces(t *testing.T, c client.Client, m manifests) {
	t.Helper()
	for _, ns := range m.ofKind("Namespace") {
		require.NoError(t, apply(t.Context(), c, ns, false))
	}
}

// TestServerSideDryRun applies every object of every kustomization to the
// supervisor with a server-side dry-run: each must be accepted without a
// warning, in particular without a Pod Security "restricted" violation.
func TestServerSideDryRun(t *testing.T) {
	e := needEnv(t)
	installServiceMonitorCRD(t, e)
	c, w := adminClient(t, e)
	dryRun := func(t *testing.T, c client.Client, w *warnings, r root) {
		m := render(t, r)
		applyNamespaces(t, c, m)
		w.take()
		for _, obj := range m.objs {
			assert.NoError(t, apply(t.Context(), c, obj, true))
			assert.Empty(t, w.take(), "%s: warnings for %s %s/%s", m.root, obj.GetKind(), obj.GetNamespace(), obj.GetName())
		}
	}
	for _, r := range roots(t) {
		t.Run(r.name, func(t *testing.T) { dryRun(t, c, w, r) })
	}
	// deploy/kubevirt-cluster goes to the KubeVirt cluster, which has the
	// KubeVirt CRDs its rules name.
	r := kubevirtClusterRoot(t)
	t.Run(r.name, func(t *testing.T) {
		kc, kw := clusterClient(t, e.Cluster(clusterName))
		dryRun(t, kc, kw, r)
	})
}

// TestServerSideDryRunRejects shows that the dry-run above can fail: the
// API server rejects an unknown field, the stand-in ServiceMonitor CRD
// rejects a misspelt one, and Pod Security warns about a container that
// may escalate privileges.
func TestServerSideDryRunRejects(t *testing.T) {
	e := needEnv(t)
	installServiceMonitorCRD(t, e)
	c, w := adminClient(t, e)
	m := render(t, root{name: "deploy/overlays/monitoring", dir: filepath.Join(repoRoot(t), "deploy", "overlays", "monitoring")})
	applyNamespaces(t, c, m)
	worker := m.find("Deployment", namespace, workerName)
	sm := m.find("ServiceMonitor", namespace, "machineflow")
	require.NotNil(t, worker)
	require.NotNil(t, sm)

	t.Run("unknown field", func(t *testing.T) {
		obj := worker.DeepCopy()
		require.NoError(t, unstructured.SetNestedField(obj.Object, int64(2), "spec", "replica"))
		assert.ErrorContains(t, apply(t.Context(), c, obj, true), ".spec.replica: field not declared in schema")
	})
	t.Run("unknown ServiceMonitor field", func(t *testing.T) {
		obj := sm.DeepCopy()
		require.NoError(t, unstructured.SetNestedField(obj.Object, "30s", "spec", "interval"))
		assert.ErrorContains(t, apply(t.Context(), c, obj, true), ".spec.interval: field not declared in schema")
	})
	t.Run("privilege escalation", func(t *testing.T) {
		obj := worker.DeepCopy()
		containers, _, err := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "containers")
		require.NoError(t, err)
		require.NoError(t, unstructured.SetNestedField(containers[0].(map[string]any), true, "securityContext", "allowPrivilegeEscalation"))
		require.NoError(t, unstructured.SetNestedSlice(obj.Object, containers, "spec", "template", "spec", "containers"))
		w.take()
		require.NoError(t, apply(t.Context(), c, obj, true))
		got := w.take()
		require.NotEmpty(t, got, "no Pod Security warning")
		assert.Contains(t, got[0], "allowPrivilegeEscalation")
	})
}
