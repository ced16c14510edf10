package reliability

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/machineflow/machineflow/internal/harness/secretscan"
	"github.com/machineflow/machineflow/internal/temporalclient"
)

// secrets is every secret the suite put in play; TestMain sweeps for them.
var secrets = &secretscan.Set{}

// rememberSecret registers a secret the test puts in play, so that the
// sweep after the suite fails if it appears in a history or a log. what
// names it in the report; the value is never printed. A kubeconfig's
// client key, certificate, token and password are registered too. It
// panics on a value shorter than secretscan.MinLen: the sweep could not
// tell it from ordinary text, so a test must use longer secrets.
func rememberSecret(what string, value []byte) { secrets.Add(what, value) }

// sweepStats say what a sweep looked at, so that a sweep that saw nothing
// cannot pass unnoticed.
type sweepStats struct {
	histories, events int
	files             map[string]int // by kind: worker, controller, simulators, temporal
	bytes             int64
}

func (st sweepStats) String() string {
	kinds := make([]string, 0, len(st.files))
	for k, n := range st.files {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d histories (%d events), files: %s, %d bytes", st.histories, st.events, strings.Join(kinds, ", "), st.bytes)
}

// sweep looks for the secrets of set in every workflow history of the dev
// server that c reaches and in every log and Temporal database file under
// dir.
func sweep(ctx context.Context, c client.Client, dir string, set *secretscan.Set) ([]secretscan.Finding, sweepStats, error) {
	st := sweepStats{files: map[string]int{}}
	found, err := sweepHistories(ctx, c, set, &st)
	if err != nil {
		return nil, st, err
	}
	more, err := sweepFiles(dir, set, &st)
	return append(found, more...), st, err
}

// sweepHistories exports and scans every execution's history, open and
// closed.
func sweepHistories(ctx context.Context, c client.Client, set *secretscan.Set, st *sweepStats) ([]secretscan.Finding, error) {
	var found []secretscan.Finding
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: temporalclient.DefaultNamespace, PageSize: 500, NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("listing workflow executions: %w", err)
		}
		for _, e := range resp.Executions {
			id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			h, err := history(ctx, c, id, run)
			if err != nil {
				return nil, err
			}
			f, err := set.ScanHistory(fmt.Sprintf("history of %s (run %s)", id, run), h)
			if err != nil {
				return nil, err
			}
			found = append(found, f...)
			st.histories++
			st.events += len(h.Events)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return found, nil
		}
	}
}

// sweepFiles scans the artefacts under dir (artefactKind).
func sweepFiles(dir string, set *secretscan.Set, st *sweepStats) ([]secretscan.Finding, error) {
	var found []secretscan.Finding
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		kind := artefactKind(d.Name())
		if kind == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // SQLite's journal comes and goes
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		st.files[kind]++
		st.bytes += int64(len(data))
		found = append(found, set.Scan(d.Name(), data)...)
		return nil
	})
	return found, err
}

// artefactKind says which files the sweep reads: the processes' logs and
// Temporal's database (with its journal), which holds every payload raw.
// The supervisor kubeconfig and the binaries are not artefacts.
func artefactKind(name string) string {
	switch {
	case strings.HasPrefix(name, "worker") && strings.HasSuffix(name, ".log"):
		return "worker log"
	case name == "controller.log":
		return "controller log"
	case name == "simulators.log":
		return "simulator log"
	case strings.HasSuffix(name, ".log"):
		return "other log"
	case strings.HasPrefix(name, "temporal.db"):
		return "Temporal database"
	}
	return ""
}

func history(ctx context.Context, c client.Client, id, run string) (*historypb.History, error) {
	h := &historypb.History{}
	it := c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s (run %s): %w", id, run, err)
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
}

// The sweep reads every log and Temporal's database under the stack's
// directory, reports each file a secret is in by its name, and leaves out
// files that are not artefacts (the supervisor kubeconfig). The forms a
// secret is found in are internal/harness/secretscan's tests.
func TestSweepReadsEveryArtefact(t *testing.T) {
	token := make([]byte, 24)
	_, err := rand.Read(token)
	require.NoError(t, err)
	set := &secretscan.Set{}
	set.Add("planted token", token)
	encoded := base64.StdEncoding.EncodeToString(token)
	dir := t.TempDir()
	files := map[string]string{
		"worker-1.log":          `{"msg":"x","token":"` + encoded + `"}` + "\n",
		"worker-2.log":          `{"msg":"built client","kubevirtConfig":"kubevirt-1"}` + "\n",
		"controller.log":        "token " + encoded + "\n",
		"simulators.log":        "token " + encoded + "\n",
		"kubevirtsim-9.log":     "token " + encoded + "\n",
		"temporal.db":           "\x00\x01" + string(token),
		"temporal.db-journal":   "\x00",
		"supervisor.kubeconfig": "token: " + encoded + "\n",
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	st := sweepStats{files: map[string]int{}}
	found, err := sweepFiles(dir, set, &st)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"worker log": 2, "controller log": 1, "simulator log": 1, "other log": 1, "Temporal database": 2}, st.files)
	var where []string
	for _, f := range found {
		assert.Equal(t, "planted token", f.Secret)
		where = append(where, f.Artefact)
	}
	assert.ElementsMatch(t, []string{"worker-1.log", "controller.log", "simulators.log", "kubevirtsim-9.log", "temporal.db"}, where)
}

// The sweep reads the dev server's histories: a workflow started with a
// secret in its input is found, by its workflow ID. The canary's secret is
// in a set of its own, so the sweep after the suite does not report it.
func TestSweepFindsACanaryWorkflow(t *testing.T) {
	st := need(t)
	ctx := t.Context()
	canary := make([]byte, 32)
	_, err := rand.Read(canary)
	require.NoError(t, err)
	set := &secretscan.Set{}
	set.Add("canary", canary)
	// A task queue no worker polls: the run stays open with its input.
	run, err := st.Temporal().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hygiene-canary", TaskQueue: "hygiene-canary"},
		"HygieneCanary", struct{ Token []byte }{canary})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = st.Temporal().TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "hygiene test done")
	})
	var found []secretscan.Finding
	require.Eventually(t, func() bool {
		stats := sweepStats{files: map[string]int{}}
		found, err = sweepHistories(ctx, st.Temporal(), set, &stats)
		require.NoError(t, err)
		return len(found) > 0
	}, 30*time.Second, 500*time.Millisecond, "visibility lists the canary")
	require.Len(t, found, 1)
	assert.Equal(t, "history of hygiene-canary (run "+run.GetRunID()+")", found[0].Artefact)
	assert.Equal(t, "canary", found[0].Secret)
}
