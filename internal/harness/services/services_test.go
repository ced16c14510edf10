package services

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/harness/childproc"
)

// A service the test killed and left dead stops without an error, so
// that the stack's Stop does not report the test's own fault as a
// failure; one that died by itself still does.
func TestStopAfterKillIsNotAFailure(t *testing.T) {
	start := func(args ...string) *Service {
		proc, err := childproc.Start(childproc.Command{Name: "sleeper", Path: "/bin/sh", Args: args, Out: io.Discard})
		require.NoError(t, err)
		return &Service{name: "sleeper", proc: proc}
	}
	killed := start("-c", "sleep 60")
	require.NoError(t, killed.Kill())
	assert.False(t, killed.Running())
	assert.NoError(t, killed.Stop(time.Second))

	crashed := start("-c", "exit 3")
	require.Eventually(t, func() bool { return !crashed.Running() }, 10*time.Second, 10*time.Millisecond)
	assert.ErrorContains(t, crashed.Stop(time.Second), "exit status 3")
}
