package deploy

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/machineflow/machineflow/internal/names"
)

// overlayExpectations says what distinguishes each kustomization. Every
// rendered root needs an entry, so a new overlay comes with its own checks.
var overlayExpectations = map[string]func(t *testing.T, m manifests){
	"deploy/base": func(t *testing.T, m manifests) {
		assert.Equal(t, int32(2), ptr.Deref(m.deployment(t, workerName).Spec.Replicas, 0), "worker replicas")
		assert.Equal(t, int32(1), ptr.Deref(m.deployment(t, controllerName).Spec.Replicas, 0), "controller replicas")
		assert.Empty(t, m.ofKind("CustomResourceDefinition"), "the base installs no CRDs")
		assertTemporal(t, m, false, "")
	},
	"deploy/overlays/production": func(t *testing.T, m manifests) {
		assert.Empty(t, m.ofKind("CustomResourceDefinition"), "production expects the vitistack CRDs installed")
		assert.Nil(t, m.find("Deployment", namespace, temporalDevName), "production uses an existing Temporal")
		assertTemporal(t, m, true, "")
		for _, name := range []string{workerName, controllerName} {
			assertSecretVolume(t, m.deployment(t, name), mtlsSecretName)
		}
	},
	"deploy/overlays/monitoring": func(t *testing.T, m manifests) {
		assertTemporal(t, m, true, "")
		sms := m.ofKind("ServiceMonitor")
		require.Len(t, sms, 1)
		assertScrapes(t, m, sms[0], "machineflow-worker-metrics", "machineflow-controller-metrics")
	},
	"deploy/overlays/all-in-one": func(t *testing.T, m manifests) {
		assertCRDs(t, m)
		assertTemporal(t, m, false, "")
		assert.Equal(t, int32(1), ptr.Deref(m.deployment(t, workerName).Spec.Replicas, 0), "worker replicas")
		assertDevServer(t, m)
		assert.NotNil(t, m.find("RoleBinding", "default", "machineflow-worker-cloudinit"), "cloud-init opt-in for namespace default")
	},
	"test/deploy/testdata/overlays/api-key": func(t *testing.T, m manifests) {
		assertTemporal(t, m, true, "<Secret "+apiKeySecretName+" key api-key>")
	},
}

func TestOverlays(t *testing.T) {
	for _, r := range roots(t) {
		t.Run(r.name, func(t *testing.T) {
			expect, ok := overlayExpectations[r.name]
			require.True(t, ok, "add the expectations of %s to overlayExpectations", r.name)
			expect(t, render(t, r))
		})
	}
}

// assertTemporal checks how both Deployments connect to Temporal: with TLS
// or not, and with the API key (a placeholder naming its Secret) or none.
func assertTemporal(t *testing.T, m manifests, tls bool, apiKey string) {
	t.Helper()
	for _, name := range []string{workerName, controllerName} {
		d := m.deployment(t, name)
		where := m.root + ": Deployment " + name
		opts := temporalOptions(t, where, m.env(t, d.Namespace, d.Spec.Template.Spec.Containers[0]))
		assert.Equal(t, tls, opts.TLSEnabled(), "%s: TLS", where)
		assert.Equal(t, apiKey, opts.APIKey, "%s: TEMPORAL_API_KEY", where)
	}
}

func assertSecretVolume(t *testing.T, d *appsv1.Deployment, secret string) {
	t.Helper()
	assert.True(t, slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool {
		return v.Secret != nil && v.Secret.SecretName == secret
	}), "Deployment %s mounts no Secret %s", d.Name, secret)
}

// assertCRDs checks that every CRD synced into deploy/crds/vitistack is
// rendered.
func assertCRDs(t *testing.T, m manifests) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "deploy", "crds", "vitistack", "vitistack.io_*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	crds := m.ofKind("CustomResourceDefinition")
	assert.Len(t, crds, len(files), "%s: CRDs", m.root)
	for _, want := range []string{"machines", "kubevirtconfigs", "machineclasses", "networknamespaces", "networkconfigurations"} {
		assert.NotNil(t, m.find("CustomResourceDefinition", "", want+".vitistack.io"), "%s: CRD %s.vitistack.io", m.root, want)
	}
}

// assertDevServer checks that TEMPORAL_ADDRESS reaches the in-cluster dev
// server, which registers machineflow's search attributes and runs the CLI
// version the Makefile builds.
func assertDevServer(t *testing.T, m manifests) {
	t.Helper()
	d := m.deployment(t, temporalDevName)
	c := d.Spec.Template.Spec.Containers[0]

	env := m.env(t, namespace, m.deployment(t, workerName).Spec.Template.Spec.Containers[0])
	host, port, err := net.SplitHostPort(env["TEMPORAL_ADDRESS"])
	require.NoError(t, err)
	svcName, ok := strings.CutSuffix(host, "."+namespace+".svc.cluster.local")
	require.True(t, ok, "TEMPORAL_ADDRESS %s is not a Service in %s", env["TEMPORAL_ADDRESS"], namespace)
	o := m.find("Service", namespace, svcName)
	require.NotNil(t, o, "TEMPORAL_ADDRESS names Service %s, which is not rendered", svcName)
	svc := convert[corev1.Service](t, o)
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)), "Service %s does not select %s", svcName, temporalDevName)
	assert.True(t, slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
		return strconv.Itoa(int(p.Port)) == port && hasPort(c, p.TargetPort)
	}), "Service %s has no port %s leading to the dev server", svcName, port)

	var attrs []string
	for _, a := range c.Args {
		if kv, ok := strings.CutPrefix(a, "--search-attribute="); ok {
			name, typ, _ := strings.Cut(kv, "=")
			assert.Equal(t, "Keyword", typ, "search attribute %s", name)
			attrs = append(attrs, name)
		}
	}
	assert.ElementsMatch(t, names.KeywordSearchAttributes(), attrs, "search attributes registered by the dev server")
	assert.Contains(t, c.Args, "--ip=0.0.0.0", "the dev server must listen beyond localhost")

	makefile, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	v := regexp.MustCompile(`(?m)^TEMPORAL_CLI\s*:=\s*v(\S+)$`).FindSubmatch(makefile)
	require.NotNil(t, v, "TEMPORAL_CLI in the Makefile")
	assert.Equal(t, "temporalio/temporal:"+string(v[1]), c.Image, "the dev server image follows TEMPORAL_CLI in the Makefile")
}

// assertScrapes checks that a ServiceMonitor selects exactly the wanted
// Services and that its endpoints name ports they have.
func assertScrapes(t *testing.T, m manifests, sm *unstructured.Unstructured, want ...string) {
	t.Helper()
	matchLabels, _, err := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	require.NoError(t, err)
	require.NotEmpty(t, matchLabels)
	nsNames, _, err := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
	require.NoError(t, err)
	endpoints, _, err := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	require.NoError(t, err)
	require.NotEmpty(t, endpoints)

	var got []string
	for _, o := range m.ofKind("Service") {
		if !slices.Contains(nsNames, o.GetNamespace()) || !labels.SelectorFromSet(matchLabels).Matches(labels.Set(o.GetLabels())) {
			continue
		}
		got = append(got, o.GetName())
		svc := convert[corev1.Service](t, o)
		for _, e := range endpoints {
			port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
			assert.True(t, slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }),
				"ServiceMonitor endpoint port %q is not a port of Service %s", port, svc.Name)
		}
	}
	assert.ElementsMatch(t, want, got, "Services the ServiceMonitor scrapes")
}
