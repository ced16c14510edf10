package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/reflect/protoreflect"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/machineflow/machineflow/internal/temporalclient"
)

const (
	// minSecretLen is the shortest value rememberSecret accepts: anything
	// shorter turns up in ordinary text by chance.
	minSecretLen = 8
	// minLineLen is the shortest line, or base64 form, of a secret that
	// counts as that secret when found alone.
	minLineLen = 16
	// probeLen is the length of the prefix the scan indexes needles by;
	// no needle is shorter.
	probeLen = minSecretLen
)

// secrets is every secret the suite put in play; TestMain sweeps for them.
var secrets = &secretSet{}

// rememberSecret registers a secret the test puts in play, so that the
// sweep after the suite fails if it appears in a history or a log. what
// names it in the report; the value is never printed. A kubeconfig's
// client key, certificate, token and password are registered too. It
// panics on a value shorter than minSecretLen: the sweep could not tell it
// from ordinary text, so a test must use longer secrets.
func rememberSecret(what string, value []byte) { secrets.add(what, value) }

// needle is one form in which a secret would show up.
type needle struct {
	secret int // index into secretSet.names
	form   string
	b      []byte
}

// secretSet holds the registered secrets as needles indexed by their
// first probeLen bytes, so that a scan is one pass over the data.
type secretSet struct {
	mu    sync.Mutex
	names []string
	index map[string][]needle
	count int
}

func (s *secretSet) add(what string, value []byte) {
	if len(value) < minSecretLen {
		panic(fmt.Sprintf("rememberSecret(%q): %d bytes; the sweep needs secrets of at least %d bytes", what, len(value), minSecretLen))
	}
	s.mu.Lock()
	if s.index == nil {
		s.index = map[string][]needle{}
	}
	id := len(s.names)
	s.names = append(s.names, what)
	for _, n := range needlesOf(value) {
		n.secret = id
		key := string(n.b[:probeLen])
		if !slices.ContainsFunc(s.index[key], func(o needle) bool { return o.secret == id && bytes.Equal(o.b, n.b) }) {
			s.index[key] = append(s.index[key], n)
			s.count++
		}
	}
	s.mu.Unlock()
	for part, v := range kubeconfigCredentials(value) {
		s.add(what+": "+part, v)
	}
}

// size is the number of secrets and of forms looked for.
func (s *secretSet) size() (secrets, needles int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names), s.count
}

// needlesOf lists the forms of a secret: as is and JSON-escaped (a string
// in a JSON log or payload), base64 at each of the three alignments it can
// have inside longer encoded data, in both alphabets, and each long line
// (a PEM body line, a kubeconfig line).
func needlesOf(v []byte) []needle {
	out := []needle{{form: "as is", b: v}}
	if esc := jsonEscaped(v); !bytes.Equal(esc, v) {
		out = append(out, needle{form: "JSON-escaped", b: esc})
	}
	for _, enc := range []struct {
		name string
		*base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for shift := range 3 {
			if core := base64Core(enc.Encoding, v, shift); len(core) >= minLineLen {
				out = append(out, needle{form: fmt.Sprintf("%s at offset %d", enc.name, shift), b: core})
			}
		}
	}
	if bytes.ContainsRune(v, '\n') {
		for i, line := range bytes.Split(v, []byte("\n")) {
			line = bytes.TrimSpace(line)
			// PEM armour lines are the same in every PEM.
			if len(line) < minLineLen || bytes.HasPrefix(line, []byte("-----")) {
				continue
			}
			form := fmt.Sprintf("line %d", i+1)
			out = append(out, needle{form: form, b: line})
			if esc := jsonEscaped(line); !bytes.Equal(esc, line) {
				out = append(out, needle{form: form + ", JSON-escaped", b: esc})
			}
		}
	}
	return out
}

func jsonEscaped(v []byte) []byte {
	b, _ := json.Marshal(string(v)) // a string always encodes
	return b[1 : len(b)-1]
}

// base64Core is the part of the base64 encoding of v that is the same
// wherever v starts inside longer data, given that it starts shift bytes
// after a 3-byte boundary: the characters that carry only v's bits.
func base64Core(enc *base64.Encoding, v []byte, shift int) []byte {
	padded := append(make([]byte, shift), v...)
	full := enc.EncodeToString(padded)
	start := (shift*8 + 5) / 6
	end := len(padded) * 8 / 6
	if end <= start {
		return nil
	}
	return []byte(full[start:end])
}

// kubeconfigCredentials returns the credentials of a kubeconfig by name,
// or nothing when value is not a kubeconfig with credentials.
func kubeconfigCredentials(value []byte) map[string][]byte {
	cfg, err := clientcmd.Load(value)
	if err != nil {
		return nil
	}
	out := map[string][]byte{}
	for name, auth := range cfg.AuthInfos {
		for part, v := range map[string][]byte{
			"client key":         auth.ClientKeyData,
			"client certificate": auth.ClientCertificateData,
			"token":              []byte(auth.Token),
			"password":           []byte(auth.Password),
		} {
			if len(v) >= minSecretLen {
				out[fmt.Sprintf("user %s %s", name, part)] = v
			}
		}
	}
	return out
}

// finding is one secret found in one artefact. It never holds the secret.
type finding struct {
	artefact, secret, form string
}

func (f finding) String() string { return fmt.Sprintf("%s: %s (%s)", f.artefact, f.secret, f.form) }

// scan reports every registered secret found in data, once per secret.
func (s *secretSet) scan(artefact string, data []byte) []finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []finding
	seen := map[int]bool{}
	for i := 0; i+probeLen <= len(data); i++ {
		for _, n := range s.index[string(data[i:i+probeLen])] {
			if !seen[n.secret] && bytes.HasPrefix(data[i:], n.b) {
				seen[n.secret] = true
				found = append(found, finding{artefact: artefact, secret: s.names[n.secret], form: n.form})
			}
		}
	}
	return found
}

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
func sweep(ctx context.Context, c client.Client, dir string, set *secretSet) ([]finding, sweepStats, error) {
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
func sweepHistories(ctx context.Context, c client.Client, set *secretSet, st *sweepStats) ([]finding, error) {
	var found []finding
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
			f, err := scanHistory(set, fmt.Sprintf("history of %s (run %s)", id, run), h)
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
func sweepFiles(dir string, set *secretSet, st *sweepStats) ([]finding, error) {
	var found []finding
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
		found = append(found, set.scan(d.Name(), data)...)
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

// scanHistory looks at a history as `temporal workflow show --output json`
// exports it, and at the decoded bytes of every payload in it, where JSON
// carries them base64-encoded.
func scanHistory(set *secretSet, artefact string, h *historypb.History) ([]finding, error) {
	data, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding as JSON: %w", artefact, err)
	}
	var raw [][]byte
	var walk func(protoreflect.Message)
	visit := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch {
		case fd.Message() != nil:
			walk(v.Message())
		case fd.Kind() == protoreflect.BytesKind:
			raw = append(raw, v.Bytes())
		}
	}
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList():
				for i := range v.List().Len() {
					visit(fd, v.List().Get(i))
				}
			case fd.IsMap():
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(fd.MapValue(), mv)
					return true
				})
			default:
				visit(fd, v)
			}
			return true
		})
	}
	walk(h.ProtoReflect())
	// One text, so that a secret is reported once per history.
	all := bytes.Join(append([][]byte{data}, raw...), []byte{0})
	return set.scan(artefact, all), nil
}

// plantedKubeconfig is a kubeconfig with a made-up client key and token:
// only their shapes matter to the sweep.
func plantedKubeconfig(t *testing.T) (kubeconfig, key []byte, token string) {
	t.Helper()
	body := make([]byte, 96)
	_, err := rand.Read(body)
	require.NoError(t, err)
	key = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: body})
	token = "planted-" + base64.RawURLEncoding.EncodeToString(body[:24])
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientKeyData: key, Token: token}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	kubeconfig, err = clientcmd.Write(*cfg)
	require.NoError(t, err)
	return kubeconfig, key, token
}

// The sweep finds a registered secret in every form a log or a history
// would carry it in, names the artefact and the secret, and never prints
// the secret; a clean artefact and files that are not artefacts (the
// supervisor kubeconfig) are not reported.
func TestSweepFindsPlantedSecrets(t *testing.T) {
	kubeconfig, key, token := plantedKubeconfig(t)
	cloudInit := []byte("#cloud-config\nchpasswd:\n  list: |\n    root:\"planted-password-42\"\n")
	set := &secretSet{}
	set.add("planted kubeconfig", kubeconfig)
	set.add("planted cloud-init", cloudInit)
	n, _ := set.size()
	assert.Equal(t, 4, n, "the kubeconfig, its key and token, and the cloud-init")
	assert.Panics(t, func() { set.add("too short", []byte("short")) })

	keyLines := strings.Split(strings.TrimSpace(string(key)), "\n")
	jsonLog, err := json.Marshal(map[string]string{"msg": "rendered", "userData": string(cloudInit)})
	require.NoError(t, err)
	dir := t.TempDir()
	files := map[string]string{
		"worker-1.log":          string(jsonLog) + "\n",
		"controller.log":        `{"msg":"x","blob":"` + base64.StdEncoding.EncodeToString(append([]byte("xy"), key...)) + `"}` + "\n",
		"simulators.log":        "kubevirtsim: " + keyLines[2] + "\n",
		"worker-2.log":          `{"msg":"built client","kubevirtConfig":"kubevirt-1","host":"https://127.0.0.1:6443"}` + "\n",
		"supervisor.kubeconfig": string(kubeconfig),
		"temporal.db":           "\x00\x01" + base64.URLEncoding.EncodeToString(append([]byte("z"), token...)),
	}
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	st := sweepStats{files: map[string]int{}}
	found, err := sweepFiles(dir, set, &st)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"worker log": 2, "controller log": 1, "simulator log": 1, "Temporal database": 1}, st.files)
	byArtefact := map[string][]string{}
	for _, f := range found {
		byArtefact[f.artefact] = append(byArtefact[f.artefact], f.secret)
	}
	assert.ElementsMatch(t, []string{"planted cloud-init"}, byArtefact["worker-1.log"], "JSON-escaped in a log line")
	assert.ElementsMatch(t, []string{"planted kubeconfig: user u client key"}, byArtefact["controller.log"], "base64 at an offset")
	assert.ElementsMatch(t, []string{"planted kubeconfig: user u client key"}, byArtefact["simulators.log"], "one PEM body line")
	assert.ElementsMatch(t, []string{"planted kubeconfig: user u token"}, byArtefact["temporal.db"], "URL-safe base64")
	assert.NotContains(t, byArtefact, "worker-2.log", "a log of references only is clean")
	assert.NotContains(t, byArtefact, "supervisor.kubeconfig", "not an artefact")

	payloads, err := converter.GetDefaultDataConverter().ToPayloads(struct{ Kubeconfig []byte }{kubeconfig})
	require.NoError(t, err)
	h := &historypb.History{Events: []*historypb.HistoryEvent{{
		EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: "ProvisionMachine"}, Input: payloads,
			},
		},
	}}}
	inHistory, err := scanHistory(set, "history of planted", h)
	require.NoError(t, err)
	var secretsInHistory []string
	for _, f := range inHistory {
		secretsInHistory = append(secretsInHistory, f.secret)
		found = append(found, f)
	}
	assert.Contains(t, secretsInHistory, "planted kubeconfig", "a kubeconfig as bytes in a workflow input")

	report := fmt.Sprint(found)
	for _, secret := range []string{string(kubeconfig), token, keyLines[2], "planted-password-42"} {
		assert.NotContains(t, report, secret, "a report never carries a secret")
	}
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
	set := &secretSet{}
	set.add("canary", canary)
	// A task queue no worker polls: the run stays open with its input.
	run, err := st.Temporal().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hygiene-canary", TaskQueue: "hygiene-canary"},
		"HygieneCanary", struct{ Token []byte }{canary})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = st.Temporal().TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "hygiene test done")
	})
	var found []finding
	require.Eventually(t, func() bool {
		stats := sweepStats{files: map[string]int{}}
		found, err = sweepHistories(ctx, st.Temporal(), set, &stats)
		require.NoError(t, err)
		return len(found) > 0
	}, 30*time.Second, 500*time.Millisecond, "visibility lists the canary")
	require.Len(t, found, 1)
	assert.Equal(t, "history of hygiene-canary (run "+run.GetRunID()+")", found[0].artefact)
	assert.Equal(t, "canary", found[0].secret)
}
