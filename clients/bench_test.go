package clients

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testenv"
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
	// A burst is 64 callers asking for the same cold config at once, as
	// the activities of a fan-out do after an invalidation; ns/op is per
	// burst. Every caller must get the same client: a burst that built two
	// fails. secretReads/burst is the supervisor's load: a caller that
	// missed the cache just before the first flight stored its client
	// starts a second flight, which reads the Secret again but keeps the
	// client (same kubeconfig).
	b.Run("burst=64", func(b *testing.B) {
		const callers = 64
		secrets := &countingReader{Reader: env.Supervisor.Client}
		m := integrationManager(b, env, WithSecretReader(secrets))
		got := make([]client.Client, callers)
		var bursts int
		b.ReportAllocs()
		for b.Loop() {
			m.InvalidateClient(name)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					<-start
					var err error
					if got[i], err = m.GetClientForConfig(ctx, name); err != nil {
						b.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			for i, c := range got {
				if c != got[0] {
					b.Fatalf("caller %d of %d got another client: one cold config built more than one", i, callers)
				}
			}
			bursts++
		}
		b.ReportMetric(float64(secrets.gets.Load())/float64(bursts), "secretReads/burst")
	})
}

// countingReader counts Gets: as a manager's Secret reader, the clients it
// built or revalidated.
type countingReader struct {
	client.Reader
	gets atomic.Int64
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	r.gets.Add(1)
	return r.Reader.Get(ctx, key, obj, opts...)
}

// BenchmarkGetClientForConfigMemory reports the live heap one cached
// client holds (B/client): the heap after a GC with a manager holding
// clients for 100 configs, less the heap before it was made. Each config
// names a TLS server of its own, so each client gets its own transport as
// clusters with their own CAs do, instead of sharing one from client-go's
// process-wide transport cache; the names change every iteration for the
// same reason. ns/op is the cold build of the 100 clients from an
// in-memory supervisor (no network I/O: clients connect on first use).
func BenchmarkGetClientForConfigMemory(b *testing.B) {
	const configs = 100
	s := testScheme(b)
	ctx := b.Context()
	var iterations, heapGrowth int64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		names := make([]string, configs)
		var objs []client.Object
		for i := range names {
			names[i] = fmt.Sprintf("c%d", i)
			cluster := &clientcmdapi.Cluster{
				Server: "https://127.0.0.1:6443", InsecureSkipTLSVerify: true,
				TLSServerName: fmt.Sprintf("cluster-%d-%d.example", iterations, i),
			}
			objs = append(objs, configObjects(names[i], kubeconfigData(writeKubeconfig(b, cluster, &clientcmdapi.AuthInfo{Token: "t"})))...)
		}
		sup := newSupervisor(b, objs...)
		before := liveHeap()
		b.StartTimer()

		m := NewKubevirtClientManager(sup, s, testConfigNamespace)
		for _, name := range names {
			if _, err := m.GetClientForConfig(ctx, name); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		heapGrowth += int64(liveHeap()) - int64(before)
		runtime.KeepAlive(m)
		runtime.KeepAlive(sup)
		iterations++
		b.StartTimer()
	}
	b.ReportMetric(float64(heapGrowth)/float64(iterations*configs), "B/client")
}

// liveHeap returns the bytes of live heap objects after a full GC.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
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
