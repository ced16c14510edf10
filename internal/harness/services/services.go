package services

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/freeport"
)

// DefaultReadyTimeout bounds the wait for /readyz when Options leave it
// zero.
const DefaultReadyTimeout = time.Minute

// Options say where a service's output goes and how long its start may
// take.
type Options struct {
	// LogPath, when set, receives the output, appended across restarts;
	// a failed start quotes its end. Otherwise Out receives it.
	LogPath string
	Out     io.Writer
	// Log gets the start, stop and kill lines; nil logs nothing.
	Log *slog.Logger
	// ReadyTimeout bounds each start's wait for /readyz; zero is
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Service is one worker or controller process. It can be stopped, killed
// and started again any number of times; its ports and output stay.
type Service struct {
	name, bin       string
	env             []string
	metrics, probes string
	opts            Options

	mu   sync.Mutex
	proc *childproc.Process // nil before the first Start
	// killed is the start that Kill ended: its death is the caller's
	// doing, not a failure for Stop to report.
	killed *childproc.Process
}

// Worker is a worker process: metrics, /healthz and /readyz on one free
// port (METRICS_ADDRESS), on top of env.
func Worker(name, bin string, env []string, o Options) (*Service, error) {
	metrics, err := freeport.Address()
	if err != nil {
		return nil, fmt.Errorf("a port for %s's metrics: %w", name, err)
	}
	return newService(name, bin, slices.Concat(env, []string{"METRICS_ADDRESS=" + metrics}), metrics, metrics, o), nil
}

// Controller is the controller process: metrics (METRICS_BIND_ADDRESS)
// and probes (HEALTH_PROBE_BIND_ADDRESS) on free ports of their own, on
// top of env.
func Controller(bin string, env []string, o Options) (*Service, error) {
	metrics, err := freeport.Address()
	if err != nil {
		return nil, fmt.Errorf("a port for the controller's metrics: %w", err)
	}
	probes, err := freeport.Address()
	if err != nil {
		return nil, fmt.Errorf("a port for the controller's probes: %w", err)
	}
	env = slices.Concat(env, []string{"METRICS_BIND_ADDRESS=" + metrics, "HEALTH_PROBE_BIND_ADDRESS=" + probes})
	return newService("controller", bin, env, metrics, probes, o), nil
}

func newService(name, bin string, env []string, metrics, probes string, o Options) *Service {
	o.ReadyTimeout = cmp.Or(o.ReadyTimeout, DefaultReadyTimeout)
	return &Service{name: name, bin: bin, env: env, metrics: metrics, probes: probes, opts: o}
}

// Name is the name it was made with: "worker-<n>", "worker" or
// "controller".
func (p *Service) Name() string { return p.name }

// MetricsAddress is the host:port of /metrics (the worker's also serves
// /healthz and /readyz).
func (p *Service) MetricsAddress() string { return p.metrics }

// LogPath is the process's log file, empty when its output goes to
// Options.Out.
func (p *Service) LogPath() string { return p.opts.LogPath }

func (p *Service) process() *childproc.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proc
}

// Running reports whether the process has been started and not exited.
func (p *Service) Running() bool {
	proc := p.process()
	return proc != nil && !proc.Exited()
}

// Pid is the process id of the latest start.
func (p *Service) Pid() int { return p.process().Pid() }

// ExitCode is how the latest start ended: -1 if a signal ended it; valid
// once it has exited.
func (p *Service) ExitCode() int { return p.process().ExitCode() }

// Done is closed when the latest start has exited.
func (p *Service) Done() <-chan struct{} { return p.process().Done() }

// Start starts the process and waits until its /readyz answers 200. It
// fails if the process is running already, exits first, or is not ready
// in time (then it is killed).
func (p *Service) Start(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("starting %s: already running (pid %d)", p.name, p.Pid())
	}
	out := p.opts.Out
	if p.opts.LogPath != "" {
		log, err := os.OpenFile(p.opts.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("starting %s: %w", p.name, err)
		}
		// The child has its own copy of the file descriptor.
		defer func() { _ = log.Close() }()
		out = log
	}
	proc, err := childproc.Start(childproc.Command{Name: p.name, Path: p.bin, Env: p.env, Out: out, Log: p.opts.Log})
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, p.opts.ReadyTimeout)
	defer cancel()
	readyz := "http://" + p.probes + "/readyz"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for httpStatus(readyz) != http.StatusOK {
		select {
		case <-proc.Done():
			return fmt.Errorf("%s exited during start-up (%v)%s", p.name, proc.Err(), p.lastOutput())
		case <-ctx.Done():
			_ = proc.Kill()
			return fmt.Errorf("%s not ready (%s) within %s: %w%s", p.name, readyz, p.opts.ReadyTimeout, ctx.Err(), p.lastOutput())
		case <-tick.C:
		}
	}
	return nil
}

// lastOutput is the end of the log file for an error, or where to look.
func (p *Service) lastOutput() string {
	if p.opts.LogPath == "" {
		return "; see its output above"
	}
	return "; log:\n" + Tail(p.opts.LogPath, 30)
}

// Stop stops the process with SIGTERM and waits up to grace before
// killing it; see childproc.Process.Stop. Stopping a process that is not
// running is not an error, unless it failed by itself: one that Kill
// ended and nobody started again has not.
func (p *Service) Stop(grace time.Duration) error {
	p.mu.Lock()
	proc, killed := p.proc, p.killed
	p.mu.Unlock()
	if proc == nil || proc == killed {
		return nil
	}
	return proc.Stop(grace)
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Service) Kill() error {
	proc := p.process()
	if proc == nil {
		return nil
	}
	if err := proc.Kill(); err != nil {
		return err
	}
	p.mu.Lock()
	p.killed = proc
	p.mu.Unlock()
	return nil
}

func httpStatus(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Tail returns the last n lines of a file.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
