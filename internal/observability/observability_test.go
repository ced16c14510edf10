package observability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestModuleServesMetricsHealthAndReadiness(t *testing.T) {
	var (
		srv       *Server
		handler   client.MetricsHandler
		readiness *Readiness
		reg       prometheus.Registerer
	)
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(Options{Address: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil))),
		Module,
		fx.Populate(&srv, &handler, &readiness, &reg),
	)
	app.RequireStart()
	base := "http://" + srv.Addr()

	// Our own metrics and the SDK's land on the same registry.
	ours := prometheus.NewCounter(prometheus.CounterOpts{Name: "machineflow_test_total", Help: "test"})
	reg.MustRegister(ours)
	ours.Add(3)
	handler.WithTags(map[string]string{"task_queue": "machineflow"}).Counter("temporal_request").Inc(2)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body := get(t, base+"/metrics")
		assert.Equal(c, http.StatusOK, code)
		assert.Contains(c, body, `temporal_request_total{task_queue="machineflow"} 2`)
		assert.Contains(c, body, "machineflow_test_total 3")
		assert.Contains(c, body, "go_goroutines")
		assert.NotContains(c, body, "tally_internal")
	}, 10*time.Second, 100*time.Millisecond, "the SDK's metrics are reported into the registry every second")

	code, body := get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)

	code, _ = get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	readiness.Add("worker", func(context.Context) error { return errors.New("not started") })
	readiness.Add("temporal", func(context.Context) error { return nil })
	code, body = get(t, base+"/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "worker: not started\n", body)
	readiness.Add("worker", func(context.Context) error { return nil })
	code, _ = get(t, base+"/readyz")
	assert.Equal(t, http.StatusOK, code)

	app.RequireStop()
	_, err := http.Get(base + "/healthz")
	require.Error(t, err, "the server stops with the app")
}

func TestPortInUseFailsStart(t *testing.T) {
	first := NewServer("127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	require.NoError(t, first.Start(context.Background()))
	t.Cleanup(func() { _ = first.Shutdown(context.Background()) })

	second := NewServer(first.Addr(), http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	err := second.Start(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), `METRICS_ADDRESS="`+first.Addr()+`"`), err.Error())
}

func TestReadinessRunsChecksConcurrently(t *testing.T) {
	r := NewReadiness()
	release := make(chan struct{})
	for _, name := range []string{"a", "b"} {
		r.Add(name, func(ctx context.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	r.Add("c", func(context.Context) error { close(release); return nil })
	assert.Empty(t, r.Check(context.Background()), "a and b finish only because c ran alongside them")
}

// Every request client-go makes shows on /metrics by host and code: the
// requests a worker sends to the supervisor and each KubeVirt cluster.
func TestMetricsCountClientGoRequestsByHost(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"major":"1","minor":"36"}`)
	}))
	t.Cleanup(api.Close)
	var srv *Server
	app := fxtest.New(t, fx.NopLogger,
		fx.Supply(Options{Address: "127.0.0.1:0"}, slog.New(slog.DiscardHandler)),
		Module,
		fx.Populate(&srv),
	)
	app.RequireStart()
	t.Cleanup(app.RequireStop)

	kube, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL})
	require.NoError(t, err)
	for range 3 {
		_, err := kube.Discovery().ServerVersion()
		require.NoError(t, err)
	}
	host := strings.TrimPrefix(api.URL, "http://")
	code, body := get(t, "http://"+srv.Addr()+"/metrics")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, fmt.Sprintf(`rest_client_requests_total{code="200",host=%q,method="GET"} 3`, host))
}
