package stack

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// A request the gate holds has not reached the API server; released after
// its caller gave up, it still does, as a write in flight when a worker is
// killed. Other requests pass, a wrong token does not, and closing a hold
// releases what it held.
func TestGateHoldsUntilReleased(t *testing.T) {
	env := testenv.New(t, testenv.Options{SupervisorOnly: true})
	ctx := t.Context()
	admin := env.Supervisor.Client
	g, err := NewGate(env.Supervisor.Config)
	require.NoError(t, err)
	t.Cleanup(g.Close)
	kubeconfig, err := g.Kubeconfig()
	require.NoError(t, err)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	require.NoError(t, err)
	via, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	require.NoError(t, via.Get(ctx, client.ObjectKey{Name: "default"}, &corev1.Namespace{}), "unheld requests pass")
	stranger := *cfg
	stranger.BearerToken = "not-the-gate-token"
	other, err := client.New(&stranger, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	assert.True(t, apierrors.IsUnauthorized(other.Get(ctx, client.ObjectKey{Name: "default"}, &corev1.Namespace{})), "a wrong token is refused")

	hold := g.Hold(func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/configmaps") })
	create := func(ctx context.Context, name string) chan error {
		done := make(chan error, 1)
		go func() {
			done <- via.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}})
		}()
		return done
	}
	callerCtx, giveUp := context.WithCancel(ctx)
	done := create(callerCtx, "after-the-caller")
	held := <-hold.C()
	assert.Equal(t, "POST /api/v1/namespaces/default/configmaps", held.String())
	assert.True(t, held.Mutating())
	key := client.ObjectKey{Namespace: "default", Name: "after-the-caller"}
	assert.True(t, apierrors.IsNotFound(admin.Get(ctx, key, &corev1.ConfigMap{})), "held: not on the server yet")
	giveUp()
	require.Error(t, <-done, "the caller is gone")
	held.Release()
	require.Eventually(t, func() bool { return admin.Get(ctx, key, &corev1.ConfigMap{}) == nil }, 10*time.Second, 20*time.Millisecond,
		"released, the write lands although its caller is gone")

	done = create(ctx, "released-by-close")
	held = <-hold.C()
	assert.False(t, (&HeldRequest{Method: http.MethodGet}).Mutating())
	hold.Close()
	require.NoError(t, <-done, "closing the hold releases it")
	require.NoError(t, via.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unheld"}}), "a closed hold holds nothing")
	held.Release() // a no-op: Close released it
}
