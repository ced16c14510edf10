package supervisor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestRESTConfigFromKubeconfigFlag(t *testing.T) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://supervisor.example.com:6443"}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "secret-token"}
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))

	rc, err := RESTConfig(Options{Kubeconfig: path})
	require.NoError(t, err)
	assert.Equal(t, "https://supervisor.example.com:6443", rc.Host)
	assert.EqualValues(t, qps, rc.QPS)
	assert.Equal(t, burst, rc.Burst)

	c, err := New(Options{Kubeconfig: path})
	require.NoError(t, err)
	assert.True(t, c.Scheme().Recognizes(machineGVK), "the client knows vitistack's types")
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
