package clients

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/testenv"
)

// cachedManager returns a manager with a warm cache for config "east".
func cachedManager(b *testing.B) *KubevirtClientManager {
	srv := newAPIServer(b, "t")
	m := newManager(b, newSupervisor(b, tokenConfig(b, "east", srv.URL, "t")...))
	_, err := m.GetClientForConfig(b.Context(), "east")
	require.NoError(b, err)
	return m
}

// BenchmarkGetClientForConfigCached is the hot path. Target: <= 100 ns/op,
// 0 allocs/op.
func BenchmarkGetClientForConfigCached(b *testing.B) {
	m := cachedManager(b)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.GetClientForConfig(ctx, "east"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetClientForConfigCachedParallel(b *testing.B) {
	m := cachedManager(b)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.GetClientForConfig(ctx, "east"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetClientForConfigCold measures a build on a real supervisor:
// KubevirtConfig and Secret reads, kubeconfig parsing, transport and
// client construction; "validate" adds the first request (TLS handshake
// and discovery) to a real KubeVirt cluster.
func BenchmarkGetClientForConfigCold(b *testing.B) {
	env := testenv.New(b, testenv.Options{Clusters: 1})
	m := integrationManager(b, env)
	name := env.Clusters[0].Name
	ctx := b.Context()
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.InvalidateClient(name)
			if _, err := m.GetClientForConfig(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build+validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.InvalidateClient(name)
			if err := m.ValidateConnection(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHealthCheckFanOut checks n clusters that each take 20 ms to
// answer: with the checks running at once, ns/op stays near 20 ms
// whatever n is.
func BenchmarkHealthCheckFanOut(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("configs=%d", n), func(b *testing.B) {
			api := newAPIServer(b, "t")
			var objs []client.Object
			for i := range n {
				// A server per config, as clusters are: one shared host
				// would make the configs compete for its idle connections.
				slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					time.Sleep(20 * time.Millisecond)
					api.Config.Handler.ServeHTTP(w, r)
				}))
				b.Cleanup(slow.Close)
				objs = append(objs, tokenConfig(b, fmt.Sprintf("c%d", i), slow.URL, "t")...)
			}
			// The default 20 QPS per cluster would make this measure the
			// rate limiter (one check per 50 ms) instead of the fan-out.
			m := newManager(b, newSupervisor(b, objs...), WithQPS(1e4), WithBurst(1e4))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if failures := m.HealthCheck(ctx); len(failures) != 0 {
					b.Fatal(failures)
				}
			}
		})
	}
}

// BenchmarkHealthCheckHarness runs HealthCheck over 10 configs spread over
// two real API servers.
func BenchmarkHealthCheckHarness(b *testing.B) {
	env := testenv.New(b, testenv.Options{Clusters: 2})
	ctx := b.Context()
	for i := range 8 {
		require.NoError(b, env.RegisterCluster(ctx, fmt.Sprintf("extra-%d", i), env.Clusters[i%2].Kubeconfig))
	}
	m := integrationManager(b, env, WithQPS(1e4), WithBurst(1e4)) // see BenchmarkHealthCheckFanOut
	b.ReportAllocs()
	for b.Loop() {
		if failures := m.HealthCheck(ctx); len(failures) != 0 {
			b.Fatal(failures)
		}
	}
}
