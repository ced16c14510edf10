package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/runner/manifest"
	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/logging"
	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// Options configure Run. Validate says which one is wrong.
type Options struct {
	// Dir is the run directory (.run): Temporal's database, the sandbox's
	// etcd data (clusters/) and its kubeconfigs. The first two make a
	// restart continue where the last run stopped.
	Dir string
	// BinDir holds worker, controller, starter and sandbox.
	BinDir string
	// TemporalCLI is the temporal binary (bin/temporal).
	TemporalCLI string
	// TemporalPort is the dev server's frontend port, UIPort its web UI's.
	TemporalPort, UIPort int
	// Headless runs Temporal without its web UI.
	Headless bool
	// Examples are manifest files or directories applied once everything
	// runs; empty applies nothing.
	Examples []string
	// BootDelay is how long a simulated VM takes to boot.
	BootDelay time.Duration
	// StartTimeout bounds each start-up step.
	StartTimeout time.Duration
	// StopGrace is how long each process may take to stop before it is
	// killed.
	StopGrace time.Duration
	// Out receives every process's output and the runner's own.
	Out io.Writer
}

// DefaultOptions are those of `make run`.
func DefaultOptions() Options {
	return Options{
		Dir:          ".run",
		BinDir:       "bin",
		TemporalCLI:  filepath.Join("bin", "temporal"),
		TemporalPort: 7233,
		UIPort:       8233,
		Examples:     []string{"examples"},
		BootDelay:    5 * time.Second,
		StartTimeout: 3 * time.Minute,
		StopGrace:    30 * time.Second,
		Out:          os.Stdout,
	}
}

// binaries Run starts from BinDir.
var binaries = []string{"sandbox", "worker", "controller", "starter"}

// Validate reports every invalid option, naming its flag.
func (o Options) Validate() error {
	var errs []error
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("-bin %s: %s is missing (build it with `make run`): %w", o.BinDir, b, err))
		}
	}
	if _, err := os.Stat(o.TemporalCLI); err != nil {
		errs = append(errs, fmt.Errorf("-temporal-cli: %w (build it with `make tools`)", err))
	}
	for flag, port := range map[string]int{"-temporal-port": o.TemporalPort, "-ui-port": o.UIPort} {
		if port <= 0 || port > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: must be 1..65535", flag, port))
		}
	}
	if !o.Headless && o.UIPort == o.TemporalPort {
		errs = append(errs, fmt.Errorf("-ui-port %d: the same as -temporal-port", o.UIPort))
	}
	if o.BootDelay < 0 {
		errs = append(errs, fmt.Errorf("-boot-delay %s: must not be negative", o.BootDelay))
	}
	if o.StartTimeout <= 0 || o.StopGrace <= 0 {
		errs = append(errs, errors.New("start timeout and stop grace must be positive"))
	}
	if o.Out == nil {
		errs = append(errs, errors.New("output writer is nil"))
	}
	return errors.Join(errs...)
}

type runner struct {
	opts  Options
	out   *output
	log   *slog.Logger
	procs []process // in start order
	// metrics are the worker's and controller's metrics URLs, for the banner.
	metrics []string
}

// process is what the runner watches and stops: a child it started
// itself, the dev server or a service.
type process interface {
	Name() string
	Pid() int
	Done() <-chan struct{}
	Stop(grace time.Duration) error
}

// temporalProcess is the dev server as one of the runner's processes.
type temporalProcess struct{ *devtemporal.Server }

func (temporalProcess) Name() string { return "temporal" }

// Stop stops the server within devtemporal's own grace.
func (t temporalProcess) Stop(time.Duration) error { return t.Server.Stop() }

// Run starts Temporal, the sandbox, the worker and the controller in that
// order, schedules the health check, applies the examples, and runs until
// ctx is done (Ctrl-C) or one of the processes exits. It then stops them in
// reverse order. The error is nil only if everything started and stopped
// cleanly.
func Run(ctx context.Context, opts Options) (err error) {
	if err := opts.Validate(); err != nil {
		return err
	}
	r := &runner{opts: opts, out: &output{w: opts.Out}}
	h, err := logging.NewHandler(r.out.prefixed("run"), logging.Options{Format: logging.FormatText, Level: "info"})
	if err != nil {
		return err
	}
	r.log = slog.New(h)
	defer func() { err = errors.Join(err, r.stopAll()) }()

	if err := r.startAll(ctx); err != nil {
		if ctx.Err() != nil {
			r.log.Info("interrupted during start-up")
			return nil
		}
		return err
	}
	r.banner()

	if p := waitAny(ctx, r.procs); p != nil {
		// Its exit status is reported when it is reaped with the rest.
		return fmt.Errorf("%s exited unexpectedly, stopped everything", p.Name())
	}
	r.log.Info("interrupted, stopping (press Ctrl-C again to kill)")
	return nil
}

func (r *runner) startAll(ctx context.Context) error {
	if err := os.MkdirAll(r.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("creating the run directory: %w", err)
	}
	if err := r.startTemporal(ctx); err != nil {
		return err
	}
	kubeconfig, err := r.startSandbox(ctx)
	if err != nil {
		return err
	}
	env := r.machineflowEnv(kubeconfig)
	if err := r.startServices(ctx, env); err != nil {
		return err
	}
	if err := r.runStarter(ctx, env, "schedule", "health-check", "--every", "5m"); err != nil {
		return err
	}
	return r.applyExamples(ctx, kubeconfig)
}

func (r *runner) temporalAddress() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.opts.TemporalPort))
}

func (r *runner) startTemporal(ctx context.Context) error {
	ports := []int{r.opts.TemporalPort}
	if !r.opts.Headless {
		ports = append(ports, r.opts.UIPort)
	}
	for _, port := range ports {
		if err := portFree(port); err != nil {
			return err
		}
	}
	dev := devtemporal.Options{
		HostPort:  r.temporalAddress(),
		Namespace: temporalclient.DefaultNamespace,
		// History survives a restart of `make run`.
		DBFile:       filepath.Join(r.opts.Dir, "temporal.db"),
		UI:           !r.opts.Headless,
		ReadyTimeout: r.opts.StartTimeout,
		Out:          r.out.prefixed("temporal"),
		Log:          r.log,
		CLI:          r.opts.TemporalCLI,
		Env:          childEnv(),
	}
	if dev.UI {
		dev.UIPort = strconv.Itoa(r.opts.UIPort)
	}
	r.log.Info("waiting for Temporal to accept clients")
	srv, err := devtemporal.Start(ctx, dev)
	if err != nil {
		return err
	}
	r.procs = append(r.procs, temporalProcess{srv})
	r.log.Info("Temporal is up", "address", r.temporalAddress(), "searchAttributes", strings.Join(names.KeywordSearchAttributes(), ","))
	return nil
}

// startSandbox starts the API servers and waits for the supervisor
// kubeconfig, which the sandbox writes once everything is ready.
func (r *runner) startSandbox(ctx context.Context) (string, error) {
	kubeconfig := filepath.Join(r.opts.Dir, "supervisor.kubeconfig")
	// The sandbox removes a stale file itself, but only once it runs: a
	// file left by a killed sandbox must not read as ready before that.
	if err := os.Remove(kubeconfig); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("removing the stale %s: %w", kubeconfig, err)
	}
	p, err := r.start("sandbox", filepath.Join(r.opts.BinDir, "sandbox"), nil,
		"-dir", r.opts.Dir, "-data-dir", filepath.Join(r.opts.Dir, "clusters"), "-boot-delay", r.opts.BootDelay.String())
	if err != nil {
		return "", err
	}
	err = r.waitFor(ctx, p, "the sandbox's API servers", func() bool {
		_, err := os.Stat(kubeconfig)
		return err == nil
	})
	return kubeconfig, err
}

// machineflowEnv is the environment of the worker, the controller and the
// starter: the sandbox's supervisor and the dev server.
func (r *runner) machineflowEnv(kubeconfig string) []string {
	abs, err := filepath.Abs(kubeconfig)
	if err != nil {
		abs = kubeconfig
	}
	return []string{
		"KUBECONFIG=" + abs,
		"TEMPORAL_ADDRESS=" + r.temporalAddress(),
		"TEMPORAL_NAMESPACE=" + temporalclient.DefaultNamespace,
		"CONFIG_NAMESPACE=" + names.Namespace,
		// Machines without the placement annotation go to the first
		// cluster; the annotated example goes to the second.
		"DEFAULT_KUBEVIRT_CONFIG=" + testenv.ClusterName(1),
		"LOG_FORMAT=text",
	}
}

// SandboxVitistack is the Vitistack the sandbox seeds
// (cmd/sandbox/seed.yaml). It lists no MachineProvider, so the worker
// registers one at start-up as in production (internal/registration):
// named after the first cluster and made from its KubevirtConfig, with the
// Vitistack's region.
const SandboxVitistack = "sandbox"

// startServices starts the worker, then the controller, each with its
// listeners on free ports, waiting until its /readyz answers 200: the
// worker polls before the controller starts workflows.
func (r *runner) startServices(ctx context.Context, env []string) error {
	env = slices.Concat(childEnv(), env)
	o := func(name string) services.Options {
		return services.Options{Out: r.out.prefixed(name), Log: r.log, ReadyTimeout: r.opts.StartTimeout}
	}
	worker, err := services.Worker("worker", filepath.Join(r.opts.BinDir, "worker"),
		slices.Concat(env, []string{"NAME_MACHINE_PROVIDER=" + testenv.ClusterName(1), "VITISTACK_NAME=" + SandboxVitistack}), o("worker"))
	if err != nil {
		return err
	}
	controller, err := services.Controller(filepath.Join(r.opts.BinDir, "controller"), env, o("controller"))
	if err != nil {
		return err
	}
	for _, svc := range []*services.Service{worker, controller} {
		r.log.Info("waiting for the " + svc.Name() + " to be ready")
		err := svc.Start(ctx)
		if svc.Running() {
			r.procs = append(r.procs, svc)
		}
		if err != nil {
			return err
		}
		r.metrics = append(r.metrics, svc.Name()+" http://"+svc.MetricsAddress()+"/metrics")
	}
	return nil
}

// runStarter runs one starter command to completion.
func (r *runner) runStarter(ctx context.Context, env []string, args ...string) error {
	p, err := r.start("starter", filepath.Join(r.opts.BinDir, "starter"), env, args...)
	if err != nil {
		return err
	}
	// A one-shot command is not watched by waitAny.
	r.procs = r.procs[:len(r.procs)-1]
	select {
	case <-p.Done():
	case <-ctx.Done():
		return errors.Join(ctx.Err(), p.Stop(r.opts.StopGrace))
	}
	if p.Err() != nil {
		return fmt.Errorf("starter %s: %w", strings.Join(args, " "), p.Err())
	}
	return nil
}

func (r *runner) applyExamples(ctx context.Context, kubeconfig string) error {
	if len(r.opts.Examples) == 0 {
		return nil
	}
	objs, err := manifest.ReadPaths(r.opts.Examples...)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	s, err := scheme.New()
	if err != nil {
		return err
	}
	c, err := crclient.New(cfg, crclient.Options{Scheme: s})
	if err != nil {
		return fmt.Errorf("client for the supervisor: %w", err)
	}
	if err := manifest.Apply(ctx, c, objs); err != nil {
		return fmt.Errorf("applying the examples: %w", err)
	}
	for _, o := range objs {
		r.log.Info("applied", "object", o.String(), "source", o.Source)
	}
	return nil
}

// waitFor polls ready until it holds, p exits, ctx is done or the start
// timeout passes.
func (r *runner) waitFor(ctx context.Context, p process, what string, ready func() bool) error {
	r.log.Info("waiting for " + what)
	deadline := time.NewTimer(r.opts.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			return fmt.Errorf("waiting for %s: %s exited first (see its output above)", what, p.Name())
		case <-deadline.C:
			return fmt.Errorf("waiting for %s: not ready after %s", what, r.opts.StartTimeout)
		case <-tick.C:
		}
	}
	return nil
}

// stopAll stops the processes in reverse start order.
func (r *runner) stopAll() error {
	var errs []error
	for i := len(r.procs) - 1; i >= 0; i-- {
		if err := r.procs[i].Stop(r.opts.StopGrace); err != nil {
			r.log.Error("stopping", "process", r.procs[i].Name(), "error", err)
			errs = append(errs, err)
		}
	}
	if len(r.procs) > 0 && len(errs) == 0 {
		r.log.Info("everything stopped")
	}
	return errors.Join(errs...)
}

// portFree fails when something listens on port already, typically
// another `make run`.
func portFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is in use (is another `make run` running?): %w", port, err)
	}
	return l.Close()
}

// start starts bin with args and env (on top of the runner's environment),
// its output prefixed with name, as one of the runner's processes.
func (r *runner) start(name, bin string, env []string, args ...string) (*childproc.Process, error) {
	p, err := childproc.Start(childproc.Command{Name: name, Path: bin, Args: args, Env: append(childEnv(), env...), Out: r.out.prefixed(name), Log: r.log})
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	return p, nil
}

// waitAny returns the first process to exit, or nil when ctx is done.
func waitAny(ctx context.Context, procs []process) process {
	exited := make(chan process, len(procs))
	stop := make(chan struct{})
	defer close(stop)
	for _, p := range procs {
		go func() {
			select {
			case <-p.Done():
				exited <- p
			case <-stop:
			}
		}()
	}
	select {
	case p := <-exited:
		return p
	case <-ctx.Done():
		return nil
	}
}
