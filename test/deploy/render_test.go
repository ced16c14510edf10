package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// Names the manifests and the tests share.
const (
	namespace        = "machineflow-system"
	workerName       = "machineflow-worker"
	controllerName   = "machineflow-controller"
	temporalDevName  = "temporal-dev"
	mtlsSecretName   = "machineflow-temporal-tls"
	apiKeySecretName = "machineflow-temporal-api-key"
)

// root is one kustomization the tests render.
type root struct {
	name string // slash path from the repository root, for messages
	dir  string
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := testenv.RepoRoot()
	require.NoError(t, err)
	return dir
}

// roots lists the base, every overlay in deploy/overlays and the test-only
// overlays in testdata/overlays, so a new overlay is tested without editing
// this list.
func roots(t testing.TB) []root {
	t.Helper()
	repo := repoRoot(t)
	rs := []root{{name: "deploy/base", dir: filepath.Join(repo, "deploy", "base")}}
	for _, pattern := range []string{"deploy/overlays/*/kustomization.yaml", "test/deploy/testdata/overlays/*/kustomization.yaml"} {
		files, err := filepath.Glob(filepath.Join(repo, filepath.FromSlash(pattern)))
		require.NoError(t, err)
		for _, f := range files {
			dir := filepath.Dir(f)
			rel, err := filepath.Rel(repo, dir)
			require.NoError(t, err)
			rs = append(rs, root{name: filepath.ToSlash(rel), dir: dir})
		}
	}
	return rs
}

// manifests is the output of one kustomization.
type manifests struct {
	root string
	objs []*unstructured.Unstructured
}

// render runs kustomize on r as `kubectl apply -k` would.
func render(t testing.TB, r root) manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), r.dir)
	require.NoError(t, err, "kustomize build %s", r.name)
	m := manifests{root: r.name}
	for _, res := range resMap.Resources() {
		// Through JSON, so that numbers are int64 or float64 as
		// unstructured objects require.
		b, err := res.MarshalJSON()
		require.NoError(t, err, "%s: %s", r.name, res.CurId())
		obj := &unstructured.Unstructured{}
		require.NoError(t, obj.UnmarshalJSON(b), "%s: %s", r.name, res.CurId())
		m.objs = append(m.objs, obj)
	}
	require.NotEmpty(t, m.objs, "%s renders nothing", r.name)
	return m
}

func (m manifests) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m.objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// find returns the object or nil; ConfigMap names match without the hash
// suffix kustomize appends to generated ones.
func (m manifests) find(kind, ns, name string) *unstructured.Unstructured {
	for _, o := range m.ofKind(kind) {
		if o.GetNamespace() == ns && (o.GetName() == name || kind == "ConfigMap" && strings.HasPrefix(o.GetName(), name+"-")) {
			return o
		}
	}
	return nil
}

func (m manifests) deployments(t testing.TB) []*appsv1.Deployment {
	t.Helper()
	var out []*appsv1.Deployment
	for _, o := range m.ofKind("Deployment") {
		out = append(out, convert[appsv1.Deployment](t, o))
	}
	return out
}

func (m manifests) deployment(t testing.TB, name string) *appsv1.Deployment {
	t.Helper()
	o := m.find("Deployment", namespace, name)
	require.NotNil(t, o, "%s: no Deployment %s/%s", m.root, namespace, name)
	return convert[appsv1.Deployment](t, o)
}

func convert[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true),
		"%s %s/%s does not decode strictly", o.GetKind(), o.GetNamespace(), o.GetName())
	return out
}

// env is a container's environment as the kubelet assembles it for a pod in
// namespace ns: envFrom first, then env. Values from Secrets are
// placeholders naming the Secret, which is enough to tell set from unset.
func (m manifests) env(t testing.TB, ns string, c corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef, "%s: container %s: only envFrom ConfigMaps are expected", m.root, c.Name)
		cm := m.find("ConfigMap", ns, from.ConfigMapRef.Name)
		require.NotNil(t, cm, "%s: container %s: envFrom ConfigMap %s/%s is not rendered", m.root, c.Name, ns, from.ConfigMapRef.Name)
		data, _, err := unstructured.NestedStringMap(cm.Object, "data")
		require.NoError(t, err)
		for k, v := range data {
			out[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = fmt.Sprintf("<Secret %s key %s>", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			out[e.Name] = ns
		default:
			t.Fatalf("%s: container %s: env %s: unexpected valueFrom", m.root, c.Name, e.Name)
		}
	}
	return out
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// kustomization is the part of a kustomization.yaml the coverage test reads.
type kustomization struct {
	Resources  []string `json:"resources"`
	Components []string `json:"components"`
}

// reachedComponents adds to seen every component directory that the
// kustomization in dir uses, directly or through its resources.
func reachedComponents(t testing.TB, dir string, seen map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	var k kustomization
	require.NoError(t, yaml.Unmarshal(b, &k), "%s", dir)
	for _, c := range k.Components {
		c = filepath.Join(dir, c)
		seen[c] = true
		reachedComponents(t, c, seen)
	}
	for _, r := range k.Resources {
		r = filepath.Join(dir, r)
		if st, err := os.Stat(r); err == nil && st.IsDir() {
			reachedComponents(t, r, seen)
		}
	}
}

// TestEveryComponentIsRendered keeps components from going untested: each
// one must be used by a kustomization that the other tests render.
func TestEveryComponentIsRendered(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range roots(t) {
		reachedComponents(t, r.dir, seen)
	}
	dirs, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "components", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, d := range dirs {
		require.True(t, seen[d], "component %s is used by no overlay in deploy/overlays or test/deploy/testdata/overlays", d)
	}
}

// BenchmarkRender reports the cost of rendering each kustomization, which
// every test here pays once per root.
func BenchmarkRender(b *testing.B) {
	for _, r := range roots(b) {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				render(b, r)
			}
		})
	}
}
