package clients

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vitistack/common/pkg/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/harness/testutil"
	"github.com/machineflow/machineflow/internal/names"
)

// TestSecretsNeverLeak plants a recognisable token in every part of a
// kubeconfig that can go wrong and drives every method through every
// failure path: the token must appear in no error and no log line.
func TestSecretsNeverLeak(t *testing.T) {
	rejecting := newAPIServer(t, "the-only-accepted-token")
	missing := newAPIServer(t, secretToken)
	missing.set(secretToken, "missing")
	hole := testutil.BlackHole(t)
	withAuth := func(server string, auth *clientcmdapi.AuthInfo) []byte {
		return writeKubeconfig(t, &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}, auth)
	}
	// Names a cluster it does not define: the token.
	clusterIsToken, err := clientcmd.Load(withAuth(rejecting.URL, &clientcmdapi.AuthInfo{Token: secretToken}))
	require.NoError(t, err)
	clusterIsToken.Contexts["ctx"].Cluster = secretToken
	clusterIsTokenBytes, err := clientcmd.Write(*clusterIsToken)
	require.NoError(t, err)
	token := &clientcmdapi.AuthInfo{Token: secretToken}
	kubeconfigs := map[string][]byte{
		"bare-token":         []byte(secretToken),
		"yaml-garbage":       []byte("token: " + secretToken + "\n  - {{"),
		"json-garbage":       []byte(`{"users": [{"user": {"token": "` + secretToken + `"}}], `),
		"wrong-kind":         []byte("apiVersion: v1\nkind: " + secretToken + "\n"),
		"context-is-token":   []byte("apiVersion: v1\nkind: Config\ncurrent-context: " + secretToken + "\n"),
		"cluster-is-token":   clusterIsTokenBytes,
		"exec-plugin":        execKubeconfig(t, rejecting.URL),
		"auth-provider":      withAuth(rejecting.URL, &clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "oidc", Config: map[string]string{"id-token": secretToken}}}),
		"ca-is-token":        badCAKubeconfig(t),
		"cert-is-token":      withAuth("https://127.0.0.1:1", &clientcmdapi.AuthInfo{ClientCertificateData: []byte(secretToken), ClientKeyData: []byte(secretToken)}),
		"token-and-basic":    withAuth(rejecting.URL, &clientcmdapi.AuthInfo{Token: secretToken, Username: "u", Password: secretToken}),
		"token-rejected":     withAuth(rejecting.URL, token),
		"password-rejected":  withAuth(rejecting.URL, &clientcmdapi.AuthInfo{Username: "admin", Password: secretToken}),
		"token-black-hole":   withAuth(hole, token),
		"token-no-kubevirt":  withAuth(missing.URL, token),
		"token-refused":      withAuth("https://127.0.0.1:1", token),
		"token-file-missing": withAuth(rejecting.URL, &clientcmdapi.AuthInfo{TokenFile: "/nonexistent/" + secretToken}),
	}
	var objs []client.Object
	for name, data := range kubeconfigs {
		objs = append(objs, configObjects(name, kubeconfigData(data))...)
	}
	// The Secret itself is in the error path too when it lacks the key.
	objs = append(objs, configObjects("wrong-key", map[string][]byte{secretToken: []byte(secretToken)})...)

	var logMu sync.Mutex
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(&logs, prefix, args)
	}, funcr.Options{Verbosity: 10})
	m := newManager(t, newSupervisor(t, objs...), WithLogger(log), WithRequestTimeout(300*time.Millisecond))
	ctx := t.Context()

	var failures int
	check := func(where string, err error) {
		t.Helper()
		if err == nil {
			return
		}
		failures++
		for e := err; e != nil; e = errors.Unwrap(e) {
			requireNoSecret(t, e.Error(), where)
		}
		requireNoSecret(t, fmt.Sprintf("%v %+v %#v", err, err, err), where)
	}
	for name := range kubeconfigs {
		_, err := m.GetClientForConfig(ctx, name)
		check("GetClientForConfig "+name, err)
		_, err = m.GetRESTConfigForConfig(ctx, name)
		check("GetRESTConfigForConfig "+name, err)
		check("ValidateConnection "+name, m.ValidateConnection(ctx, name))
		machine := &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: "vm", Annotations: map[string]string{names.PlacementAnnotation: name},
		}}
		_, _, err = m.GetOrCreateClientFromMachine(ctx, machine)
		check("GetOrCreateClientFromMachine "+name, err)
		m.InvalidateClient(name)
	}
	check("ValidateConnection wrong-key", m.ValidateConnection(ctx, "wrong-key"))

	health := m.HealthCheck(ctx)
	assert.Len(t, health, len(kubeconfigs)+1, "every planted config fails its health check")
	for name, err := range health {
		check("HealthCheck "+name, err)
	}
	// Without an annotation, the search visits every cluster.
	_, _, err = m.GetOrCreateClientFromMachine(ctx, &v1alpha1.Machine{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "vm"}})
	require.ErrorIs(t, err, ErrClusterUnreachable, "no cluster could be searched")
	check("placement search", err)

	assert.Greater(t, failures, 4*len(kubeconfigs))
	logMu.Lock()
	defer logMu.Unlock()
	require.NotEmpty(t, logs.String(), "the test must see the manager's logs")
	requireNoSecret(t, logs.String(), "the logs")
}
