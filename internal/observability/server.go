package observability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness collects the checks behind /readyz.
type Readiness struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewReadiness returns a Readiness without checks (always ready).
func NewReadiness() *Readiness {
	return &Readiness{checks: map[string]func(context.Context) error{}}
}

// Add registers (or replaces) the check called name.
func (r *Readiness) Add(name string, check func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = check
}

// Check runs every check concurrently and returns the failures by name.
func (r *Readiness) Check(ctx context.Context) map[string]error {
	r.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(r.checks))
	for name, c := range r.checks {
		checks[name] = c
	}
	r.mu.Unlock()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		failures = map[string]error{}
	)
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				mu.Lock()
				failures[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}

// readyTimeout bounds /readyz, below the usual probe timeout of a kubelet.
const readyTimeout = 2 * time.Second

// Handler serves /metrics from g, /healthz, and /readyz from r.
func Handler(g prometheus.Gatherer, r *Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), readyTimeout)
		defer cancel()
		failures := r.Check(ctx)
		if len(failures) == 0 {
			fmt.Fprintln(w, "ok")
			return
		}
		names := make([]string, 0, len(failures))
		for name := range failures {
			names = append(names, name)
		}
		slices.Sort(names)
		var b strings.Builder
		for _, name := range names {
			fmt.Fprintf(&b, "%s: %v\n", name, failures[name])
		}
		http.Error(w, strings.TrimSuffix(b.String(), "\n"), http.StatusServiceUnavailable)
	})
	return mux
}

// Server is the HTTP server of the endpoints.
type Server struct {
	address string
	srv     *http.Server
	log     *slog.Logger
	ln      net.Listener
}

// NewServer returns a server for address (host:port, ":0" for a free port).
func NewServer(address string, h http.Handler, log *slog.Logger) *Server {
	return &Server{address: address, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, log: log}
}

// Start binds the address, so that a port in use fails start-up, and
// serves in the background until Shutdown.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.address)
	if err != nil {
		return fmt.Errorf("METRICS_ADDRESS=%q: %w", s.address, err)
	}
	s.ln = ln
	s.log.Info("Serving metrics and health", "address", s.Addr())
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("Metrics server stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the bound address, once started.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the server, letting a running scrape finish within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping the metrics server: %w", err)
	}
	return nil
}
