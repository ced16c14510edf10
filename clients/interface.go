package clients

import (
	"context"

	"github.com/vitistack/common/pkg/v1alpha1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ClientManager hands out clients for the KubeVirt clusters that
// KubevirtConfigs on the supervisor describe. Activities depend on this
// interface only; KubevirtClientManager is the real implementation and
// MockClientManager the one for tests.
type ClientManager interface {
	// GetClientForConfig returns the (cached) client for the KubevirtConfig name.
	GetClientForConfig(ctx context.Context, name string) (client.Client, error)
	// GetOrCreateClientFromMachine chooses the KubevirtConfig for a Machine
	// (annotation, default config, only config, then a search for its VM) and
	// returns its client and name. It never writes the Machine.
	GetOrCreateClientFromMachine(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error)

	// ListKubevirtConfigs lists every KubevirtConfig on the supervisor.
	ListKubevirtConfigs(ctx context.Context) ([]v1alpha1.KubevirtConfig, error)
	// GetConfigNamespace is where kubeconfig Secrets live when a
	// KubevirtConfig does not name a namespace.
	GetConfigNamespace() string

	// InvalidateClient drops the cached client of one config.
	InvalidateClient(name string)
	// InvalidateAll drops every cached client.
	InvalidateAll()

	// ValidateConnection proves that the cluster answers and serves
	// kubevirt.io/v1 VirtualMachines.
	ValidateConnection(ctx context.Context, name string) error
	// HealthCheck validates every KubevirtConfig concurrently and returns the
	// failures by config name.
	HealthCheck(ctx context.Context) map[string]error

	// GetRESTConfigForConfig returns a copy of the REST config built from the
	// config's kubeconfig Secret.
	GetRESTConfigForConfig(ctx context.Context, name string) (*rest.Config, error)
}
