package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/machineflow/machineflow/internal/childproc"
	"github.com/machineflow/machineflow/internal/devtemporal"
	"github.com/machineflow/machineflow/internal/freeport"
	"github.com/machineflow/machineflow/internal/kubevirtsim"
	"github.com/machineflow/machineflow/internal/testenv"
	"github.com/machineflow/machineflow/internal/testenv/simulated"
)

// Simulator timings: fast enough for a short suite, slow enough that every
// phase of a boot and a deletion is seen by the activities.
const (
	simBootDelay        = 500 * time.Millisecond
	simTerminationDelay = 200 * time.Millisecond
	simPollInterval     = 100 * time.Millisecond

	workerReadyTimeout = time.Minute
	workerStopTimeout  = 45 * time.Second
)

// suite is what every test shares; nil under -short.
var s *suite

type suite struct {
	root, dir     string
	workerBin     string
	starterBin    string
	temporalCLI   string
	temporal      *devtemporal.Server
	env           *testenv.Env
	kubeconfig    string
	metricsAddr   string
	sims          *kubevirtsim.Fleet
	stopSims      func() error
	worker        *childproc.Process
	workerLogPath string
	simLogPath    string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	code := 1
	var err error
	start := time.Now()
	s, err = setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set-up: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: set-up took %s\n", time.Since(start).Round(100*time.Millisecond))
		code = m.Run()
	}
	if s != nil {
		if err := s.tearDown(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tear-down: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// need skips under -short and returns the suite.
func need(t *testing.T) *suite {
	t.Helper()
	if s == nil {
		t.Skip("e2e: skipped with -short: needs the Temporal dev server and API servers from ./bin (make tools)")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker log, last lines:\n%s", tail(s.workerLogPath, 60))
			t.Logf("simulator log, last lines:\n%s", tail(s.simLogPath, 20))
		}
	})
	return s
}

// setUp builds the binaries while Temporal and the API servers start, then
// starts the simulators and the worker. On error it returns what it
// started, for tearDown.
func setUp() (*suite, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "machineflow-e2e-")
	if err != nil {
		return nil, err
	}
	st := &suite{root: root, dir: dir, stopSims: func() error { return nil }, workerLogPath: filepath.Join(dir, "worker.log"), simLogPath: filepath.Join(dir, "simulators.log")}
	if st.temporalCLI, err = devtemporal.CLIPath(); err != nil {
		return st, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var g errgroup.Group
	g.Go(st.build)
	g.Go(func() (err error) {
		st.temporal, err = devtemporal.Start(ctx, devtemporal.Options{})
		return err
	})
	g.Go(func() (err error) {
		st.env, err = testenv.Start(ctx, testenv.Options{Clusters: 2})
		return err
	})
	if err := g.Wait(); err != nil {
		return st, err
	}

	st.kubeconfig = filepath.Join(dir, "supervisor.kubeconfig")
	if err := os.WriteFile(st.kubeconfig, st.env.Supervisor.Kubeconfig, 0o600); err != nil {
		return st, fmt.Errorf("writing the supervisor kubeconfig: %w", err)
	}
	if err := st.startSimulators(); err != nil {
		return st, err
	}
	if st.metricsAddr, err = freeport.Address(); err != nil {
		return st, err
	}
	if st.worker, err = st.startWorker(); err != nil {
		return st, err
	}
	return st, createClass(st.env.Supervisor.Client)
}

// build compiles the worker and the starter into the suite's directory.
func (st *suite) build() error {
	bin := filepath.Join(st.dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/worker", "./cmd/starter")
	cmd.Dir = st.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/worker ./cmd/starter: %w\n%s", err, out)
	}
	st.workerBin, st.starterBin = filepath.Join(bin, "worker"), filepath.Join(bin, "starter")
	return nil
}

func (st *suite) startSimulators() error {
	log, err := os.Create(st.simLogPath)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(log, prefix, args)
	}, funcr.Options{})
	if st.sims, err = kubevirtsim.NewFleet(simulated.Targets(st.env), kubevirtsim.Options{
		// A VM's address tells which cluster it runs on: 10.100.x.x on
		// kubevirt-1, 10.101.x.x on kubevirt-2.
		AddressPool:      "10.100.0.0/16",
		BootDelay:        simBootDelay,
		TerminationDelay: simTerminationDelay,
		PollInterval:     simPollInterval,
		Logger:           logger,
	}); err != nil {
		return errors.Join(err, log.Close())
	}
	stop := st.sims.Start(context.Background())
	st.stopSims = func() error { return errors.Join(stop(), log.Close()) }
	return nil
}

func (st *suite) tearDown() error {
	var errs []error
	if st.worker != nil {
		if err := st.worker.Stop(workerStopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stopping the worker: %w", err))
		}
	}
	errs = append(errs, st.stopSims())
	if st.env != nil {
		errs = append(errs, st.env.Stop())
	}
	if st.temporal != nil {
		errs = append(errs, st.temporal.Stop())
	}
	errs = append(errs, os.RemoveAll(st.dir))
	return errors.Join(errs...)
}

// client is the test's own Temporal client, for assertions.
func (st *suite) client() client.Client { return st.temporal.Client() }

// workerEnv configures the worker as a Deployment would: environment only.
func (st *suite) workerEnv() []string {
	return []string{
		"HOME=" + st.dir,
		"PATH=" + os.Getenv("PATH"),
		"TEMPORAL_ADDRESS=" + st.temporal.FrontendHostPort(),
		"TEMPORAL_NAMESPACE=default",
		"KUBECONFIG=" + st.kubeconfig,
		"CLIENT_MANAGER=real",
		"CONFIG_NAMESPACE=" + st.env.ConfigNamespace,
		"METRICS_ADDRESS=" + st.metricsAddr,
		"LOG_FORMAT=json",
	}
}

// startWorker starts the worker binary and waits until /readyz answers 200.
func (st *suite) startWorker() (*childproc.Process, error) {
	log, err := os.OpenFile(st.workerLogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	p, err := childproc.Start(childproc.Command{Name: "worker", Path: st.workerBin, Env: st.workerEnv(), Out: log})
	// The child has its own copy of the file descriptor.
	_ = log.Close()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(workerReadyTimeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return nil, fmt.Errorf("worker exited during start-up (%v); log:\n%s", p.Err(), tail(st.workerLogPath, 30))
		}
		if httpStatus("http://"+st.metricsAddr+"/readyz") == http.StatusOK {
			return p, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.Stop(5 * time.Second)
	return nil, fmt.Errorf("worker not ready within %s; log:\n%s", workerReadyTimeout, tail(st.workerLogPath, 30))
}

func httpStatus(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// starter runs the starter binary against the suite's Temporal and
// supervisor and returns its exit code and output.
func (st *suite) starter(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return st.starterWithEnv(t, nil, args...)
}

// starterWithEnv is starter with extra environment variables, which win
// over the suite's.
func (st *suite) starterWithEnv(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	// Not t.Context(): cleanups run the starter too, after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, st.starterBin, args...)
	cmd.Env = []string{
		"HOME=" + st.dir,
		"TEMPORAL_ADDRESS=" + st.temporal.FrontendHostPort(),
		"KUBECONFIG=" + st.kubeconfig,
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		// Errorf, not Fatalf: tests run the starter from goroutines.
		t.Errorf("running starter %s: %v", strings.Join(args, " "), err)
		return -1, out.String(), errOut.String()
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}
