package secretscan

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// plantedKubeconfig is a kubeconfig with a made-up client key and token:
// only their shapes matter to the scan.
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

// startedWith is a history of one start event with input as the
// workflow's input, as the SDK's default converter encodes it.
func startedWith(t *testing.T, input any) *historypb.History {
	t.Helper()
	payloads, err := converter.GetDefaultDataConverter().ToPayloads(input)
	require.NoError(t, err)
	return &historypb.History{Events: []*historypb.HistoryEvent{{
		EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				WorkflowType: &commonpb.WorkflowType{Name: "ProvisionMachine"}, Input: payloads,
			},
		},
	}}}
}

func secretsOf(found []Finding) []string {
	var out []string
	for _, f := range found {
		out = append(out, f.Secret)
	}
	return out
}

// A kubeconfig registers its key and token as secrets of their own, and a
// value too short to tell from ordinary text is refused.
func TestAdd(t *testing.T) {
	kubeconfig, _, _ := plantedKubeconfig(t)
	set := &Set{}
	assert.ElementsMatch(t, []string{"kc", "kc: user u client key", "kc: user u token"}, set.Add("kc", kubeconfig))
	assert.Equal(t, []string{"cloud-init"}, set.Add("cloud-init", []byte("#cloud-config\npassword: planted-password-42\n")))
	n, forms := set.Len()
	assert.Equal(t, 4, n)
	assert.Greater(t, forms, 4*3, "each secret in several forms")
	assert.Panics(t, func() { set.Add("too short", []byte("short")) })
}

// A secret is found in every form a log or a database would carry it in,
// at most once per artefact, named by artefact and secret; text of
// references only is clean.
func TestScanFindsEveryForm(t *testing.T) {
	kubeconfig, key, token := plantedKubeconfig(t)
	cloudInit := []byte("#cloud-config\nchpasswd:\n  list: |\n    root:\"planted-password-42\"\n")
	set := &Set{}
	set.Add("kubeconfig", kubeconfig)
	set.Add("cloud-init", cloudInit)
	keyLines := strings.Split(strings.TrimSpace(string(key)), "\n")
	jsonLog, err := json.Marshal(map[string]string{"msg": "rendered", "userData": string(cloudInit)})
	require.NoError(t, err)

	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"as is", "user data: " + string(cloudInit), []string{"cloud-init"}},
		{"JSON-escaped in a log line", string(jsonLog), []string{"cloud-init"}},
		{"base64 at offset 0", base64.StdEncoding.EncodeToString(key), []string{"kubeconfig: user u client key"}},
		{"base64 at offset 1", `{"blob":"` + base64.StdEncoding.EncodeToString(append([]byte("x"), key...)) + `"}`, []string{"kubeconfig: user u client key"}},
		{"base64 at offset 2", base64.StdEncoding.EncodeToString(append([]byte("xy"), key...)), []string{"kubeconfig: user u client key"}},
		{"URL-safe base64", "\x00\x01" + base64.URLEncoding.EncodeToString(append([]byte("z"), token...)), []string{"kubeconfig: user u token"}},
		{"one PEM body line", "kubevirtsim: " + keyLines[2], []string{"kubeconfig: user u client key"}},
		{"twice", token + " and again " + token, []string{"kubeconfig: user u token"}},
		{"references only", `{"msg":"built client","kubevirtConfig":"kubevirt-1","host":"https://127.0.0.1:6443"}`, nil},
		{"PEM armour only", "-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found := set.Scan("artefact", []byte(tc.data))
			assert.Equal(t, tc.want, secretsOf(found))
			for _, f := range found {
				assert.Equal(t, "artefact", f.Artefact)
			}
		})
	}
}

// A history carries a secret in a payload as a JSON string or as bytes,
// which its JSON export holds base64-encoded; History exposes both, and
// findings never print a secret.
func TestScanHistory(t *testing.T) {
	kubeconfig, key, token := plantedKubeconfig(t)
	set := &Set{}
	set.Add("kubeconfig", kubeconfig)
	var report []Finding
	for _, tc := range []struct {
		name  string
		input any
		want  string
	}{
		{"kubeconfig as string", struct{ Kubeconfig string }{string(kubeconfig)}, "kubeconfig"},
		{"kubeconfig as bytes", struct{ Kubeconfig []byte }{kubeconfig}, "kubeconfig"},
		{"key as bytes", struct{ Key []byte }{key}, "kubeconfig: user u client key"},
		{"token", struct{ Token string }{token}, "kubeconfig: user u token"},
		{"references only", struct{ Namespace, Name string }{"default", "vm1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			found, err := set.ScanHistory("history of "+tc.name, startedWith(t, tc.input))
			require.NoError(t, err)
			if tc.want == "" {
				assert.Empty(t, found)
				return
			}
			assert.Contains(t, secretsOf(found), tc.want)
			report = append(report, found...)
		})
	}
	require.NotEmpty(t, report)
	printed := fmt.Sprint(report)
	keyLines := strings.Split(strings.TrimSpace(string(key)), "\n")
	for _, secret := range []string{string(kubeconfig), token, keyLines[2]} {
		assert.NotContains(t, printed, secret, "a report never carries a secret")
	}
}

// The raw bytes of a payload are in the text, where the JSON export has
// them only in base64: a short secret, with no base64 form of its own, is
// found there.
func TestHistoryHasRawBytes(t *testing.T) {
	const secret = "sh0rt-pw" // MinLen bytes: too short for a base64 form
	h := startedWith(t, struct{ Password string }{secret})
	text, err := History(h)
	require.NoError(t, err)
	assert.Contains(t, string(text), secret)
	set := &Set{}
	set.Add("password", []byte(secret))
	found, err := set.ScanHistory("history", h)
	require.NoError(t, err)
	assert.Equal(t, []string{"password"}, secretsOf(found))
}
