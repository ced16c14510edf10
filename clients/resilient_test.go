package clients

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/internal/names"
)

func unreachable(config string) error {
	return &Error{Kind: ErrClusterUnreachable, Config: config, Reason: "connection refused"}
}

// newResilient decorates mock with a fake clock and records the backoff
// waits instead of sleeping.
func newResilient(mock *MockClientManager, opts ResilienceOptions) (*ResilientClientManager, *clocktesting.FakePassiveClock, *[]time.Duration) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	opts.Clock = clk
	r := NewResilientClientManager(mock, opts)
	var mu sync.Mutex
	waits := &[]time.Duration{}
	r.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return r, clk, waits
}

func TestResilientRetriesTransientFailures(t *testing.T) {
	mock := NewMockClientManager()
	cluster := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	failures := 2
	mock.GetClientForConfigFunc = func(_ context.Context, name string) (client.Client, error) {
		if failures > 0 {
			failures--
			return nil, unreachable(name)
		}
		return cluster, nil
	}
	r, _, waits := newResilient(mock, ResilienceOptions{Attempts: 3, RetryInitial: 100 * time.Millisecond, RetryMax: 150 * time.Millisecond})

	c, err := r.GetClientForConfig(context.Background(), "a")
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, []string{"a", "a", "a"}, mock.Snapshot().GetClient, "two retries after two transient failures")
	require.Len(t, *waits, 2)
	assert.GreaterOrEqual(t, (*waits)[0], 50*time.Millisecond)
	assert.Less(t, (*waits)[0], 100*time.Millisecond+time.Nanosecond)
	assert.GreaterOrEqual(t, (*waits)[1], 75*time.Millisecond, "second wait from the doubled, capped backoff")
	assert.LessOrEqual(t, (*waits)[1], 150*time.Millisecond)
	assert.Equal(t, BreakerClosed, r.BreakerState("a"))
}

func TestResilientGivesUpAfterAttempts(t *testing.T) {
	mock := NewMockClientManager()
	mock.GetClientError = unreachable("a")
	r, _, waits := newResilient(mock, ResilienceOptions{Attempts: 4, FailureThreshold: 100})
	_, err := r.GetClientForConfig(context.Background(), "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.Len(t, mock.Snapshot().GetClient, 4)
	assert.Len(t, *waits, 3)
}

// A cluster whose requests hang until their timeout: the retries stop
// while the caller's deadline leaves room, so the caller gets the
// cluster's error rather than its own deadline.
func TestResilientStartsNoTryTheDeadlineWouldCut(t *testing.T) {
	mock := NewMockClientManager()
	mock.GetClientForConfigFunc = func(ctx context.Context, name string) (client.Client, error) {
		select {
		case <-time.After(300 * time.Millisecond): // the request timeout
			return nil, unreachable(name)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r, _, _ := newResilient(mock, ResilienceOptions{Attempts: 10, FailureThreshold: 100, RetryInitial: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_, err := r.GetClientForConfig(ctx, "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	require.NoError(t, ctx.Err(), "returned before the deadline")
	assert.Len(t, mock.Snapshot().GetClient, 2, "a third try would have ended at the deadline")
}

func TestResilientDoesNotRetryFinalErrors(t *testing.T) {
	for _, final := range []error{
		&Error{Kind: ErrConfigNotFound, Config: "a"},
		&Error{Kind: ErrInvalidKubeconfig, Config: "a"},
		&Error{Kind: ErrUnauthorized, Config: "a"},
		&Error{Kind: ErrKubeVirtAPIMissing, Config: "a"},
		&Error{Kind: ErrAmbiguousPlacement, Machine: "ns/m"},
		apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, "x"),
		errors.New("something else"),
	} {
		t.Run(final.Error(), func(t *testing.T) {
			mock := NewMockClientManager()
			mock.GetRESTConfigError = final
			r, _, waits := newResilient(mock, ResilienceOptions{FailureThreshold: 1})
			_, err := r.GetRESTConfigForConfig(context.Background(), "a")
			require.ErrorIs(t, err, final)
			assert.Len(t, mock.Snapshot().GetRESTConfig, 1)
			assert.Empty(t, *waits)
			assert.Equal(t, BreakerClosed, r.BreakerState("a"), "an answer is not a cluster failure")
		})
	}
}

func TestResilientRetriesTransientSupervisorErrors(t *testing.T) {
	mock := NewMockClientManager()
	calls := 0
	mock.ListKubevirtConfigsFunc = func(context.Context) ([]v1alpha1.KubevirtConfig, error) {
		calls++
		if calls == 1 {
			return nil, apierrors.NewServiceUnavailable("etcd leader change")
		}
		return []v1alpha1.KubevirtConfig{{ObjectMeta: metav1.ObjectMeta{Name: "a"}}}, nil
	}
	r, _, _ := newResilient(mock, ResilienceOptions{})
	configs, err := r.ListKubevirtConfigs(context.Background())
	require.NoError(t, err)
	assert.Len(t, configs, 1)
	assert.Equal(t, 2, calls)
}

func TestBreakerOpensFailsFastAndProbesAfterCoolDown(t *testing.T) {
	mock := NewMockClientManager()
	cluster := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	down := true
	mock.GetClientForConfigFunc = func(_ context.Context, name string) (client.Client, error) {
		if down && name == "a" {
			return nil, unreachable(name)
		}
		return cluster, nil
	}
	r, clk, _ := newResilient(mock, ResilienceOptions{Attempts: 1, FailureThreshold: 3, CoolDown: time.Minute})
	ctx := context.Background()
	get := func(name string) error {
		_, err := r.GetClientForConfig(ctx, name)
		return err
	}

	for range 3 {
		require.ErrorIs(t, get("a"), ErrClusterUnreachable)
	}
	assert.Equal(t, BreakerOpen, r.BreakerState("a"))

	clk.SetTime(clk.Now().Add(20 * time.Second))
	err := get("a")
	var open *CircuitOpenError
	require.ErrorAs(t, err, &open)
	assert.ErrorIs(t, err, ErrCircuitOpen)
	assert.ErrorIs(t, err, ErrClusterUnreachable, "callers treat an open breaker as an unreachable cluster")
	assert.Equal(t, `KubevirtConfig "a": cluster unreachable: circuit breaker open after 3 consecutive failures, next probe in 40s`, err.Error())
	assert.Len(t, mock.Snapshot().GetClient, 3, "fail fast: the cluster is not called while open")
	require.NoError(t, get("b"), "breakers are per config")

	// After the cool-down one probe goes through; it fails, so the breaker
	// opens again for a full cool-down.
	clk.SetTime(clk.Now().Add(40 * time.Second))
	assert.Equal(t, BreakerHalfOpen, r.BreakerState("a"))
	require.ErrorIs(t, get("a"), ErrClusterUnreachable)
	assert.Len(t, mock.Snapshot().GetClient, 5, "the probe reached the cluster")
	assert.Equal(t, BreakerOpen, r.BreakerState("a"))
	require.ErrorIs(t, get("a"), ErrCircuitOpen)

	// The cluster is back: the next probe closes the breaker.
	down = false
	clk.SetTime(clk.Now().Add(time.Minute))
	require.NoError(t, get("a"))
	assert.Equal(t, BreakerClosed, r.BreakerState("a"))
	require.NoError(t, get("a"))
}

func TestHalfOpenLetsExactlyOneProbeThrough(t *testing.T) {
	mock := NewMockClientManager()
	cluster := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	var fail = true
	probing, release := make(chan struct{}), make(chan struct{})
	mock.GetClientForConfigFunc = func(_ context.Context, name string) (client.Client, error) {
		if fail {
			return nil, unreachable(name)
		}
		close(probing)
		<-release
		return cluster, nil
	}
	r, clk, _ := newResilient(mock, ResilienceOptions{Attempts: 1, FailureThreshold: 1, CoolDown: time.Second})
	ctx := context.Background()
	_, err := r.GetClientForConfig(ctx, "a")
	require.Error(t, err)
	fail = false
	clk.SetTime(clk.Now().Add(time.Second))

	done := make(chan error)
	go func() {
		_, err := r.GetClientForConfig(ctx, "a")
		done <- err
	}()
	<-probing
	_, err = r.GetClientForConfig(ctx, "a")
	require.ErrorIs(t, err, ErrCircuitOpen, "a second call while the probe runs fails fast")
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, BreakerClosed, r.BreakerState("a"))
	assert.Len(t, mock.Snapshot().GetClient, 2)
}

func TestCallerCancellationDoesNotCountAsFailure(t *testing.T) {
	mock := NewMockClientManager()
	ctx, cancel := context.WithCancel(context.Background())
	mock.GetClientForConfigFunc = func(ctx context.Context, name string) (client.Client, error) {
		cancel()
		return nil, &Error{Kind: ErrClusterUnreachable, Config: name, cause: ctx.Err()}
	}
	r, _, waits := newResilient(mock, ResilienceOptions{FailureThreshold: 1})
	_, err := r.GetClientForConfig(ctx, "a")
	require.Error(t, err)
	assert.Equal(t, BreakerClosed, r.BreakerState("a"))
	assert.Empty(t, *waits, "no retry once the caller has given up")
}

// ValidateConnection is a probe: a dark cluster costs one try and reports
// its own error, also while the config's breaker is open, and the probe
// neither opens nor closes the breaker.
func TestValidateConnectionIsNeitherRetriedNorGuarded(t *testing.T) {
	mock := NewMockClientManager()
	mock.GetClientError = unreachable("a")
	mock.ValidateConnectionError = unreachable("a")
	r, _, waits := newResilient(mock, ResilienceOptions{Attempts: 3, FailureThreshold: 1, CoolDown: time.Minute})
	ctx := context.Background()

	err := r.ValidateConnection(ctx, "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.NotErrorIs(t, err, ErrCircuitOpen)
	assert.Len(t, mock.Snapshot().ValidateConnection, 1, "not retried")
	assert.Empty(t, *waits)
	assert.Equal(t, BreakerClosed, r.BreakerState("a"), "a probe's failure does not count towards the breaker")

	_, err = r.GetClientForConfig(ctx, "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	require.Equal(t, BreakerOpen, r.BreakerState("a"))

	err = r.ValidateConnection(ctx, "a")
	require.ErrorIs(t, err, ErrClusterUnreachable)
	assert.NotErrorIs(t, err, ErrCircuitOpen, "the probe reaches the cluster while the breaker is open")
	assert.Len(t, mock.Snapshot().ValidateConnection, 2)

	mock.ValidateConnectionError = nil
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	require.NoError(t, r.ValidateConnection(ctx, "a"), "the cluster as it is now")
	assert.Equal(t, BreakerOpen, r.BreakerState("a"), "nor does its success close the breaker")
}

func TestGuardedClientFeedsTheBreaker(t *testing.T) {
	mock := NewMockClientManager()
	clusterDown := false
	cluster := interceptor.NewClient(fake.NewClientBuilder().WithScheme(testScheme(t)).Build(), interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if clusterDown {
				return apierrors.NewInternalError(errors.New("apiserver restarting"))
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	mock.AddMockedClient("a", cluster)
	r, clk, _ := newResilient(mock, ResilienceOptions{Attempts: 1, FailureThreshold: 2, CoolDown: time.Minute})
	ctx := context.Background()

	c, err := r.GetClientForConfig(ctx, "a")
	require.NoError(t, err)
	var cm corev1.ConfigMap
	key := client.ObjectKey{Namespace: "default", Name: "absent"}
	require.True(t, apierrors.IsNotFound(c.Get(ctx, key, &cm)), "NotFound is an answer and passes through")
	require.NoError(t, c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}}))

	clusterDown = true
	for range 2 {
		require.True(t, apierrors.IsInternalError(c.Get(ctx, key, &cm)))
	}
	assert.Equal(t, BreakerOpen, r.BreakerState("a"))
	require.ErrorIs(t, c.Get(ctx, key, &cm), ErrCircuitOpen, "requests through handed-out clients fail fast")
	require.ErrorIs(t, c.Status().Update(ctx, &cm), ErrCircuitOpen)
	_, err = r.GetClientForConfig(ctx, "a")
	require.ErrorIs(t, err, ErrCircuitOpen)
	assert.Len(t, mock.Snapshot().GetClient, 1)

	clusterDown = false
	clk.SetTime(clk.Now().Add(time.Minute))
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "x"}, &cm), "the probe")
	assert.Equal(t, BreakerClosed, r.BreakerState("a"))
}

func TestPlacementByAnnotationFailsFastWhileOpen(t *testing.T) {
	mock := NewMockClientManager()
	mock.AddMockedClient("a", fake.NewClientBuilder().WithScheme(testScheme(t)).Build())
	mock.GetClientError = unreachable("a")
	r, _, _ := newResilient(mock, ResilienceOptions{Attempts: 1, FailureThreshold: 1})
	_, err := r.GetClientForConfig(context.Background(), "a")
	require.Error(t, err)
	mock.GetClientError = nil

	machine := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m",
		Annotations: map[string]string{names.PlacementAnnotation: "a"}}}
	_, _, err = r.GetOrCreateClientFromMachine(context.Background(), machine)
	require.ErrorIs(t, err, ErrCircuitOpen)
	assert.Empty(t, mock.Snapshot().GetOrCreateFromMachine)

	machine.Annotations = nil
	mock.DefaultConfig = "a"
	_, name, err := r.GetOrCreateClientFromMachine(context.Background(), machine)
	require.NoError(t, err, "placement without annotation is decided by the manager")
	assert.Equal(t, "a", name)
}

func TestResilientPassesThrough(t *testing.T) {
	mock := NewMockClientManager()
	mock.ConfigNamespace = "cfg"
	mock.HealthCheckFunc = func(context.Context) map[string]error { return map[string]error{"a": unreachable("a")} }
	r, _, _ := newResilient(mock, ResilienceOptions{})
	assert.Equal(t, "cfg", r.GetConfigNamespace())
	r.InvalidateClient("a")
	r.InvalidateAll()
	assert.Len(t, r.HealthCheck(context.Background()), 1)
	calls := mock.Snapshot()
	assert.Equal(t, []string{"a"}, calls.InvalidateClient)
	assert.Equal(t, 1, calls.InvalidateAll)
	assert.Equal(t, 1, calls.HealthCheck)
}
