package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/freeport"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// readyTimeout bounds the wait for a started process's /readyz.
const readyTimeout = time.Minute

// Service is one worker or controller process. It can be stopped, killed
// and started again any number of times; its ports and log file stay.
type Service struct {
	name, bin, logPath string
	env                []string
	metrics, probes    string

	mu   sync.Mutex
	proc *childproc.Process // nil before the first Start
	// killed is the start that Kill ended: its death is the test's doing,
	// not a failure for Stop to report.
	killed *childproc.Process
}

// Name is "worker-<n>" or "controller".
func (p *Service) Name() string { return p.name }

// MetricsAddress is the host:port of /metrics (the worker's also serves
// /healthz and /readyz).
func (p *Service) MetricsAddress() string { return p.metrics }

// LogPath is the process's log: JSON lines, appended across restarts.
func (p *Service) LogPath() string { return p.logPath }

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

// Start starts the process and waits until its /readyz answers 200. It
// fails if the process is running already.
func (p *Service) Start(ctx context.Context) error {
	if p.Running() {
		return fmt.Errorf("starting %s: already running (pid %d)", p.name, p.Pid())
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	proc, err := childproc.Start(childproc.Command{Name: p.name, Path: p.bin, Env: p.env, Out: log})
	// The child has its own copy of the file descriptor.
	_ = log.Close()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	readyz := "http://" + p.probes + "/readyz"
	for {
		if proc.Exited() {
			return fmt.Errorf("%s exited during start-up (%v); log:\n%s", p.name, proc.Err(), Tail(p.logPath, 30))
		}
		if httpStatus(readyz) == http.StatusOK {
			return nil
		}
		select {
		case <-ctx.Done():
			_ = proc.Kill()
			return fmt.Errorf("%s not ready (%s) within %s: %w; log:\n%s", p.name, readyz, readyTimeout, ctx.Err(), Tail(p.logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
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

// commonEnv is what the worker and the controller both need, as a
// Deployment would give it.
func (s *Stack) commonEnv() []string {
	return []string{
		"HOME=" + s.Dir,
		"PATH=" + os.Getenv("PATH"),
		"TEMPORAL_ADDRESS=" + s.TemporalAddress(),
		"TEMPORAL_NAMESPACE=" + temporalclient.DefaultNamespace,
		"KUBECONFIG=" + s.Kubeconfig,
		"LOG_FORMAT=json",
	}
}

func (s *Stack) newWorker(name string, extraEnv []string) (*Service, error) {
	metrics, err := freeport.Address()
	if err != nil {
		return nil, err
	}
	env := slices.Concat(s.commonEnv(), []string{
		"CLIENT_MANAGER=real",
		"CONFIG_NAMESPACE=" + s.Env.ConfigNamespace,
		"METRICS_ADDRESS=" + metrics,
		// Registers a MachineProvider made from the first cluster's
		// KubevirtConfig, as a production worker does at start-up.
		"NAME_MACHINE_PROVIDER=" + s.Env.Clusters[0].Name,
	}, s.opts.WorkerEnv, extraEnv)
	return &Service{name: name, bin: s.Bin.Worker, logPath: filepath.Join(s.Dir, name+".log"), env: env, metrics: metrics, probes: metrics}, nil
}

func (s *Stack) newController() (*Service, error) {
	metrics, err := freeport.Address()
	if err != nil {
		return nil, err
	}
	probes, err := freeport.Address()
	if err != nil {
		return nil, err
	}
	env := slices.Concat(s.commonEnv(), []string{
		"METRICS_BIND_ADDRESS=" + metrics,
		"HEALTH_PROBE_BIND_ADDRESS=" + probes,
		// One instance: a lease would only delay a restarted controller
		// by the lease duration.
		"LEADER_ELECT=false",
	}, s.opts.ControllerEnv)
	return &Service{name: "controller", bin: s.Bin.Controller, logPath: filepath.Join(s.Dir, "controller.log"), env: env, metrics: metrics, probes: probes}, nil
}
