package childproc

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/harness/testutil"
)

// Any writer, no logger, and the exit code tells a graceful exit from
// death by the signal.
func TestStartAndStop(t *testing.T) {
	var out testutil.SyncBuffer
	graceful, err := Start(Command{Name: "graceful", Path: "/bin/sh", Args: []string{"-c", `trap 'echo bye; exit 0' TERM; echo up; while :; do sleep 0.1; done`}, Out: &out})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "up") }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, graceful.Stop(10*time.Second))
	assert.Equal(t, 0, graceful.ExitCode())
	assert.NoError(t, graceful.Err())
	assert.Equal(t, "up\nbye\n", out.String())

	killed, err := Start(Command{Name: "killed", Path: "/bin/sleep", Args: []string{"60"}, Out: &out})
	require.NoError(t, err)
	require.NoError(t, killed.Stop(10*time.Second), "death by SIGTERM is a clean stop")
	assert.Equal(t, -1, killed.ExitCode(), "but not an exit status")
	assert.ErrorContains(t, killed.Err(), "signal: terminated")

	_, err = Start(Command{Name: "missing", Path: "/nonexistent/bin"})
	assert.ErrorContains(t, err, "starting missing (/nonexistent/bin)")
}

// Kill does not let a child run its SIGTERM handler: it ends as a crash
// would, with its whole process group.
func TestKill(t *testing.T) {
	var out testutil.SyncBuffer
	p, err := Start(Command{Name: "crashing", Path: "/bin/sh", Args: []string{"-c", `trap 'echo bye; exit 0' TERM; sleep 60 & echo up; wait`}, Out: &out})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "up") }, 10*time.Second, 20*time.Millisecond)
	tree, err := Descendants(p.Pid())
	require.NoError(t, err)
	require.NotEmpty(t, tree, "the shell's sleep")

	require.NoError(t, p.Kill())
	assert.True(t, p.Exited())
	assert.ErrorContains(t, p.Err(), "signal: killed")
	assert.NotContains(t, out.String(), "bye", "no SIGTERM handler ran")
	for _, d := range tree {
		assert.Eventually(t, func() bool { return !d.Alive() }, 5*time.Second, 20*time.Millisecond, "%s killed with its group", d)
	}
	require.NoError(t, p.Kill(), "a second Kill is a no-op")
}
