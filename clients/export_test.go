package clients

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// For the design document's examples in clients_test: a fake supervisor
// holding a KubevirtConfig and its kubeconfig Secret for a stand-in
// KubeVirt API server.
func NewExampleSupervisor(t testing.TB, configs ...string) client.Client {
	t.Helper()
	var objs []client.Object
	for _, name := range configs {
		objs = append(objs, tokenConfig(t, name, newAPIServer(t, "token-"+name).URL, "token-"+name)...)
	}
	return newSupervisor(t, objs...)
}
