// Package supervisor connects to the supervisor cluster, the one holding
// Machines, KubevirtConfigs and the kubeconfig Secrets.
//
// The client reads through to the API server, without an informer cache:
// activities check what exists right before they create it, and a cache
// would also watch every Secret of the cluster. The REST config comes from
// --kubeconfig when given, else from controller-runtime's rules (the
// KUBECONFIG variable, the in-cluster service account, ~/.kube/config), so
// in a pod it needs no setting at all.
package supervisor

import (
	"fmt"

	"go.uber.org/fx"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/machineflow/machineflow/internal/scheme"
)

// Options say how to reach the supervisor.
type Options struct {
	// Kubeconfig is a kubeconfig file (--kubeconfig); empty follows
	// controller-runtime's rules.
	Kubeconfig string
}

// Client-side limits towards the supervisor: a worker's activities read
// and write Machines in bursts when many provision at once.
const (
	qps   = 50
	burst = 100
)

// RESTConfig loads the supervisor's REST config.
func RESTConfig(o Options) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	} else {
		cfg, err = crconfig.GetConfig()
	}
	if err != nil {
		// Neither error quotes credentials: they name files and variables.
		return nil, fmt.Errorf("supervisor kubeconfig (--kubeconfig, KUBECONFIG or in-cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	return cfg, nil
}

// New returns an uncached client of the supervisor.
func New(o Options) (client.Client, error) {
	cfg, err := RESTConfig(o)
	if err != nil {
		return nil, err
	}
	s, err := scheme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("supervisor client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// Module provides the supervisor's client.Client from the Options.
var Module = fx.Module("supervisor", fx.Provide(New))
