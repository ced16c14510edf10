package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/services"
	"github.com/machineflow/machineflow/internal/harness/stack"
)

// s is the stack every test shares; nil under -short.
var s *suite

// suite is internal/harness/stack with the e2e tests' own helpers.
type suite struct {
	*stack.Stack
	temporalCLI string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	code := 1
	start := time.Now()
	st, err := setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: set-up: %v\n", err)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: set-up took %s\n", time.Since(start).Round(100*time.Millisecond))
		s = st
		code = m.Run()
		if err := st.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: tear-down: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func setUp() (*suite, error) {
	cli, err := devtemporal.CLIPath()
	if err != nil {
		return nil, err
	}
	st, err := stack.Start(context.Background(), stack.Options{Clusters: 2})
	if err != nil {
		return nil, err
	}
	return &suite{Stack: st, temporalCLI: cli}, nil
}

// need skips under -short and returns the suite; a failed test logs the
// tails of the worker's and the simulators' logs.
func need(t *testing.T) *suite {
	t.Helper()
	if s == nil {
		t.Skip("e2e: skipped with -short: needs the Temporal dev server and API servers from ./bin (make tools)")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.LogTails(60))
		}
	})
	return s
}

// worker is the suite's only worker process.
func (st *suite) worker() *services.Service { return st.Workers[0] }

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
	cmd := st.StarterCmd(ctx, args...)
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
