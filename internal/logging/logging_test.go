package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxevent"
	"k8s.io/klog/v2"

	"github.com/machineflow/machineflow/internal/harness/testutil"
)

func TestLoggersShareHandlerAndKeysAreLowerCamel(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: FormatJSON, Level: "info"})
	require.NoError(t, err)

	l.Temporal.Info("Started Worker", "Namespace", "default", "TaskQueue", "machineflow", "WorkerID", "1@host")
	l.Logr.Info("reconciling", "machineName", "vm1")
	l.Slog.Debug("hidden below info")
	l.Logr.V(1).Info("hidden: logr V(1) is slog debug")
	l.Slog.Warn("retrying", "URLPath", "/x", "ID", 7)

	lines := testutil.JSONLines(t, buf.String())
	require.Len(t, lines, 3)
	assert.Equal(t, "Started Worker", lines[0]["msg"])
	assert.Equal(t, "default", lines[0]["namespace"])
	assert.Equal(t, "machineflow", lines[0]["taskQueue"])
	assert.Equal(t, "1@host", lines[0]["workerID"])
	assert.Equal(t, "vm1", lines[1]["machineName"])
	assert.Equal(t, "WARN", lines[2]["level"])
	assert.Equal(t, "/x", lines[2]["urlPath"])
	assert.EqualValues(t, 7, lines[2]["id"])
}

func TestTextFormatAndDebugLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: FormatText, Level: "DEBUG"})
	require.NoError(t, err)
	l.Slog.Debug("polling", "attempt", 2)
	assert.Contains(t, buf.String(), "level=DEBUG msg=polling attempt=2")
}

func TestInvalidOptionsNameTheSetting(t *testing.T) {
	_, err := New(&bytes.Buffer{}, Options{Format: "yaml", Level: "info"})
	require.EqualError(t, err, `LOG_FORMAT="yaml": must be json or text`)
	_, err = New(&bytes.Buffer{}, Options{Format: FormatJSON, Level: "chatty"})
	require.EqualError(t, err, `LOG_LEVEL="chatty": must be debug, info, warn or error`)
}

func TestFxLoggerWritesStructuredEvents(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: FormatJSON, Level: "debug"})
	require.NoError(t, err)
	fl := FxLogger(l.Slog)
	fl.LogEvent(&fxevent.Started{})
	fl.LogEvent(&fxevent.Invoked{FunctionName: "f", Err: assert.AnError})
	lines := testutil.JSONLines(t, buf.String())
	require.Len(t, lines, 2)
	assert.Equal(t, "fx", lines[0]["component"])
	assert.Equal(t, "DEBUG", lines[0]["level"])
	assert.Equal(t, "ERROR", lines[1]["level"])
}

func TestLowerCamel(t *testing.T) {
	for in, want := range map[string]string{
		"WorkflowID": "workflowID", "ID": "id", "URLPath": "urlPath", "msg": "msg", "": "", "A": "a", "Error": "error",
	} {
		assert.Equal(t, want, lowerCamel(in), in)
	}
}

// klog is how client-go logs (leader election among others): after
// SetGlobal its lines, printf-style and structured, are lines of ours.
func TestSetGlobalRoutesKlog(t *testing.T) {
	prev := slog.Default()
	t.Cleanup(func() {
		klog.ClearLogger()
		slog.SetDefault(prev)
	})
	var buf bytes.Buffer
	l, err := New(&buf, Options{Format: FormatJSON, Level: "info"})
	require.NoError(t, err)
	SetGlobal(l.Slog, l.Logr)

	klog.Infof("attempting to acquire leader lease %s...", "ns/lease")
	klog.FromContext(context.Background()).Info("Successfully acquired lease", "lock", "ns/lease")
	klog.ErrorS(errors.New("conflict"), "Failed to update lock", "Lock", "ns/lease")
	klog.V(4).Info("hidden: klog's verbosity stays 0")

	lines := testutil.JSONLines(t, buf.String())
	require.Len(t, lines, 3, buf.String())
	assert.Equal(t, "attempting to acquire leader lease ns/lease...", lines[0]["msg"])
	assert.Equal(t, "INFO", lines[0]["level"])
	assert.Equal(t, "Successfully acquired lease", lines[1]["msg"])
	assert.Equal(t, "ns/lease", lines[1]["lock"], "contextual klog keeps its keys")
	assert.Equal(t, "ERROR", lines[2]["level"])
	assert.Equal(t, "conflict", lines[2]["err"])
	assert.Equal(t, "ns/lease", lines[2]["lock"], "keys are lowerCamel")
}
