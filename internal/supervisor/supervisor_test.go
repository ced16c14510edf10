package supervisor

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/machineflow/machineflow/internal/config/envflag"
)

// writeKubeconfig writes a kubeconfig of https://supervisor.example.com:6443
// and returns its path.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://supervisor.example.com:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "secret-token"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

func TestRESTConfigFromKubeconfigFlag(t *testing.T) {
	path := writeKubeconfig(t)
	rc, err := RESTConfig(Options{Kubeconfig: path})
	require.NoError(t, err)
	assert.Equal(t, "https://supervisor.example.com:6443", rc.Host)
	assert.EqualValues(t, DefaultQPS, rc.QPS, "zero means the default")
	assert.Equal(t, DefaultBurst, rc.Burst)

	c, err := New(Options{Kubeconfig: path})
	require.NoError(t, err)
	assert.True(t, c.Scheme().Recognizes(machineGVK), "the client knows vitistack's types")
}

func TestRateLimitSettings(t *testing.T) {
	path := writeKubeconfig(t)
	for name, tc := range map[string]struct {
		env   map[string]string
		args  []string
		qps   float32
		burst int
		err   string
	}{
		"defaults":  {qps: DefaultQPS, burst: DefaultBurst},
		"variables": {env: map[string]string{"SUPERVISOR_QPS": "400", "SUPERVISOR_BURST": "800"}, qps: 400, burst: 800},
		"flags win": {env: map[string]string{"SUPERVISOR_QPS": "400"}, args: []string{"--supervisor-qps=2.5", "--supervisor-burst=5"}, qps: 2.5, burst: 5},
		"zero":      {env: map[string]string{"SUPERVISOR_QPS": "0", "SUPERVISOR_BURST": "0"}, err: "SUPERVISOR_QPS=0: must be positive\nSUPERVISOR_BURST=0: must be at least 1"},
		"negative":  {args: []string{"--supervisor-qps=-1"}, err: "SUPERVISOR_QPS=-1: must be positive"},
	} {
		t.Run(name, func(t *testing.T) {
			b := envflag.New(flag.NewFlagSet("prog", flag.ContinueOnError))
			o := Options{Kubeconfig: path}
			o.Bind(b)
			envErr, err := b.Parse(tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			require.NoError(t, err)
			require.NoError(t, envErr)
			if tc.err != "" {
				require.EqualError(t, o.Validate(), tc.err)
				return
			}
			require.NoError(t, o.Validate())
			rc, err := RESTConfig(o)
			require.NoError(t, err)
			assert.Equal(t, tc.qps, rc.QPS, "the REST config the clients are made from")
			assert.Equal(t, tc.burst, rc.Burst)
		})
	}
}

func TestRESTConfigErrorNamesTheSettingNotTheSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte("token: secret-token\nnot: [a kubeconfig"), 0o600))
	_, err := RESTConfig(Options{Kubeconfig: path})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "supervisor kubeconfig (--kubeconfig, KUBECONFIG or in-cluster)")
	assert.NotContains(t, err.Error(), "secret-token")
}

var machineGVK = v1alpha1.GroupVersion.WithKind("Machine")
