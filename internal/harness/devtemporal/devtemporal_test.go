package devtemporal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/machineflow/machineflow/internal/harness/childproc"
	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
)

func TestDevServerRegistersSearchAttributes(t *testing.T) {
	srv := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := srv.Client().OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("listing search attributes: %v", err)
	}
	for _, name := range names.KeywordSearchAttributes() {
		typ, ok := resp.GetCustomAttributes()[name]
		if !ok {
			t.Errorf("search attribute %s not registered; have %v", name, resp.GetCustomAttributes())
			continue
		}
		if typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("search attribute %s has type %s, want Keyword", name, typ)
		}
	}

	// The namespace exists and answers: a workflow list query on our
	// attributes is accepted only when they are registered.
	_, err = srv.Client().ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: names.SearchAttrMachineName + " = 'nothing'",
	})
	if err != nil {
		t.Fatalf("query on %s rejected: %v", names.SearchAttrMachineName, err)
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	skipShort(t)
	srv, err := Start(t.Context(), Options{})
	require.NoError(t, err)
	pid := srv.proc.Pid()
	require.Contains(t, children(t), pid, "the server is this test's child")

	require.NoError(t, srv.Stop())
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the server process is gone")
	assert.Empty(t, children(t), "nothing left running")
}

func TestFailedStartLeavesNoProcess(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{{
		// The CLI rejects the flag and exits before listening.
		name: "server exits",
		opts: Options{UI: true, UIPort: "not-a-port"},
		want: []string{"exited before accepting clients", "temporal dev server exited: exit status", "not-a-port"},
	}, {
		// The server is running but not ready yet: Start must kill it.
		name: "deadline",
		opts: Options{ReadyTimeout: time.Millisecond},
		want: []string{"not accepting clients in time", "context deadline exceeded"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out testutil.SyncBuffer
			tc.opts.Out = &out
			srv, err := Start(t.Context(), tc.opts)
			require.Error(t, err)
			assert.Nil(t, srv)
			assert.Contains(t, err.Error(), "starting the Temporal dev server on 127.0.0.1:")
			for _, want := range tc.want {
				assert.Contains(t, err.Error(), want)
			}
			assert.Empty(t, children(t), "the server was stopped")
			output := strings.TrimSpace(out.String())
			last := output[strings.LastIndexByte(output, '\n')+1:]
			assert.True(t, strings.HasSuffix(strings.TrimSpace(err.Error()), last), "the error ends with the server's last output line %q", last)
		})
	}
}

func TestStartNamesAnInvalidHostPort(t *testing.T) {
	_, err := Start(t.Context(), Options{HostPort: "localhost"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `temporal dev server host:port "localhost"`)
	assert.Empty(t, children(t), "nothing was started")
}

func TestArgs(t *testing.T) {
	base := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", "7233", "--namespace", "default",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false", "--log-level", "error"}
	var attrs []string
	for _, name := range names.KeywordSearchAttributes() {
		attrs = append(attrs, "--search-attribute", name+"=Keyword")
	}
	require.NotEmpty(t, attrs)

	got, err := Args(Options{HostPort: "127.0.0.1:7233"})
	require.NoError(t, err)
	assert.Equal(t, slices.Concat(base, []string{"--headless"}, attrs), got)

	got, err = Args(Options{HostPort: "127.0.0.1:7233", Namespace: "ns1", DBFile: "/tmp/t.db", UI: true, UIPort: "8233"})
	require.NoError(t, err)
	withNS := append([]string(nil), base...)
	withNS[7] = "ns1"
	assert.Equal(t, slices.Concat(withNS, []string{"--db-filename", "/tmp/t.db", "--ui-port", "8233"}, attrs), got)

	_, err = Args(Options{})
	assert.ErrorContains(t, err, `temporal dev server host:port ""`)
}

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: needs the Temporal dev server (bin/temporal); run without -short")
	}
}

// children are the pids of this test binary's descendants: it starts none
// but the dev servers under test.
func children(t *testing.T) []int {
	t.Helper()
	procs, err := childproc.Descendants(os.Getpid())
	require.NoError(t, err)
	var pids []int
	for _, p := range procs {
		if p.Alive() {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// helperEnv makes the test binary, run by TestKilledParentLeavesNoProcess,
// start a dev server, print its pid and wait to be killed.
const helperEnv = "DEVTEMPORAL_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		var out testutil.SyncBuffer
		srv, err := Start(context.Background(), Options{Out: &out})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// The server's output is a pipe to this process. Until its start-up
		// banner is out, a write after this process died would kill it with
		// SIGPIPE, and the test would pass without a parent-death signal.
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Metrics:"); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "no start-up banner from the server, got %q\n", out.String())
				os.Exit(2)
			}
		}
		fmt.Println(srv.proc.Pid())
		time.Sleep(time.Hour) // until the test kills it
	}
	os.Exit(m.Run())
}

// A test binary killed with SIGKILL runs no cleanup: the parent-death
// signal must stop its server.
func TestKilledParentLeavesNoProcess(t *testing.T) {
	skipShort(t)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1")
	var stderr testutil.SyncBuffer
	helper.Stderr = &stderr
	stdout, err := helper.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, helper.Start())
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "helper output: %s", stderr.String())
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	tree, err := childproc.Descendants(helper.Process.Pid)
	require.NoError(t, err)
	i := slices.IndexFunc(tree, func(p childproc.Proc) bool { return p.PID == pid })
	require.GreaterOrEqual(t, i, 0, "the server %d is the helper's child: %v", pid, tree)
	t.Cleanup(func() {
		if tree[i].Alive() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	require.NoError(t, helper.Process.Kill())
	_ = helper.Wait()
	// Alive, not kill(pid, 0): the orphan's new parent may be slow to reap it.
	assert.Eventually(t, func() bool { return !tree[i].Alive() }, 30*time.Second, 100*time.Millisecond, "server %s outlived its parent", tree[i])
}
