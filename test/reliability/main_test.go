package reliability

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/machineflow/machineflow/internal/harness/stack"
	"github.com/machineflow/machineflow/internal/harness/testenv"
)

// s is the stack every test shares; nil under -short.
var s *stack.Stack

// sweepTimeout bounds the secret sweep after the suite.
const sweepTimeout = 10 * time.Minute

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	start := time.Now()
	st, err := stack.Start(context.Background(), stack.Options{Clusters: 2, Controller: true, TemporalDB: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: set-up: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "reliability: set-up took %s\n", time.Since(start).Round(100*time.Millisecond))
	s = st
	rememberStack(st)

	code := m.Run()
	if !sweepAfterSuite(st) {
		code = 1
	}
	if err := st.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "reliability: tear-down: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// rememberStack registers the credentials of the stack itself: what the
// supervisor's and the clusters' kubeconfigs hold and the harness's own
// admin credentials, which the simulators use.
func rememberStack(st *stack.Stack) {
	for _, c := range append([]*testenv.Cluster{st.Env.Supervisor}, st.Env.Clusters...) {
		rememberSecret("kubeconfig of "+c.Name, c.Kubeconfig)
		rememberSecret("admin client key of "+c.Name, c.Config.KeyData)
		rememberSecret("admin client certificate of "+c.Name, c.Config.CertData)
	}
}

// sweepAfterSuite runs the secret sweep over everything the suite left
// and reports on standard error; false means a secret was found or the
// sweep could not look.
func sweepAfterSuite(st *stack.Stack) bool {
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	start := time.Now()
	found, stats, err := sweep(ctx, st.Temporal(), st.Dir, secrets)
	nSecrets, nForms := secrets.Len()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: secret sweep failed: %v\n", err)
		return false
	}
	fmt.Fprintf(os.Stderr, "reliability: secret sweep of %d secrets (%d forms) over %s took %s\n",
		nSecrets, nForms, stats, time.Since(start).Round(100*time.Millisecond))
	ok := true
	if stats.histories == 0 || stats.files["worker log"] == 0 || stats.files["controller log"] == 0 || stats.files["simulator log"] == 0 {
		fmt.Fprintln(os.Stderr, "reliability: the secret sweep found no history or a log missing: it would prove nothing")
		ok = false
	}
	if len(found) > 0 {
		fmt.Fprintf(os.Stderr, "reliability: FAIL: %d secrets found where none may be (artefact: secret (form)):\n", len(found))
		for _, f := range found {
			fmt.Fprintf(os.Stderr, "  %s\n", f)
		}
		ok = false
	}
	return ok
}

// need skips under -short and returns the shared stack; a failed test
// logs the tails of every process's log.
func need(t *testing.T) *stack.Stack {
	t.Helper()
	if s == nil {
		t.Skip("reliability: skipped with -short: needs the Temporal dev server and API servers from ./bin (make tools)")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.LogTails(60))
		}
	})
	return s
}
