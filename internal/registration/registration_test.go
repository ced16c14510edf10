package registration

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

// logTo returns a logger writing JSON lines into buf.
func logTo(buf *testutil.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newRegistrar(t *testing.T, c client.Client, o Options) (*Registrar, *testutil.SyncBuffer) {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	r, err := New(c, o, logTo(buf))
	require.NoError(t, err)
	return r, buf
}

func kubevirtConfig(name, secretNamespace string) *v1alpha1.KubevirtConfig {
	return &v1alpha1.KubevirtConfig{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.KubevirtConfigSpec{Name: name, SecretNamespace: secretNamespace, KubeconfigSecretRef: name + "-kubeconfig"}}
}

func vitistack(name, region string, providers ...string) *v1alpha1.Vitistack {
	vs := &v1alpha1.Vitistack{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.VitistackSpec{DisplayName: name, Zone: "az1", Region: region, Infrastructure: "test"}}
	for _, p := range providers {
		vs.Spec.MachineProviders = append(vs.Spec.MachineProviders, v1alpha1.VitistackProviderReference{Name: p, Enabled: true})
	}
	return vs
}

// TestRegistration runs against the harness's supervisor: real CRDs, so
// a MachineProvider the schema rejects fails here.
func TestRegistration(t *testing.T) {
	env := testenv.New(t, testenv.Options{Clusters: 1})
	c := env.Supervisor.Client
	ctx := t.Context()
	create := func(t *testing.T, objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			require.NoError(t, c.Create(ctx, o), "create %T %s", o, o.GetName())
		}
	}
	getProvider := func(t *testing.T, name string) (*v1alpha1.MachineProvider, error) {
		t.Helper()
		mp := &v1alpha1.MachineProvider{}
		return mp, c.Get(ctx, client.ObjectKey{Name: name}, mp)
	}

	t.Run("created from the KubevirtConfig when missing", func(t *testing.T) {
		cluster := env.Clusters[0].Name
		r, _ := newRegistrar(t, c, Options{ProviderName: cluster, ConfigNamespace: "unused"})
		outcome, err := r.Ensure(ctx)
		require.NoError(t, err)
		assert.Equal(t, OutcomeCreated, outcome)
		mp, err := getProvider(t, cluster)
		require.NoError(t, err)
		assert.Equal(t, names.ManagedByValue, mp.Labels[names.ManagedByLabel])
		assert.Equal(t, v1alpha1.MachineProviderSpec{
			ProviderType: "kubevirt",
			DisplayName:  "KubeVirt " + cluster,
			Region:       UnknownRegion,
			Authentication: v1alpha1.ProviderAuthentication{
				Type:           "credentials",
				CredentialsRef: &v1alpha1.CredentialsReference{SecretName: testenv.KubeconfigSecretName(cluster), Namespace: env.ConfigNamespace},
				Parameters:     map[string]string{"secretKey": names.KubeconfigSecretKey},
			},
			Config: map[string]string{"kubevirtConfig": cluster},
		}, mp.Spec, "the Secret's namespace is the KubevirtConfig's")

		again, err := r.Ensure(ctx)
		require.NoError(t, err)
		assert.Equal(t, OutcomeExists, again)
		after, err := getProvider(t, cluster)
		require.NoError(t, err)
		assert.Equal(t, mp.ResourceVersion, after.ResourceVersion, "a second start writes nothing")
	})

	t.Run("region from the Vitistack", func(t *testing.T) {
		create(t, kubevirtConfig("kv-west", "secrets"), vitistack("stack-west", "west-1", "someone-else"))
		r, _ := newRegistrar(t, c, Options{ProviderName: "kv-west", VitistackName: "stack-west", ConfigNamespace: "machineflow-system"})
		outcome, err := r.Ensure(ctx)
		require.NoError(t, err)
		assert.Equal(t, OutcomeCreated, outcome)
		mp, err := getProvider(t, "kv-west")
		require.NoError(t, err)
		assert.Equal(t, "west-1", mp.Spec.Region)
		assert.Equal(t, &v1alpha1.CredentialsReference{SecretName: "kv-west-kubeconfig", Namespace: "secrets"}, mp.Spec.Authentication.CredentialsRef)
	})

	t.Run("an existing MachineProvider is left alone", func(t *testing.T) {
		theirs := &v1alpha1.MachineProvider{ObjectMeta: metav1.ObjectMeta{Name: "kv-theirs"}, Spec: v1alpha1.MachineProviderSpec{
			ProviderType: "kubevirt", DisplayName: "made by hand", Region: "north",
			Authentication: v1alpha1.ProviderAuthentication{Type: "token"}}}
		create(t, theirs, kubevirtConfig("kv-theirs", "secrets"))
		r, _ := newRegistrar(t, c, Options{ProviderName: "kv-theirs"})
		outcome, err := r.Ensure(ctx)
		require.NoError(t, err)
		assert.Equal(t, OutcomeExists, outcome)
		now, err := getProvider(t, "kv-theirs")
		require.NoError(t, err)
		assert.Equal(t, theirs.ResourceVersion, now.ResourceVersion)
		assert.Equal(t, "made by hand", now.Spec.DisplayName)
	})

	t.Run("nothing to do when the Vitistack lists the provider", func(t *testing.T) {
		create(t, vitistack("stack-listing", "east-1", "other", "kv-listed"))
		r, _ := newRegistrar(t, c, Options{ProviderName: "kv-listed", VitistackName: "stack-listing"})
		outcome, err := r.Ensure(ctx)
		require.NoError(t, err, "no KubevirtConfig kv-listed is needed either")
		assert.Equal(t, OutcomeListed, outcome)
		_, err = getProvider(t, "kv-listed")
		assert.True(t, apierrors.IsNotFound(err), "nothing created: %v", err)
	})

	t.Run("failures name what is missing", func(t *testing.T) {
		r, _ := newRegistrar(t, c, Options{ProviderName: "kv-missing"})
		_, err := r.Ensure(ctx)
		require.EqualError(t, err, `get KubevirtConfig "kv-missing" to create MachineProvider "kv-missing" from (NAME_MACHINE_PROVIDER): not found`)

		r, _ = newRegistrar(t, c, Options{ProviderName: "kv-missing", VitistackName: "no-such-stack"})
		_, err = r.Ensure(ctx)
		require.EqualError(t, err, `get Vitistack "no-such-stack" (VITISTACK_NAME): not found`)
	})

	t.Run("a failure is logged and retried in the background, start-up goes on", func(t *testing.T) {
		buf := &testutil.SyncBuffer{}
		app := fxtest.New(t,
			fx.Supply(
				fx.Annotate(c, fx.As(new(client.Client))),
				Options{ProviderName: "kv-late", RetryInitial: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, MaxAttempts: 1000},
				logTo(buf),
			),
			Module,
		)
		app.RequireStart()
		require.Eventually(t, func() bool { return strings.Count(buf.String(), "retrying") >= 2 }, 10*time.Second, 10*time.Millisecond)
		assert.Contains(t, buf.String(), `"level":"WARN","msg":"MachineProvider registration failed, retrying","machineProvider":"kv-late","attempt":1`)
		assert.Contains(t, buf.String(), `"error":"get KubevirtConfig \"kv-late\" to create MachineProvider \"kv-late\" from (NAME_MACHINE_PROVIDER): not found"`)

		// The cause is fixed while the worker runs: the next retry registers.
		create(t, kubevirtConfig("kv-late", "secrets"))
		require.Eventually(t, func() bool { _, err := getProvider(t, "kv-late"); return err == nil }, 10*time.Second, 20*time.Millisecond)
		require.Eventually(t, func() bool {
			return strings.Contains(buf.String(), `"msg":"MachineProvider registered","machineProvider":"kv-late","outcome":"Created"`)
		},
			5*time.Second, 10*time.Millisecond)
		app.RequireStop()
	})

	t.Run("retries are bounded and stop with the worker", func(t *testing.T) {
		r, buf := newRegistrar(t, c, Options{ProviderName: "kv-never", RetryInitial: time.Millisecond, RetryMax: 2 * time.Millisecond, MaxAttempts: 3})
		r.Run(ctx)
		out := buf.String()
		assert.Equal(t, 2, strings.Count(out, "retrying"))
		assert.Contains(t, out, `"level":"ERROR","msg":"MachineProvider registration gave up; the worker runs without it, fix the cause and restart a worker","machineProvider":"kv-never","attempt":3`)

		lc := fxtest.NewLifecycle(t)
		slow, buf := newRegistrar(t, c, Options{ProviderName: "kv-never", RetryInitial: time.Hour})
		start(lc, slow)
		lc.RequireStart()
		require.Eventually(t, func() bool { return strings.Contains(buf.String(), `"retryIn":3600000000000`) }, 10*time.Second, 10*time.Millisecond)
		stopped := time.Now()
		lc.RequireStop()
		assert.Less(t, time.Since(stopped), 10*time.Second, "stopping does not wait out the backoff")
	})
}

func TestSecretNamespaceDefaultsToTheConfigNamespace(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	// A KubevirtConfig without spec.secretNamespace (the CRD requires it;
	// older objects may lack it): the ClientManager's rule applies.
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(kubevirtConfig("kv", "")).Build()
	r, _ := newRegistrar(t, c, Options{ProviderName: "kv", ConfigNamespace: "machineflow-system"})
	outcome, err := r.Ensure(context.Background())
	require.NoError(t, err)
	assert.Equal(t, OutcomeCreated, outcome)
	mp := &v1alpha1.MachineProvider{}
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Name: "kv"}, mp))
	assert.Equal(t, &v1alpha1.CredentialsReference{SecretName: "kv-kubeconfig", Namespace: "machineflow-system"}, mp.Spec.Authentication.CredentialsRef)
}

func TestRejectedRequestIsNotRetried(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	creates := 0
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(kubevirtConfig("kv", "ns")).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			creates++
			return apierrors.NewInvalid(schema.GroupKind{Group: "vitistack.io", Kind: "MachineProvider"}, obj.GetName(), nil)
		},
	}).Build()
	r, buf := newRegistrar(t, c, Options{ProviderName: "kv", RetryInitial: time.Millisecond})
	r.Run(context.Background())
	assert.Equal(t, 1, creates, "the API server rejects the same request every time")
	assert.Contains(t, buf.String(), `"msg":"MachineProvider registration failed for good; the worker runs without it","machineProvider":"kv","attempt":1,"error":"create MachineProvider \"kv\": MachineProvider.vitistack.io \"kv\" is invalid`)
}

func TestUnreachableSupervisorIsRetried(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	gets := 0
	c := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets++
			return errors.New("dial tcp 10.0.0.1:6443: connect: connection refused")
		},
	}).Build()
	r, buf := newRegistrar(t, c, Options{ProviderName: "kv", RetryInitial: time.Millisecond, MaxAttempts: 4})
	r.Run(context.Background())
	assert.Equal(t, 4, gets)
	assert.Contains(t, buf.String(), `"error":"get MachineProvider \"kv\": dial tcp 10.0.0.1:6443: connect: connection refused"`)
}

func TestHungSupervisorAttemptIsBounded(t *testing.T) {
	s, err := scheme.New()
	require.NoError(t, err)
	var gets atomic.Int32
	c := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(interceptor.Funcs{
		// A supervisor that accepts the request and never answers.
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			gets.Add(1)
			<-ctx.Done()
			return ctx.Err()
		},
	}).Build()
	r, buf := newRegistrar(t, c, Options{ProviderName: "kv", RetryInitial: time.Millisecond, MaxAttempts: 2, AttemptTimeout: 50 * time.Millisecond})
	r.Run(t.Context())
	assert.Equal(t, int32(2), gets.Load(), "each attempt ends at its timeout and the next one runs")
	assert.Contains(t, buf.String(), `"error":"get MachineProvider \"kv\": context deadline exceeded"`)
	assert.Contains(t, buf.String(), `"msg":"MachineProvider registration gave up`)
}

func TestOptions(t *testing.T) {
	_, err := New(nil, Options{ProviderName: "kv"}, slog.Default())
	require.EqualError(t, err, "registration: supervisor client is nil")
	err = Options{ProviderName: "Not_A_Name", VitistackName: "also bad", MaxAttempts: -1, AttemptTimeout: -time.Second}.Validate()
	require.Error(t, err)
	for _, want := range []string{`NAME_MACHINE_PROVIDER="Not_A_Name"`, `VITISTACK_NAME="also bad"`, "attempts -1: must not be negative",
		"attempt timeout -1s: must not be negative"} {
		assert.Contains(t, err.Error(), want)
	}
	require.NoError(t, Options{ProviderName: DefaultProviderName}.Validate(), "VITISTACK_NAME is optional")
}
