package clients

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
)

func newManager(t testing.TB, sup client.Client, opts ...Option) *KubevirtClientManager {
	t.Helper()
	return NewKubevirtClientManager(sup, testScheme(t), testConfigNamespace, opts...)
}

// eastOnly is an API server and a supervisor whose one KubevirtConfig,
// "east", reaches it with the token it accepts.
func eastOnly(t testing.TB) (*apiServer, *supervisor) {
	t.Helper()
	srv := newAPIServer(t, "t")
	return srv, newSupervisor(t, tokenConfig(t, "east", srv.URL, "t")...)
}

// mustClient is GetClientForConfig for a config that must work.
func mustClient(t testing.TB, m *KubevirtClientManager, config string) client.Client {
	t.Helper()
	c, err := m.GetClientForConfig(t.Context(), config)
	require.NoError(t, err)
	return c
}

// host is the API server that config's client talks to.
func host(t testing.TB, m *KubevirtClientManager, config string) string {
	t.Helper()
	cfg, err := m.GetRESTConfigForConfig(t.Context(), config)
	require.NoError(t, err)
	return cfg.Host
}

// holdFirstSecretRead makes the supervisor's first Secret read from now on
// wait for release; entered is closed once it waits. Later reads pass.
func holdFirstSecretRead(sup *supervisor) (entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sup.beforeSecretGet = func() {
		once.Do(func() {
			close(in)
			<-out
		})
	}
	return in, func() { close(out) }
}

func getConfig(t testing.TB, c client.Client, name string) *v1alpha1.KubevirtConfig {
	t.Helper()
	kvc := &v1alpha1.KubevirtConfig{}
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Name: name}, kvc))
	return kvc
}

func TestNewKubevirtClientManagerPanicsOnProgrammerErrors(t *testing.T) {
	sup := newSupervisor(t)
	s := testScheme(t)
	for _, tc := range []struct {
		name    string
		sup     client.Client
		scheme  *runtime.Scheme
		ns      string
		opts    []Option
		wantMsg string
	}{
		{"nil supervisor", nil, s, "ns", nil, "supervisor client is nil"},
		{"nil scheme", sup, nil, "ns", nil, "scheme is nil"},
		{"empty namespace", sup, s, "", nil, "config namespace is empty"},
		{"zero timeout", sup, s, "ns", []Option{WithRequestTimeout(0)}, "request timeout must be positive"},
		{"negative QPS", sup, s, "ns", []Option{WithQPS(-1)}, "QPS must be positive"},
		{"zero burst", sup, s, "ns", []Option{WithBurst(0)}, "burst must be positive"},
		{"negative interval", sup, s, "ns", []Option{WithRevalidationInterval(-time.Second)}, "revalidation interval must not be negative"},
		{"nil secret reader", sup, s, "ns", []Option{WithSecretReader(nil)}, "secret reader must not be nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				NewKubevirtClientManager(tc.sup, tc.scheme, tc.ns, tc.opts...)
			}()
			msg, ok := recovered.(string)
			require.True(t, ok, "panics with a message, got %v", recovered)
			assert.True(t, strings.HasPrefix(msg, "clients.NewKubevirtClientManager: "), msg)
			assert.Contains(t, msg, tc.wantMsg)
			_, err := newKubevirtClientManager(tc.sup, tc.scheme, tc.ns, tc.opts...)
			assert.ErrorContains(t, err, tc.wantMsg, "the wiring's error says the same")
		})
	}

	m := NewKubevirtClientManager(sup, s, "ns", WithRevalidationInterval(0))
	assert.Equal(t, "ns", m.GetConfigNamespace(), "a zero interval (revalidate on every call) is valid")
}

func TestGetClientForConfigCachesOneClientPerConfig(t *testing.T) {
	east, west := newAPIServer(t, "e"), newAPIServer(t, "w")
	sup := newSupervisor(t, slices.Concat(
		tokenConfig(t, "east", east.URL, "e"),
		tokenConfig(t, "west", west.URL, "w"))...)
	m := newManager(t, sup)

	e1, w1 := mustClient(t, m, "east"), mustClient(t, m, "west")
	assert.NotSame(t, e1, w1)
	for range 3 {
		assert.Same(t, e1, mustClient(t, m, "east"), "a cached config must return the same client")
	}
	assert.EqualValues(t, 2, sup.secretGets.Load(), "one Secret read per config")

	assert.Equal(t, east.URL, host(t, m, "east"))
	assert.Equal(t, west.URL, host(t, m, "west"))
	require.NoError(t, m.ValidateConnection(t.Context(), "east"))
	require.NoError(t, m.ValidateConnection(t.Context(), "west"))
}

func TestGetRESTConfigForConfigReturnsBoundedCopy(t *testing.T) {
	srv, sup := eastOnly(t)
	m := newManager(t, sup, WithRequestTimeout(3*time.Second), WithQPS(7), WithBurst(9))

	cfg, err := m.GetRESTConfigForConfig(t.Context(), "east")
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cfg.Timeout)
	assert.EqualValues(t, 7, cfg.QPS)
	assert.Equal(t, 9, cfg.Burst)
	assert.Equal(t, "t", cfg.BearerToken)

	cfg.Host = "https://elsewhere.invalid"
	cfg.BearerToken = "changed"
	again, err := m.GetRESTConfigForConfig(t.Context(), "east")
	require.NoError(t, err)
	assert.Equal(t, srv.URL, again.Host, "changing a returned config must not change the cached one")
	assert.Equal(t, "t", again.BearerToken)
	require.NoError(t, m.ValidateConnection(t.Context(), "east"))

	def := newManager(t, sup)
	cfg, err = def.GetRESTConfigForConfig(t.Context(), "east")
	require.NoError(t, err)
	assert.Equal(t, DefaultRequestTimeout, cfg.Timeout)
	assert.EqualValues(t, DefaultQPS, cfg.QPS)
	assert.Equal(t, DefaultBurst, cfg.Burst)
}

func TestConcurrentFirstCallsBuildOneClient(t *testing.T) {
	_, sup := eastOnly(t)
	// Hold the first build long enough for the others to pile up on it.
	sup.beforeSecretGet = func() { time.Sleep(50 * time.Millisecond) }
	m := newManager(t, sup)

	const callers = 32
	got := make([]client.Client, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			got[i], errs[i] = m.GetClientForConfig(t.Context(), "east")
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Same(t, got[0], got[i], "caller %d got another client", i)
	}
	assert.EqualValues(t, 1, sup.secretGets.Load(), "concurrent first calls must build exactly one client")
}

// A caller that missed the cache while the first flight ran, and starts
// its own flight once that one has stored the client, takes it without
// reading the Secret again. load is what that flight runs.
func TestLateFlightTakesTheFreshClient(t *testing.T) {
	_, sup := eastOnly(t)
	m := newManager(t, sup)
	first := mustClient(t, m, "east")
	require.EqualValues(t, 1, sup.secretGets.Load())

	e, err := m.load(t.Context(), "east")
	require.NoError(t, err)
	assert.Same(t, first, e.client)
	assert.EqualValues(t, 1, sup.secretGets.Load(), "the Secret was read again")
}

func TestNoLockHeldWhileBuilding(t *testing.T) {
	srv := newAPIServer(t, "t")
	sup := newSupervisor(t, slices.Concat(
		tokenConfig(t, "fast", srv.URL, "t"),
		tokenConfig(t, "slow", srv.URL, "t"))...)
	m := newManager(t, sup)
	fast := mustClient(t, m, "fast")

	entered, release := holdFirstSecretRead(sup)
	slowDone := make(chan error, 1)
	go func() {
		_, err := m.GetClientForConfig(t.Context(), "slow")
		slowDone <- err
	}()
	<-entered
	// The slow build now waits inside a supervisor read. Cache hits,
	// invalidations and listings must not wait for it.
	assert.Same(t, fast, mustClient(t, m, "fast"))
	m.InvalidateClient("other")
	_, err := m.ListKubevirtConfigs(t.Context())
	require.NoError(t, err)
	release()
	require.NoError(t, <-slowDone)
}

func TestInvalidationDuringBuildIsNotUndone(t *testing.T) {
	for _, invalidate := range []struct {
		name string
		fn   func(m *KubevirtClientManager)
	}{
		{"InvalidateClient", func(m *KubevirtClientManager) { m.InvalidateClient("east") }},
		{"InvalidateAll", func(m *KubevirtClientManager) { m.InvalidateAll() }},
	} {
		t.Run(invalidate.name, func(t *testing.T) {
			_, sup := eastOnly(t)
			m := newManager(t, sup)
			entered, release := holdFirstSecretRead(sup)
			built := make(chan client.Client, 1)
			go func() {
				c, err := m.GetClientForConfig(t.Context(), "east")
				assert.NoError(t, err)
				built <- c
			}()
			<-entered
			invalidate.fn(m)
			release()
			first := <-built
			require.NotNil(t, first)

			assert.NotSame(t, first, mustClient(t, m, "east"), "a build that raced with an invalidation must not be cached")
			assert.EqualValues(t, 2, sup.secretGets.Load())
		})
	}
}

func TestInvalidateClientRebuildsFromCurrentSecret(t *testing.T) {
	east, west := newAPIServer(t, "t"), newAPIServer(t, "t")
	sup := newSupervisor(t, slices.Concat(
		tokenConfig(t, "a", east.URL, "t"),
		tokenConfig(t, "b", east.URL, "t"))...)
	m := newManager(t, sup)
	a1, b1 := mustClient(t, m, "a"), mustClient(t, m, "b")

	updateSecret(t, sup, "a", kubeconfigData(kubeconfig(t, west.URL, "t")))
	m.InvalidateClient("a")
	a2 := mustClient(t, m, "a")
	assert.NotSame(t, a1, a2)
	assert.Equal(t, west.URL, host(t, m, "a"))
	b2 := mustClient(t, m, "b")
	assert.Same(t, b1, b2, "invalidating a must keep b")

	m.InvalidateAll()
	a3, b3 := mustClient(t, m, "a"), mustClient(t, m, "b")
	assert.NotSame(t, a2, a3)
	assert.NotSame(t, b2, b3)
}

func updateSecret(t testing.TB, c client.Client, config string, data map[string][]byte) {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, c.Get(t.Context(), client.ObjectKey{Namespace: testConfigNamespace, Name: config + "-kubeconfig"}, &s))
	s.Data = data
	require.NoError(t, c.Update(t.Context(), &s))
}

func TestRevalidationAfterInterval(t *testing.T) {
	east, west := newAPIServer(t, "t"), newAPIServer(t, "t")
	sup := newSupervisor(t, tokenConfig(t, "east", east.URL, "t")...)
	clk := clocktesting.NewFakePassiveClock(time.Unix(1_700_000_000, 0))
	m := newManager(t, sup, WithClock(clk), WithRevalidationInterval(30*time.Second))
	ctx := t.Context()
	c1 := mustClient(t, m, "east")

	t.Run("rotation takes effect after the interval, not before", func(t *testing.T) {
		updateSecret(t, sup, "east", kubeconfigData(kubeconfig(t, west.URL, "t")))
		clk.SetTime(clk.Now().Add(29 * time.Second))
		assert.Equal(t, east.URL, host(t, m, "east"), "within the interval the cached client is served")
		clk.SetTime(clk.Now().Add(2 * time.Second))
		assert.Equal(t, west.URL, host(t, m, "east"), "past the interval the rotated Secret is used")
		assert.NotSame(t, c1, mustClient(t, m, "east"))
	})

	t.Run("unchanged kubeconfig keeps the client", func(t *testing.T) {
		c2 := mustClient(t, m, "east")
		kvc := getConfig(t, sup, "east")
		kvc.Status.Phase = "Ready"
		require.NoError(t, sup.Update(ctx, kvc))
		reads := sup.secretGets.Load()
		clk.SetTime(clk.Now().Add(time.Minute))
		c3 := mustClient(t, m, "east")
		assert.Same(t, c2, c3, "a status edit must not rebuild the client")
		assert.Equal(t, reads+1, sup.secretGets.Load(), "revalidation reads the Secret once")
		assert.Same(t, c3, mustClient(t, m, "east"))
		assert.Equal(t, reads+1, sup.secretGets.Load(), "a revalidated client is fresh for another interval")
	})

	t.Run("config now pointing at another Secret", func(t *testing.T) {
		before := mustClient(t, m, "east")
		other := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testConfigNamespace, Name: "other"},
			Data:       kubeconfigData(kubeconfig(t, east.URL, "t")),
		}
		require.NoError(t, sup.Create(ctx, other))
		kvc := getConfig(t, sup, "east")
		kvc.Spec.KubeconfigSecretRef = "other"
		require.NoError(t, sup.Update(ctx, kvc))
		clk.SetTime(clk.Now().Add(time.Minute))
		assert.Equal(t, east.URL, host(t, m, "east"))
		assert.NotSame(t, before, mustClient(t, m, "east"))
	})

	t.Run("deleted config drops the client", func(t *testing.T) {
		before := mustClient(t, m, "east")
		kvc := getConfig(t, sup, "east")
		require.NoError(t, sup.Delete(ctx, kvc))
		clk.SetTime(clk.Now().Add(time.Minute))
		_, err := m.GetClientForConfig(ctx, "east")
		require.ErrorIs(t, err, ErrConfigNotFound)
		assert.Contains(t, err.Error(), `KubevirtConfig "east"`)

		// Recreated with the same Secret: had the old client stayed
		// cached, the unchanged kubeconfig would have brought it back.
		kvc.ResourceVersion = ""
		require.NoError(t, sup.Create(ctx, kvc))
		assert.NotSame(t, before, mustClient(t, m, "east"))
	})
}

func TestRevalidationFailureOfSupervisorKeepsClient(t *testing.T) {
	_, base := eastOnly(t)
	var down atomic.Bool
	sup := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if down.Load() {
				return errors.New("supervisor connection refused")
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	clk := clocktesting.NewFakePassiveClock(time.Now())
	m := newManager(t, sup, WithClock(clk))
	c1 := mustClient(t, m, "east")

	down.Store(true)
	clk.SetTime(clk.Now().Add(time.Hour))
	_, err := m.GetClientForConfig(t.Context(), "east")
	require.ErrorContains(t, err, "supervisor connection refused")
	assert.ErrorContains(t, err, `reading KubevirtConfig "east" from the supervisor`)
	for _, kind := range []error{ErrConfigNotFound, ErrInvalidKubeconfig} {
		assert.NotErrorIs(t, err, kind, "a supervisor outage says nothing about the config")
	}

	down.Store(false)
	assert.Same(t, c1, mustClient(t, m, "east"), "the client survives a failed revalidation and is revalidated when the supervisor is back")
}

func TestConfigNotFound(t *testing.T) {
	m := newManager(t, newSupervisor(t))
	for _, name := range []string{"nope", ""} {
		_, err := m.GetClientForConfig(t.Context(), name)
		require.ErrorIs(t, err, ErrConfigNotFound)
		var typed *Error
		require.ErrorAs(t, err, &typed)
		assert.Equal(t, name, typed.Config)
		assert.ErrorIs(t, m.ValidateConnection(t.Context(), name), ErrConfigNotFound)
		_, err = m.GetRESTConfigForConfig(t.Context(), name)
		assert.ErrorIs(t, err, ErrConfigNotFound)
	}
}

func TestInvalidKubeconfigSecrets(t *testing.T) {
	srv := newAPIServer(t, "t")
	good := kubeconfig(t, srv.URL, "t")
	for _, tc := range []struct {
		name   string
		objs   []client.Object
		reason string
	}{
		{"missing Secret", configObjects("c", nil), "Secret machineflow-system/c-kubeconfig not found"},
		{"missing key", configObjects("c", map[string][]byte{"config": good}), `has no key "kubeconfig"`},
		{"empty data", configObjects("c", map[string][]byte{}), `has no key "kubeconfig"`},
		{"empty value", configObjects("c", kubeconfigData(nil)), "is empty"},
		{"blank value", configObjects("c", kubeconfigData([]byte(" \n\t"))), "is empty"},
		{"garbage", configObjects("c", kubeconfigData([]byte("{{{ not yaml"))), "does not parse as a kubeconfig"},
		{"no context", configObjects("c", kubeconfigData([]byte("apiVersion: v1\nkind: Config\n"))), "sets no current-context"},
		{"unknown context", configObjects("c", kubeconfigData([]byte("apiVersion: v1\nkind: Config\ncurrent-context: x\n"))), "names a current-context that it does not define"},
		{"no server", tokenConfig(t, "c", "", "t"), "has no cluster with a server address"},
		{"exec plugin", configObjects("c", kubeconfigData(execKubeconfig(t, srv.URL))), "exec or auth-provider plugin"},
		{"bad CA", configObjects("c", kubeconfigData(badCAKubeconfig(t))), "unusable TLS or auth material"},
		{"worker's service account token file", configObjects("c", kubeconfigData(writeKubeconfig(t, &clientcmdapi.Cluster{Server: srv.URL},
			&clientcmdapi.AuthInfo{TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token"}))), "names a file"},
		{"client key file", configObjects("c", kubeconfigData(writeKubeconfig(t, &clientcmdapi.Cluster{Server: srv.URL},
			&clientcmdapi.AuthInfo{ClientCertificate: "/etc/tls/tls.crt", ClientKey: "/etc/tls/tls.key"}))), "names a file"},
		{"CA file", configObjects("c", kubeconfigData(writeKubeconfig(t, &clientcmdapi.Cluster{Server: srv.URL, CertificateAuthority: "/etc/ca.crt"},
			&clientcmdapi.AuthInfo{Token: "t"}))), "names a file"},
		{"empty secret ref", []client.Object{&v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: "c"}}}, "spec.kubeconfigSecretRef is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, newSupervisor(t, tc.objs...))
			_, err := m.GetClientForConfig(t.Context(), "c")
			require.ErrorIs(t, err, ErrInvalidKubeconfig)
			assert.Contains(t, err.Error(), `KubevirtConfig "c": invalid kubeconfig: `)
			assert.Contains(t, err.Error(), tc.reason)
			for _, other := range []error{ErrConfigNotFound, ErrClusterUnreachable, ErrUnauthorized} {
				assert.NotErrorIs(t, err, other)
			}
		})
	}
}

func TestSecretNamespaceDefaultsToConfigNamespace(t *testing.T) {
	srv := newAPIServer(t, "t")
	objs := tokenConfig(t, "c", srv.URL, "t")
	objs[0].(*v1alpha1.KubevirtConfig).Spec.SecretNamespace = ""
	m := newManager(t, newSupervisor(t, objs...))
	require.NoError(t, m.ValidateConnection(t.Context(), "c"))

	other := NewKubevirtClientManager(newSupervisor(t, objs...), testScheme(t), "elsewhere")
	err := other.ValidateConnection(t.Context(), "c")
	require.ErrorIs(t, err, ErrInvalidKubeconfig)
	assert.Contains(t, err.Error(), "Secret elsewhere/c-kubeconfig not found")
}

func TestValidateConnection(t *testing.T) {
	srv := newAPIServer(t, "t")
	closed := newAPIServer(t, "t")
	closed.Close()
	sup := newSupervisor(t, slices.Concat(
		tokenConfig(t, "ok", srv.URL, "t"),
		tokenConfig(t, "wrongtoken", srv.URL, "nope"),
		tokenConfig(t, "refused", closed.URL, "t"),
		tokenConfig(t, "hole", testutil.BlackHole(t), "t"))...)
	m := newManager(t, sup, WithRequestTimeout(500*time.Millisecond))
	ctx := t.Context()

	require.NoError(t, m.ValidateConnection(ctx, "ok"))

	srv.set("t", "missing")
	err := m.ValidateConnection(ctx, "ok")
	require.ErrorIs(t, err, ErrKubeVirtAPIMissing)
	assert.Contains(t, err.Error(), "does not serve kubevirt.io/v1")

	srv.set("t", "novm")
	err = m.ValidateConnection(ctx, "ok")
	require.ErrorIs(t, err, ErrKubeVirtAPIMissing)
	assert.Contains(t, err.Error(), "without virtualmachines")

	srv.set("t", "served")
	err = m.ValidateConnection(ctx, "wrongtoken")
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.Contains(t, err.Error(), `KubevirtConfig "wrongtoken"`)

	err = m.ValidateConnection(ctx, "refused")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.Contains(t, err.Error(), `KubevirtConfig "refused"`)

	start := time.Now()
	err = m.ValidateConnection(ctx, "hole")
	t.Logf("black hole answered after %s (timeout 500ms)", time.Since(start))
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.Contains(t, err.Error(), `KubevirtConfig "hole"`)
}

func TestUnauthorizedAnswerDropsClient(t *testing.T) {
	srv := newAPIServer(t, "new")
	sup := newSupervisor(t, tokenConfig(t, "east", srv.URL, "old")...)
	m := newManager(t, sup) // default interval: only the 401 can refresh the client
	ctx := t.Context()

	old := mustClient(t, m, "east")
	updateSecret(t, sup, "east", kubeconfigData(kubeconfig(t, srv.URL, "new")))
	require.Same(t, old, mustClient(t, m, "east"), "without a 401 the rotation waits for the interval")

	// Any call through the old client that meets a 401 drops it; here a
	// plain typed Get, which first runs discovery through the transport.
	err := old.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, &corev1.ConfigMap{})
	require.Error(t, err)

	fresh := mustClient(t, m, "east")
	assert.NotSame(t, old, fresh)
	require.NoError(t, m.ValidateConnection(ctx, "east"), "the rebuilt client uses the rotated token")

	// A late 401 from the old client must not evict its successor.
	_ = old.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, &corev1.ConfigMap{})
	assert.Same(t, fresh, mustClient(t, m, "east"))
}

func TestCallerGivingUpDoesNotFailTheFlight(t *testing.T) {
	_, sup := eastOnly(t)
	entered, release := holdFirstSecretRead(sup)
	m := newManager(t, sup)

	impatient, cancel := context.WithCancel(t.Context())
	impatientErr := make(chan error, 1)
	go func() {
		_, err := m.GetClientForConfig(impatient, "east")
		impatientErr <- err
	}()
	<-entered
	patientDone := make(chan client.Client, 1)
	go func() {
		c, err := m.GetClientForConfig(t.Context(), "east")
		assert.NoError(t, err)
		patientDone <- c
	}()
	cancel()
	err := <-impatientErr
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), `KubevirtConfig "east"`)
	release()
	c := <-patientDone
	require.NotNil(t, c)
	assert.Same(t, c, mustClient(t, m, "east"))
	assert.EqualValues(t, 1, sup.secretGets.Load())
}

func TestHealthCheck(t *testing.T) {
	srv := newAPIServer(t, "t")
	missing := newAPIServer(t, "t")
	missing.set("t", "missing")
	sup := newSupervisor(t, slices.Concat(
		tokenConfig(t, "ok-1", srv.URL, "t"),
		tokenConfig(t, "ok-2", srv.URL, "t"),
		tokenConfig(t, "nokubevirt", missing.URL, "t"),
		tokenConfig(t, "badtoken", srv.URL, "bad"),
		configObjects("garbage", kubeconfigData([]byte("::"))),
		tokenConfig(t, "hole", testutil.BlackHole(t), "t"),
	)...)
	m := newManager(t, sup, WithRequestTimeout(500*time.Millisecond))

	failures := m.HealthCheck(t.Context())
	require.Len(t, failures, 4, "failures: %v", failures)
	assert.ErrorIs(t, failures["nokubevirt"], ErrKubeVirtAPIMissing)
	assert.ErrorIs(t, failures["badtoken"], ErrUnauthorized)
	assert.ErrorIs(t, failures["garbage"], ErrInvalidKubeconfig)
	assert.ErrorIs(t, failures["hole"], ErrClusterUnreachable)
	assert.NotContains(t, failures, "ok-1")
}

func TestHealthCheckDropsDeletedConfigsAndReportsListFailure(t *testing.T) {
	srv := newAPIServer(t, "t")
	base := newSupervisor(t, slices.Concat(
		tokenConfig(t, "kept", srv.URL, "t"),
		tokenConfig(t, "deleted", srv.URL, "t"))...)
	var listFails atomic.Bool
	sup := interceptor.NewClient(base, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if listFails.Load() {
				return errors.New("list refused")
			}
			return c.List(ctx, list, opts...)
		},
	})
	m := newManager(t, sup)
	ctx := t.Context()
	deleted, kept := mustClient(t, m, "deleted"), mustClient(t, m, "kept")

	listFails.Store(true)
	failures := m.HealthCheck(ctx)
	require.Len(t, failures, 1, "cached configs are still checked: %v", failures)
	assert.ErrorContains(t, failures[SupervisorHealthKey], "listing KubevirtConfigs on the supervisor: list refused")

	listFails.Store(false)
	kvc := getConfig(t, sup, "deleted")
	require.NoError(t, sup.Delete(ctx, kvc))
	assert.Empty(t, m.HealthCheck(ctx))

	kvc.ResourceVersion = ""
	require.NoError(t, sup.Create(ctx, kvc))
	assert.NotSame(t, deleted, mustClient(t, m, "deleted"), "HealthCheck must drop the client of a deleted config")
	assert.Same(t, kept, mustClient(t, m, "kept"))
}

func TestPlacementRules(t *testing.T) {
	srv := newAPIServer(t, "t")
	one := tokenConfig(t, "one", srv.URL, "t")
	two := slices.Concat(tokenConfig(t, "a", srv.URL, "t"), tokenConfig(t, "b", srv.URL, "t"))
	rejecting := slices.Concat(tokenConfig(t, "a", srv.URL, "bad"), tokenConfig(t, "b", srv.URL, "bad"))
	rejectingAndHole := slices.Concat(tokenConfig(t, "a", srv.URL, "bad"), tokenConfig(t, "hole", testutil.BlackHole(t), "t"))
	machine := func(annotation string) *v1alpha1.Machine {
		m := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "vm1"}}
		if annotation != "" {
			m.Annotations = map[string]string{names.PlacementAnnotation: annotation}
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		objs     []client.Object
		opts     []Option
		machine  *v1alpha1.Machine
		want     string
		wantErr  error
		wantText string
	}{
		{name: "annotation wins over default", objs: two, opts: []Option{WithDefaultConfig("a")}, machine: machine("b"), want: "b"},
		{name: "default config", objs: two, opts: []Option{WithDefaultConfig("a")}, machine: machine(""), want: "a"},
		{name: "only config", objs: one, machine: machine(""), want: "one"},
		{name: "annotation to a missing config", objs: two, machine: machine("gone"), wantErr: ErrConfigNotFound,
			wantText: `Machine team/vm1: KubevirtConfig "gone": KubevirtConfig not found: no such KubevirtConfig on the supervisor; chosen by annotation vitistack.io/kubevirt-config`},
		{name: "missing default config", objs: two, opts: []Option{WithDefaultConfig("gone")}, machine: machine(""), wantErr: ErrConfigNotFound,
			wantText: "chosen by the default config"},
		{name: "no config at all", machine: machine(""), wantErr: ErrConfigNotFound,
			wantText: "Machine team/vm1: KubevirtConfig not found: no KubevirtConfig exists on the supervisor"},
		{name: "search on none", objs: two, machine: machine(""), wantErr: ErrAmbiguousPlacement,
			wantText: "2 KubevirtConfigs exist and VM team/vm1 is on none of them"},
		{name: "search refused everywhere is final", objs: rejecting, machine: machine(""), wantErr: ErrUnauthorized,
			wantText: "KubevirtConfigs a, b could not be searched"},
		{name: "search with an unreachable cluster is retryable", objs: rejectingAndHole, opts: []Option{WithRequestTimeout(300 * time.Millisecond)},
			machine: machine(""), wantErr: ErrClusterUnreachable, wantText: "KubevirtConfigs a, hole could not be searched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sup := newSupervisor(t, tc.objs...)
			m := newManager(t, sup, tc.opts...)
			before := tc.machine.DeepCopy()
			c, name, err := m.GetOrCreateClientFromMachine(t.Context(), tc.machine)
			assert.Equal(t, before, tc.machine, "the Machine must not be modified")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), tc.wantText)
				assert.Nil(t, c)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, name)
			assert.Same(t, mustClient(t, m, tc.want), c)
		})
	}

	m := newManager(t, newSupervisor(t))
	_, _, err := m.GetOrCreateClientFromMachine(t.Context(), nil)
	assert.ErrorContains(t, err, "Machine is nil")
}
