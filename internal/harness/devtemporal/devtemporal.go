package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/freeport"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/names"
)

const (
	defaultNamespace    = "default"
	defaultReadyTimeout = time.Minute
	// stopGrace bounds Stop: the dev server exits on SIGTERM within a
	// second or two; past this it is killed.
	stopGrace = 10 * time.Second
	// dialInterval spaces the readiness dials.
	dialInterval = 100 * time.Millisecond
	// outputTail is how much of the server's last output a failed start
	// reports.
	outputTail = 2 << 10
)

// Options tune the dev server; the zero value is a headless, in-memory
// server on a free port with namespace "default".
type Options struct {
	// HostPort to bind the frontend to; empty picks a free port.
	HostPort string
	// Namespace to register; empty means "default".
	Namespace string
	// DBFile keeps state across restarts; empty keeps it in memory.
	DBFile string
	// UI enables the web UI, on UIPort when set.
	UI     bool
	UIPort string
	// ReadyTimeout bounds the wait for the server to accept clients (as
	// does Start's context); zero means one minute.
	ReadyTimeout time.Duration
	// Out receives the server's standard output and error; nil discards it.
	Out io.Writer
	// Log gets the process's start and stop lines and the client's logs;
	// nil discards them.
	Log *slog.Logger
	// CLI is the temporal binary; empty is CLIPath's.
	CLI string
	// Env is the server's environment; nil is this process's.
	Env []string
}

// Server is a running dev server with a client connected to it.
type Server struct {
	proc     *childproc.Process
	client   client.Client
	hostPort string
}

// Client is connected to the server's namespace.
func (s *Server) Client() client.Client { return s.client }

// FrontendHostPort is the frontend's host:port, for other clients.
func (s *Server) FrontendHostPort() string { return s.hostPort }

// Pid is the server's process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Done is closed when the server has exited.
func (s *Server) Done() <-chan struct{} { return s.proc.Done() }

// Stop closes the client and stops the server: SIGTERM, then SIGKILL after
// a grace period. It fails if the server exited with an error or left a
// process behind (which it then kills).
func (s *Server) Stop() error {
	s.client.Close()
	if err := s.proc.Stop(stopGrace); err != nil {
		return fmt.Errorf("stopping the Temporal dev server on %s: %w", s.hostPort, err)
	}
	return nil
}

// CLIPath is the Temporal CLI: $TEMPORAL_CLI, else <repo>/bin/temporal.
func CLIPath() (string, error) {
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		root, err := testenv.RepoRoot()
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("temporal CLI not found (run `make tools`): %w", err)
	}
	return path, nil
}

// Args are the arguments of `temporal server start-dev` for opts, whose
// HostPort must be set: those the SDK's testsuite passes, with machineflow's
// search attributes registered (idempotently, so a kept DBFile is fine), no
// version check calling home, and only errors logged.
func Args(opts Options) ([]string, error) {
	host, port, err := net.SplitHostPort(opts.HostPort)
	if err != nil {
		return nil, fmt.Errorf("temporal dev server host:port %q: %w", opts.HostPort, err)
	}
	args := []string{"server", "start-dev",
		"--ip", host, "--port", port,
		"--namespace", namespaceOrDefault(opts.Namespace),
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
		"--log-level", "error",
	}
	if !opts.UI {
		args = append(args, "--headless")
	}
	if opts.DBFile != "" {
		args = append(args, "--db-filename", opts.DBFile)
	}
	if opts.UIPort != "" {
		args = append(args, "--ui-port", opts.UIPort)
	}
	for _, name := range names.KeywordSearchAttributes() {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	return args, nil
}

// Start starts a dev server and waits until it accepts clients. If it
// does not by ctx's deadline or opts.ReadyTimeout, or exits first, the
// server is stopped and the error carries the end of its output.
func Start(ctx context.Context, opts Options) (*Server, error) {
	path := opts.CLI
	var err error
	if path == "" {
		if path, err = CLIPath(); err != nil {
			return nil, err
		}
	}
	if opts.HostPort == "" {
		if opts.HostPort, err = freeport.Address(); err != nil {
			return nil, fmt.Errorf("temporal dev server: %w", err)
		}
	}
	args, err := Args(opts)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tail := &childproc.Tail{Max: outputTail}
	out := io.Writer(tail)
	if opts.Out != nil {
		out = io.MultiWriter(opts.Out, tail)
	}
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	proc, err := childproc.Start(childproc.Command{Name: "temporal dev server", Path: path, Args: args, Env: env, Out: out, Log: log})
	if err != nil {
		return nil, err
	}

	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := waitReady(ctx, proc, client.Options{
		HostPort:  opts.HostPort,
		Namespace: namespaceOrDefault(opts.Namespace),
		Logger:    tlog.NewStructuredLogger(log),
	})
	if err != nil {
		// Stop waits for the exit, after which the tail is complete.
		err = fmt.Errorf("starting the Temporal dev server on %s: %w", opts.HostPort, errors.Join(err, proc.Stop(stopGrace)))
		if output := tail.String(); output != "" {
			err = fmt.Errorf("%w; its last output:\n%s", err, output)
		}
		return nil, err
	}
	return &Server{proc: proc, client: c, hostPort: opts.HostPort}, nil
}

// waitReady dials until a client connects, the process exits or ctx ends.
func waitReady(ctx context.Context, proc *childproc.Process, opts client.Options) (client.Client, error) {
	ticker := time.NewTicker(dialInterval)
	defer ticker.Stop()
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		select {
		case <-proc.Done():
			return nil, errors.New("it exited before accepting clients")
		case <-ctx.Done():
			return nil, fmt.Errorf("not accepting clients in time (%w), last dial: %w", context.Cause(ctx), err)
		case <-ticker.C:
		}
	}
}

// New starts a headless in-memory dev server for a test and stops it when
// the test ends. With -short the test is skipped: it needs a real server.
func New(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: needs the Temporal dev server (bin/temporal); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

func namespaceOrDefault(ns string) string {
	if ns == "" {
		return defaultNamespace
	}
	return ns
}
