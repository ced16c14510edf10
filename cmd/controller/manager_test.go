package main

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/logging"
)

func TestCleanStopSinkTurnsTheReleasedLeaseIntoInfo(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.New(&buf, logging.Options{Format: logging.FormatJSON, Level: "info"})
	require.NoError(t, err)
	stopping := &atomic.Bool{}
	log := logr.New(cleanStopSink{LogSink: l.Logr.GetSink(), stopping: stopping}).WithName("manager").WithValues("replica", "a")
	lost := errors.New(errLeaseReleased)

	log.Error(lost, "error received after stop sequence was engaged")
	stopping.Store(true)
	log.Error(lost, "error received after stop sequence was engaged")
	log.Error(errors.New("cache did not sync"), "error received after stop sequence was engaged")

	lines := testutil.JSONLines(t, buf.String())
	require.Len(t, lines, 3, buf.String())
	assert.Equal(t, "ERROR", lines[0]["level"], "a lease lost while running stays an error")
	assert.Equal(t, errLeaseReleased, lines[0]["err"])
	assert.Equal(t, "INFO", lines[1]["level"], "the release on a clean stop is no error")
	assert.Equal(t, "Released the leader election lease on stop", lines[1]["msg"])
	assert.Equal(t, "manager", lines[1]["logger"], "names and values are kept")
	assert.Equal(t, "a", lines[1]["replica"])
	assert.Equal(t, "ERROR", lines[2]["level"], "other errors during the stop stay errors")

	buf.Reset()
	quiet, err := logging.New(&buf, logging.Options{Format: logging.FormatJSON, Level: "error"})
	require.NoError(t, err)
	logr.New(cleanStopSink{LogSink: quiet.Logr.GetSink(), stopping: stopping}).Error(lost, "error received after stop sequence was engaged")
	assert.Empty(t, buf.String(), "the info line follows LOG_LEVEL")
}
