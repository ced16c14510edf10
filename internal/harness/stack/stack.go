package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/freeport"
	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/testenv"
	"github.com/machineflow/machineflow/internal/harness/testenv/simulated"
	"github.com/machineflow/machineflow/internal/sim/kubevirtsim"
)

// Simulator timings when Options.Sim leaves them zero: fast enough for a
// short suite, slow enough that the activities see every phase of a boot
// and a deletion.
const (
	DefaultBootDelay        = 500 * time.Millisecond
	DefaultTerminationDelay = 200 * time.Millisecond
	DefaultPollInterval     = 100 * time.Millisecond
	// DefaultAddressPool is the first cluster's VM address pool: a VM's
	// address tells its cluster, 10.100.x.x on kubevirt-1, 10.101.x.x on
	// kubevirt-2.
	DefaultAddressPool = "10.100.0.0/16"

	// startTimeout bounds Start: building the binaries and starting the
	// servers on a busy two-core machine.
	startTimeout = 5 * time.Minute
	// StopTimeout is the grace a worker or the controller gets on Stop.
	StopTimeout = 45 * time.Second
)

// Options configure Start.
type Options struct {
	// Clusters is the number of KubeVirt clusters; 0 means 2.
	Clusters int
	// Sim configures the simulators; zero timings and pool take the
	// defaults above.
	Sim kubevirtsim.Options
	// Workers is the number of worker processes Start starts: 0 means 1,
	// a negative number none (AddWorker starts them later).
	Workers int
	// Controller also starts the controller, without leader election.
	Controller bool
	// TemporalDB keeps Temporal's state in Dir/temporal.db, so that
	// RestartTemporal keeps workflows and their histories.
	TemporalDB bool
	// WorkerEnv and ControllerEnv are extra KEY=VALUE settings; they win
	// over the stack's.
	WorkerEnv, ControllerEnv []string
}

// Binaries are the paths of the binaries built from cmd/.
type Binaries struct {
	Worker, Controller, Starter string
}

// Stack is a running machineflow.
type Stack struct {
	// Dir holds the binaries, the logs, the supervisor kubeconfig and
	// Temporal's database; Stop removes it.
	Dir string
	// Env is the supervisor and the KubeVirt clusters.
	Env *testenv.Env
	// Sims is one simulator per KubeVirt cluster.
	Sims *kubevirtsim.Fleet
	// Kubeconfig is the path of the supervisor's kubeconfig (an admin's).
	Kubeconfig string
	Bin        Binaries
	// Workers are the worker processes, in start order.
	Workers []*services.Service
	// Controller is nil unless Options.Controller.
	Controller *services.Service

	opts        Options
	temporalOps devtemporal.Options
	mu          sync.Mutex // guards temporal and Workers
	temporal    *devtemporal.Server
	stopSims    func() error
	simLog      string
}

// New starts a Stack for a test: it skips under -short, stops the stack
// on cleanup and, if the test failed, logs the tail of every log first.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("stack: skipped with -short: needs the Temporal dev server and API servers from ./bin (make tools)")
	}
	s, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.LogTails(40))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("stack: stop: %v", err)
		}
	})
	return s
}

// Start builds the binaries while Temporal and the API servers start, then
// starts the simulators, the workers and the controller. On error it stops
// what it started.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	dir, err := os.MkdirTemp("", "machineflow-stack-")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	s := &Stack{Dir: dir, opts: o, stopSims: func() error { return nil }, simLog: filepath.Join(dir, "simulators.log")}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("stack: %w", err), s.Stop())
		}
	}()
	if s.temporalOps, err = s.temporalOptions(); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var g errgroup.Group
	g.Go(s.build)
	g.Go(func() (err error) {
		s.temporal, err = devtemporal.Start(ctx, s.temporalOps)
		return err
	})
	g.Go(func() (err error) {
		s.Env, err = testenv.Start(ctx, testenv.Options{Clusters: o.Clusters})
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	s.Kubeconfig = filepath.Join(dir, "supervisor.kubeconfig")
	if err := os.WriteFile(s.Kubeconfig, s.Env.Supervisor.Kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("writing the supervisor kubeconfig: %w", err)
	}
	if err := createClass(ctx, s.Env.Supervisor.Client); err != nil {
		return nil, err
	}
	if err := s.startSimulators(); err != nil {
		return nil, err
	}
	workers := o.Workers
	if workers == 0 {
		workers = 1
	}
	for range workers {
		if _, err := s.AddWorker(ctx); err != nil {
			return nil, err
		}
	}
	if o.Controller {
		if s.Controller, err = s.newController(); err != nil {
			return nil, err
		}
		if err := s.Controller.Start(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Stack) temporalOptions() (devtemporal.Options, error) {
	// A fixed port, so that a restarted server is where clients look.
	hostPort, err := freeport.Address()
	if err != nil {
		return devtemporal.Options{}, err
	}
	o := devtemporal.Options{HostPort: hostPort}
	if s.opts.TemporalDB {
		o.DBFile = filepath.Join(s.Dir, "temporal.db")
	}
	return o, nil
}

// build compiles the worker, the controller and the starter into Dir/bin.
func (s *Stack) build() error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	bin := filepath.Join(s.Dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/worker", "./cmd/controller", "./cmd/starter")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/worker ./cmd/controller ./cmd/starter: %w\n%s", err, out)
	}
	s.Bin = Binaries{Worker: filepath.Join(bin, "worker"), Controller: filepath.Join(bin, "controller"), Starter: filepath.Join(bin, "starter")}
	return nil
}

func (s *Stack) startSimulators() error {
	log, err := os.Create(s.simLog)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	o := s.opts.Sim
	o.Logger = funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(log, prefix, args)
	}, funcr.Options{})
	o.AddressPool = cmp.Or(o.AddressPool, DefaultAddressPool)
	o.BootDelay = cmp.Or(o.BootDelay, DefaultBootDelay)
	o.TerminationDelay = cmp.Or(o.TerminationDelay, DefaultTerminationDelay)
	o.PollInterval = cmp.Or(o.PollInterval, DefaultPollInterval)
	if s.Sims, err = kubevirtsim.NewFleet(simulated.Targets(s.Env), o); err != nil {
		return errors.Join(err, log.Close())
	}
	stop := s.Sims.Start(context.Background())
	s.stopSims = func() error { return errors.Join(stop(), log.Close()) }
	return nil
}

// Temporal is a client of the dev server, for the test's own calls and
// assertions. RestartTemporal replaces it: ask again after a restart.
func (s *Stack) Temporal() client.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.temporal.Client()
}

// TemporalAddress is the dev server's frontend host:port; it stays the
// same across RestartTemporal.
func (s *Stack) TemporalAddress() string { return s.temporalOps.HostPort }

// RestartTemporal stops the dev server, waits down, and starts it again on
// the same port and database file: open workflows go on where they were.
// It needs Options.TemporalDB.
func (s *Stack) RestartTemporal(ctx context.Context, down time.Duration) error {
	if s.temporalOps.DBFile == "" {
		return errors.New("stack: RestartTemporal needs Options.TemporalDB: an in-memory server would lose every workflow")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.temporal.Stop(); err != nil {
		return fmt.Errorf("stack: stopping Temporal: %w", err)
	}
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	srv, err := devtemporal.Start(ctx, s.temporalOps)
	if err != nil {
		return fmt.Errorf("stack: restarting Temporal: %w", err)
	}
	s.temporal = srv
	return nil
}

// AddWorker starts one more worker process on the task queue and waits
// until it is ready.
func (s *Stack) AddWorker(ctx context.Context) (*services.Service, error) {
	return s.AddWorkerWithEnv(ctx)
}

// AddWorkerWithEnv is AddWorker with KEY=VALUE settings for this worker
// alone, which win over Options.WorkerEnv: e.g. a KUBECONFIG that reaches
// the supervisor through a Gate.
func (s *Stack) AddWorkerWithEnv(ctx context.Context, env ...string) (*services.Service, error) {
	s.mu.Lock()
	name := fmt.Sprintf("worker-%d", len(s.Workers)+1)
	s.mu.Unlock()
	w, err := s.newWorker(name, env)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.Workers = append(s.Workers, w)
	s.mu.Unlock()
	return w, w.Start(ctx)
}

// StarterCmd is the starter binary with args, set up for this stack; the
// caller may add to its Env and runs it.
func (s *Stack) StarterCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Bin.Starter, args...)
	cmd.Env = []string{
		"HOME=" + s.Dir,
		"TEMPORAL_ADDRESS=" + s.TemporalAddress(),
		"KUBECONFIG=" + s.Kubeconfig,
	}
	return cmd
}

// LogTails is the last n lines of every process's log, for a failed test.
func (s *Stack) LogTails(n int) string {
	out := ""
	for _, p := range s.processes() {
		out += fmt.Sprintf("--- %s log, last lines:\n%s\n", p.Name(), services.Tail(p.LogPath(), n))
	}
	return out + fmt.Sprintf("--- simulator log, last lines:\n%s\n", services.Tail(s.simLog, n/2))
}

func (s *Stack) processes() []*services.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := append([]*services.Service(nil), s.Workers...)
	if s.Controller != nil {
		all = append(all, s.Controller)
	}
	return all
}

// Stop stops the controller, then the workers (which stops their
// polling before the servers go), the simulators, the API servers and
// Temporal, and removes Dir. It reports every failure, including a
// process that did not stop cleanly.
func (s *Stack) Stop() error {
	var errs []error
	if s.Controller != nil {
		errs = append(errs, s.Controller.Stop(StopTimeout))
	}
	var wg sync.WaitGroup
	workers := s.processes()
	werrs := make([]error, len(workers))
	for i, w := range workers {
		if w != s.Controller {
			wg.Go(func() { werrs[i] = w.Stop(StopTimeout) })
		}
	}
	wg.Wait()
	errs = append(errs, werrs...)
	errs = append(errs, s.stopSims())
	if s.Env != nil {
		errs = append(errs, s.Env.Stop())
	}
	s.mu.Lock()
	if s.temporal != nil {
		errs = append(errs, s.temporal.Stop())
	}
	s.mu.Unlock()
	errs = append(errs, os.RemoveAll(s.Dir))
	return errors.Join(errs...)
}
