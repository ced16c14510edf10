package clients

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/kubevirtadmission"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
)

// integrationManager builds a manager on env's supervisor.
func integrationManager(t testing.TB, env *testenv.Env, opts ...Option) *KubevirtClientManager {
	t.Helper()
	return NewKubevirtClientManager(env.Supervisor.Client, env.Scheme, env.ConfigNamespace, opts...)
}

// withServer rewrites a harness kubeconfig to point at server, keeping its
// credentials; withToken swaps its credentials for a bearer token.
func withServer(t testing.TB, kubeconfig []byte, server string) []byte {
	return editKubeconfig(t, kubeconfig, func(c *clientcmdapi.Config) {
		for _, cl := range c.Clusters {
			cl.Server = server
		}
	})
}

func withToken(t testing.TB, kubeconfig []byte, token string) []byte {
	return editKubeconfig(t, kubeconfig, func(c *clientcmdapi.Config) {
		for _, u := range c.AuthInfos {
			u.ClientCertificateData, u.ClientKeyData, u.Token = nil, nil, token
		}
	})
}

func editKubeconfig(t testing.TB, kubeconfig []byte, edit func(*clientcmdapi.Config)) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	require.NoError(t, err)
	edit(cfg)
	b, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return b
}

// marker creates a ConfigMap that exists only on cluster c, so a test can
// tell which cluster a client talks to.
func marker(t testing.TB, c *testenv.Cluster) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "cluster-name"}, Data: map[string]string{"name": c.Name}}
	require.NoError(t, c.Client.Create(t.Context(), cm))
}

func clusterOf(t testing.TB, c client.Client) string {
	t.Helper()
	var cm corev1.ConfigMap
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "cluster-name"}, &cm))
	return cm.Data["name"]
}

func TestIntegrationClients(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 2})
	one, two := env.Clusters[0], env.Clusters[1]
	marker(t, one)
	marker(t, two)
	ctx := t.Context()

	t.Run("a client per cluster", func(t *testing.T) {
		m := integrationManager(t, env)
		for _, c := range env.Clusters {
			remote, err := m.GetClientForConfig(ctx, c.Name)
			require.NoError(t, err)
			assert.Equal(t, c.Name, clusterOf(t, remote))
			require.NoError(t, m.ValidateConnection(ctx, c.Name))
		}
		configs, err := m.ListKubevirtConfigs(ctx)
		require.NoError(t, err)
		assert.Len(t, configs, 2)
	})

	t.Run("rotated Secret takes effect after the interval", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "rotating", one.Kubeconfig))
		clk := clocktesting.NewFakePassiveClock(time.Now())
		m := integrationManager(t, env, WithClock(clk), WithRevalidationInterval(30*time.Second))
		remote, err := m.GetClientForConfig(ctx, "rotating")
		require.NoError(t, err)
		assert.Equal(t, one.Name, clusterOf(t, remote))

		require.NoError(t, env.RegisterCluster(ctx, "rotating", two.Kubeconfig))
		remote, err = m.GetClientForConfig(ctx, "rotating")
		require.NoError(t, err)
		assert.Equal(t, one.Name, clusterOf(t, remote), "within the staleness bound the old client may serve")

		clk.SetTime(clk.Now().Add(31 * time.Second))
		remote, err = m.GetClientForConfig(ctx, "rotating")
		require.NoError(t, err)
		assert.Equal(t, two.Name, clusterOf(t, remote))
	})

	t.Run("401 drops the client at once", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "revoked", withToken(t, one.Kubeconfig, "revoked-token")))
		m := integrationManager(t, env)
		err := m.ValidateConnection(ctx, "revoked")
		require.ErrorIs(t, err, ErrUnauthorized)
		assert.Contains(t, err.Error(), `KubevirtConfig "revoked"`)

		// No clock step: only the drop on 401 lets the new Secret in.
		require.NoError(t, env.RegisterCluster(ctx, "revoked", one.Kubeconfig))
		require.NoError(t, m.ValidateConnection(ctx, "revoked"))
		remote, err := m.GetClientForConfig(ctx, "revoked")
		require.NoError(t, err)
		assert.Equal(t, one.Name, clusterOf(t, remote))
	})

	t.Run("deleted KubevirtConfig", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "deleted", one.Kubeconfig))
		m := integrationManager(t, env, WithRevalidationInterval(0))
		before, err := m.GetClientForConfig(ctx, "deleted")
		require.NoError(t, err)
		kvc := &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "deleted"}}
		require.NoError(t, env.Supervisor.Client.Delete(ctx, kvc))

		_, err = m.GetClientForConfig(ctx, "deleted")
		require.ErrorIs(t, err, ErrConfigNotFound)
		assert.ErrorIs(t, m.ValidateConnection(ctx, "deleted"), ErrConfigNotFound)

		require.NoError(t, env.RegisterCluster(ctx, "deleted", one.Kubeconfig))
		after, err := m.GetClientForConfig(ctx, "deleted")
		require.NoError(t, err)
		assert.NotSame(t, before, after, "the deleted config's client was dropped")
	})

	t.Run("broken Secrets", func(t *testing.T) {
		m := integrationManager(t, env)
		for name, data := range map[string]map[string][]byte{
			"missing-key": {"config": one.Kubeconfig},
			"empty-data":  {},
			"garbage":     {names.KubeconfigSecretKey: []byte("\x00\x01 garbage " + secretToken)},
		} {
			require.NoError(t, env.RegisterCluster(ctx, name, one.Kubeconfig))
			var s corev1.Secret
			require.NoError(t, env.Supervisor.Client.Get(ctx, client.ObjectKey{Namespace: env.ConfigNamespace, Name: testenv.KubeconfigSecretName(name)}, &s))
			s.Data = data
			require.NoError(t, env.Supervisor.Client.Update(ctx, &s))

			err := m.ValidateConnection(ctx, name)
			require.ErrorIs(t, err, ErrInvalidKubeconfig, name)
			assert.Contains(t, err.Error(), fmt.Sprintf("KubevirtConfig %q", name))
			requireNoSecret(t, err.Error(), name)
		}
	})

	t.Run("cluster without KubeVirt", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "plain", env.Supervisor.Kubeconfig))
		m := integrationManager(t, env)
		err := m.ValidateConnection(ctx, "plain")
		require.ErrorIs(t, err, ErrKubeVirtAPIMissing)
		assert.Contains(t, err.Error(), `KubevirtConfig "plain"`)
	})

	t.Run("server that accepts TCP and never answers", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "hole", withServer(t, one.Kubeconfig, testutil.BlackHole(t))))
		m := integrationManager(t, env, WithRequestTimeout(2*time.Second))
		start := time.Now()
		err := m.ValidateConnection(ctx, "hole")
		t.Logf("black hole reported after %s with a 2s request timeout", time.Since(start).Round(time.Millisecond))
		require.ErrorIs(t, err, ErrClusterUnreachable)
		assert.Contains(t, err.Error(), `KubevirtConfig "hole"`)
	})
}

func TestIntegrationPlacementAndHealth(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 2})
	one, two := env.Clusters[0], env.Clusters[1]
	ctx := t.Context()
	m := integrationManager(t, env, WithRequestTimeout(2*time.Second))
	const ns = "team-a"
	for _, c := range env.Clusters {
		require.NoError(t, c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	createVM := func(c *testenv.Cluster, name string) {
		t.Helper()
		require.NoError(t, c.Client.Create(ctx, kubevirtadmission.MinimalVM(ns, name)))
	}
	machine := func(name string) *v1alpha1.Machine {
		return &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}

	t.Run("VM on one cluster", func(t *testing.T) {
		createVM(two, "on-two")
		remote, name, err := m.GetOrCreateClientFromMachine(ctx, machine("on-two"))
		require.NoError(t, err)
		assert.Equal(t, two.Name, name)
		direct, err := m.GetClientForConfig(ctx, two.Name)
		require.NoError(t, err)
		assert.Same(t, direct, remote)
	})

	t.Run("VM on no cluster", func(t *testing.T) {
		_, _, err := m.GetOrCreateClientFromMachine(ctx, machine("nowhere"))
		require.ErrorIs(t, err, ErrAmbiguousPlacement)
		assert.Contains(t, err.Error(), "Machine team-a/nowhere")
		assert.Contains(t, err.Error(), "is on none of them")
		assert.Contains(t, err.Error(), names.PlacementAnnotation)
		assert.Contains(t, err.Error(), "DEFAULT_KUBEVIRT_CONFIG")
	})

	t.Run("VM on both clusters", func(t *testing.T) {
		createVM(one, "twice")
		createVM(two, "twice")
		_, _, err := m.GetOrCreateClientFromMachine(ctx, machine("twice"))
		require.ErrorIs(t, err, ErrAmbiguousPlacement)
		assert.Contains(t, err.Error(), "exists on the clusters of KubevirtConfigs kubevirt-1, kubevirt-2")
	})

	t.Run("annotation and default skip the search", func(t *testing.T) {
		annotated := machine("twice")
		annotated.Annotations = map[string]string{names.PlacementAnnotation: one.Name}
		_, name, err := m.GetOrCreateClientFromMachine(ctx, annotated)
		require.NoError(t, err)
		assert.Equal(t, one.Name, name)
		withDefault := integrationManager(t, env, WithDefaultConfig(two.Name))
		_, name, err = withDefault.GetOrCreateClientFromMachine(ctx, machine("nowhere"))
		require.NoError(t, err)
		assert.Equal(t, two.Name, name)
	})

	t.Run("unreachable cluster is not absent", func(t *testing.T) {
		require.NoError(t, env.RegisterCluster(ctx, "hole-0", withServer(t, one.Kubeconfig, testutil.BlackHole(t))))
		_, name, err := m.GetOrCreateClientFromMachine(ctx, machine("on-two"))
		require.NoError(t, err, "a VM found on one cluster decides even if another cannot be searched")
		assert.Equal(t, two.Name, name)

		_, _, err = m.GetOrCreateClientFromMachine(ctx, machine("nowhere"))
		require.ErrorIs(t, err, ErrClusterUnreachable)
		assert.NotErrorIs(t, err, ErrAmbiguousPlacement)
		assert.Contains(t, err.Error(), "not found on 2 of 3 clusters")
		assert.Contains(t, err.Error(), "KubevirtConfigs hole-0 could not be searched")
	})

	t.Run("HealthCheck over 10 configs with 3 black holes", func(t *testing.T) {
		// hole-0 from above plus two more holes and five more good
		// configs: 2 + 5 good, 3 holes.
		for i := 1; i <= 2; i++ {
			require.NoError(t, env.RegisterCluster(ctx, fmt.Sprintf("hole-%d", i), withServer(t, two.Kubeconfig, testutil.BlackHole(t))))
		}
		for i := range 5 {
			require.NoError(t, env.RegisterCluster(ctx, fmt.Sprintf("good-%d", i), env.Clusters[i%2].Kubeconfig))
		}
		configs, err := m.ListKubevirtConfigs(ctx)
		require.NoError(t, err)
		require.Len(t, configs, 10)

		start := time.Now()
		failures := m.HealthCheck(ctx)
		t.Logf("HealthCheck over %d configs (3 black holes, 2s request timeout) took %s", len(configs), time.Since(start).Round(time.Millisecond))
		var failed []string
		for name, err := range failures {
			failed = append(failed, name)
			assert.ErrorIs(t, err, ErrClusterUnreachable, name)
		}
		assert.ElementsMatch(t, []string{"hole-0", "hole-1", "hole-2"}, failed, "failures: %v", failures)
		for name, err := range failures {
			assert.True(t, strings.Contains(err.Error(), fmt.Sprintf("KubevirtConfig %q", name)), err.Error())
		}
	})
}
