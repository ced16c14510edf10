package workflows

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// historiesDir holds one history per main path, recorded from real runs
// on the Temporal dev server (see doc.go, "Changing workflow code").
const historiesDir = "testdata"

// TestReplay replays every recorded history against the current workflow
// code: a change that is not behind workflow.GetVersion fails it. The
// histories are checked in, so a missing testdata/ fails rather than skips.
func TestReplay(t *testing.T) {
	replayAll(t, historiesDir)
}

// replayAll replays every *.json history in dir and fails if there is none.
func replayAll(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "%s holds no *.json history", dir)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			RegisterWorkflows(replayer)
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
}

func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}
