package runner

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/harness/childproc"
)

func newTestRunner(t *testing.T) (*runner, *capture) {
	t.Helper()
	c := &capture{}
	c.out = &output{w: &c.buf}
	r := &runner{out: c.out, log: slog.New(slog.DiscardHandler)}
	t.Cleanup(func() {
		for _, p := range r.procs {
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		}
	})
	return r, c
}

func TestPrefixedOutput(t *testing.T) {
	var buf bytes.Buffer
	o := &output{w: &buf}
	w := o.prefixed("sandbox")
	_, err := w.Write([]byte("one\ntw"))
	require.NoError(t, err)
	_, err = w.Write([]byte("o\nthree"))
	require.NoError(t, err)
	assert.Equal(t, "sandbox    | one\nsandbox    | two\n", buf.String(), "partial lines wait for their newline")
	w.Flush()
	assert.Equal(t, "sandbox    | one\nsandbox    | two\nsandbox    | three\n", buf.String())
}

func TestStopIsCleanForAWellBehavedChild(t *testing.T) {
	r, buf := newTestRunner(t)
	// A shell that exits 0 on SIGTERM, with a child it stops first.
	p, err := r.start("good", "/bin/sh", nil, "-c", `sleep 60 & trap 'kill $!; wait; exit 0' TERM; echo up; wait`)
	require.NoError(t, err)
	waitOutput(t, buf, "good       | up")

	require.NoError(t, p.Stop(10*time.Second))
	assert.True(t, p.Exited())
}

func TestStopKillsWhatAChildLeavesBehind(t *testing.T) {
	r, buf := newTestRunner(t)
	// The shell exits on SIGTERM but leaves its sleep running, as a
	// sandbox that crashed would leave etcd.
	p, err := r.start("leaky", "/bin/sh", nil, "-c", `sleep 60 & trap 'exit 0' TERM; echo up; wait`)
	require.NoError(t, err)
	waitOutput(t, buf, "leaky      | up")
	tree, err := childproc.Descendants(p.Pid())
	require.NoError(t, err)
	require.Len(t, tree, 1, "the sleep")

	err = p.Stop(10 * time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "leaky left processes behind, killed them: [sleep(")
	require.Eventually(t, func() bool { return !tree[0].Alive() }, 5*time.Second, 50*time.Millisecond)
}

func TestStopKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	r, buf := newTestRunner(t)
	p, err := r.start("stubborn", "/bin/sh", nil, "-c", `trap '' TERM; echo up; while :; do sleep 0.1; done`)
	require.NoError(t, err)
	waitOutput(t, buf, "stubborn   | up")

	started := time.Now()
	err = p.Stop(500 * time.Millisecond)
	require.Error(t, err, "a killed process did not stop cleanly")
	assert.Contains(t, err.Error(), "stubborn exited: signal: killed")
	assert.Less(t, time.Since(started), 10*time.Second)
}

func TestStartedChildFailingIsReported(t *testing.T) {
	r, _ := newTestRunner(t)
	p, err := r.start("failing", "/bin/sh", nil, "-c", "echo broken >&2; exit 3")
	require.NoError(t, err)
	<-p.Done()
	err = p.Stop(time.Second)
	assert.EqualError(t, err, "failing exited: exit status 3")
}

func TestChildEnvDropsOutsideTemporalAndKubeconfig(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "secret")
	t.Setenv("TEMPORAL_ADDRESS", "prod:7233")
	t.Setenv("KUBECONFIG", "/home/me/.kube/prod")
	t.Setenv("MACHINEFLOW_KEEP", "yes")
	env := strings.Join(childEnv(), "\n")
	assert.NotContains(t, env, "TEMPORAL_")
	assert.NotContains(t, env, "KUBECONFIG=")
	assert.Contains(t, env, "MACHINEFLOW_KEEP=yes")
}

func TestValidateNamesEveryProblem(t *testing.T) {
	o := DefaultOptions()
	o.BinDir = t.TempDir()
	o.TemporalCLI = "/nonexistent/temporal"
	o.UIPort = o.TemporalPort
	o.BootDelay = -time.Second
	err := o.Validate()
	require.Error(t, err)
	for _, want := range []string{"sandbox is missing", "worker is missing", "controller is missing", "starter is missing",
		"-temporal-cli", "-ui-port 7233: the same as -temporal-port", "-boot-delay -1s"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestDescendants(t *testing.T) {
	r, buf := newTestRunner(t)
	p, err := r.start("tree", "/bin/sh", nil, "-c", `sh -c 'sleep 60' & echo up; wait`)
	require.NoError(t, err)
	waitOutput(t, buf, "tree       | up")
	var tree []childproc.Proc
	require.Eventually(t, func() bool {
		tree, err = childproc.Descendants(p.Pid())
		return err == nil && len(tree) == 2
	}, 5*time.Second, 50*time.Millisecond, "sh and its sleep")
	for _, d := range tree {
		assert.True(t, d.Alive(), d.String())
	}
	mine, err := childproc.Descendants(os.Getpid())
	require.NoError(t, err)
	assert.Subset(t, mine, tree, "grandchildren are descendants too")

	require.NoError(t, syscall.Kill(-p.Pid(), syscall.SIGKILL))
	<-p.Done()
	require.Eventually(t, func() bool { return !tree[0].Alive() && !tree[1].Alive() }, 5*time.Second, 50*time.Millisecond)
}

// capture is what the runner's output wrote, read under the output's own
// lock since the children write concurrently.
type capture struct {
	out *output
	buf bytes.Buffer
}

func (c *capture) String() string {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.buf.String()
}

func waitOutput(t *testing.T, buf *capture, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), want) }, 10*time.Second, 20*time.Millisecond, "output %q", want)
}
