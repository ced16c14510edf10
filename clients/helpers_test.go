package clients

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/internal/names"
	"github.com/machineflow/machineflow/internal/scheme"
)

const testConfigNamespace = "machineflow-system"

// secretToken is planted in Secrets; no error or log line may contain it.
const secretToken = "s3cr3t-token-XYZ"

func testScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s, err := scheme.New()
	require.NoError(t, err)
	return s
}

// kubeconfig returns a kubeconfig for server that authenticates with token.
// The test servers' certificates are not verified: TLS is there because
// client-go sends credentials over TLS only.
func kubeconfig(t testing.TB, server, token string) []byte {
	return writeKubeconfig(t, &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}, &clientcmdapi.AuthInfo{Token: token})
}

// writeKubeconfig returns a kubeconfig whose one context joins cluster and
// auth.
func writeKubeconfig(t testing.TB, cluster *clientcmdapi.Cluster, auth *clientcmdapi.AuthInfo) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = cluster
	cfg.AuthInfos["u"] = auth
	cfg.Contexts["ctx"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "ctx"
	b, err := clientcmd.Write(*cfg)
	require.NoError(t, err)
	return b
}

// execKubeconfig authenticates through an exec plugin whose arguments hold
// the planted token.
func execKubeconfig(t testing.TB, server string) []byte {
	return writeKubeconfig(t, &clientcmdapi.Cluster{Server: server}, &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		Command: "/bin/sh", Args: []string{"-c", "echo " + secretToken}, APIVersion: "client.authentication.k8s.io/v1",
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
	}})
}

// badCAKubeconfig has CA data that is not PEM: the planted token.
func badCAKubeconfig(t testing.TB) []byte {
	return writeKubeconfig(t, &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", CertificateAuthorityData: []byte(secretToken)},
		&clientcmdapi.AuthInfo{Token: secretToken})
}

// configObjects returns a KubevirtConfig name and its Secret holding data
// (no Secret when data is nil).
func configObjects(name string, data map[string][]byte) []client.Object {
	objs := []client.Object{&v1alpha1.KubevirtConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.KubevirtConfigSpec{
			Name: name, SecretNamespace: testConfigNamespace, KubeconfigSecretRef: name + "-kubeconfig",
		},
	}}
	if data != nil {
		objs = append(objs, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: testConfigNamespace, Name: name + "-kubeconfig"},
			Data:       data,
		})
	}
	return objs
}

// tokenConfig is configObjects for a kubeconfig of server and token.
func tokenConfig(t testing.TB, name, server, token string) []client.Object {
	return configObjects(name, kubeconfigData(kubeconfig(t, server, token)))
}

func kubeconfigData(b []byte) map[string][]byte {
	return map[string][]byte{names.KubeconfigSecretKey: b}
}

// supervisor is a fake supervisor API that counts the Secret reads.
type supervisor struct {
	client.WithWatch
	secretGets atomic.Int64
	// beforeSecretGet, if set, runs before each Secret read.
	beforeSecretGet func()
}

func newSupervisor(t testing.TB, objs ...client.Object) *supervisor {
	t.Helper()
	s := &supervisor{}
	base := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	s.WithWatch = interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*corev1.Secret); ok {
				s.secretGets.Add(1)
				if s.beforeSecretGet != nil {
					s.beforeSecretGet()
				}
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	return s
}

// apiServer is a stand-in for a KubeVirt cluster's API server that only
// serves discovery of kubevirt.io/v1 and accepts one bearer token.
type apiServer struct {
	*httptest.Server
	mu    sync.Mutex
	token string
	// kubevirt: "served", "missing" (404) or "novm" (group without VMs).
	kubevirt string
}

func newAPIServer(t testing.TB, token string) *apiServer {
	t.Helper()
	s := &apiServer{token: token, kubevirt: "served"}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) set(token, kubevirt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.kubevirt = token, kubevirt
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	token, kubevirt := s.token, s.kubevirt
	s.mu.Unlock()
	status := func(code int, reason metav1.StatusReason) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(metav1.Status{
			TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   metav1.StatusFailure, Code: int32(code), Reason: reason, Message: string(reason),
		})
	}
	if r.Header.Get("Authorization") != "Bearer "+token {
		status(http.StatusUnauthorized, metav1.StatusReasonUnauthorized)
		return
	}
	if r.URL.Path != "/apis/kubevirt.io/v1" || kubevirt == "missing" {
		status(http.StatusNotFound, metav1.StatusReasonNotFound)
		return
	}
	list := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: "kubevirt.io/v1",
		APIResources: []metav1.APIResource{{Name: "virtualmachineinstances", Namespaced: true, Kind: "VirtualMachineInstance"}},
	}
	if kubevirt == "served" {
		list.APIResources = append(list.APIResources, metav1.APIResource{Name: "virtualmachines", Namespaced: true, Kind: "VirtualMachine"})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// requireNoSecret fails when s contains the planted token.
func requireNoSecret(t testing.TB, s, where string) {
	t.Helper()
	require.False(t, strings.Contains(s, secretToken), "%s leaks the Secret's token: %s", where, s)
}
