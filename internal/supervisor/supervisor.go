// Package supervisor connects to the supervisor cluster, the one holding
// Machines, KubevirtConfigs and the kubeconfig Secrets.
//
// The client reads through to the API server, without an informer cache:
// activities check what exists right before they create it, and a cache
// would also watch every Secret of the cluster. The REST config comes from
// --kubeconfig when given, else from controller-runtime's rules (the
// KUBECONFIG variable, the in-cluster service account, ~/.kube/config), so
// in a pod it needs no setting at all.
//
// Its client-side rate limit (SUPERVISOR_QPS, SUPERVISOR_BURST) applies to
// each API resource on its own: controller-runtime gives every resource
// type its own REST client, and each REST client its own token bucket. A
// worker provisioning many Machines at once is bound by the Machine
// resource, which its steps read and write (about 22 requests per
// provision: each of nine status writes is a Get and an Update), so the
// default 50 QPS allows about 2 provisions a second.
package supervisor

import (
	"cmp"
	"fmt"

	"go.uber.org/fx"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/machineflow/machineflow/internal/config/check"
	"github.com/machineflow/machineflow/internal/config/envflag"
	"github.com/machineflow/machineflow/internal/scheme"
)

// Default client-side limits towards the supervisor, per API resource:
// above controller-runtime's 20/30 because a worker's activities read and
// write Machines in bursts when many provision at once, and low enough
// that one worker cannot crowd out the supervisor's other clients.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// Options say how to reach the supervisor.
type Options struct {
	// Kubeconfig is a kubeconfig file (--kubeconfig); empty follows
	// controller-runtime's rules.
	Kubeconfig string
	// QPS and Burst are the client-side rate limit per API resource
	// (SUPERVISOR_QPS, SUPERVISOR_BURST); zero means DefaultQPS and
	// DefaultBurst.
	QPS   float32
	Burst int
}

// Bind registers the rate-limit settings; each binary binds --kubeconfig
// itself.
func (o *Options) Bind(b *envflag.Binder) {
	b.Float32(&o.QPS, "supervisor-qps", "SUPERVISOR_QPS", DefaultQPS, "requests per second to the supervisor, per API resource (Machines, Secrets, ...)")
	b.Int(&o.Burst, "supervisor-burst", "SUPERVISOR_BURST", DefaultBurst, "requests to the supervisor per API resource allowed at once above SUPERVISOR_QPS")
}

// Validate reports invalid rate-limit settings, naming their variables.
func (o Options) Validate() error {
	var p check.Problems
	p.PositiveNumber("SUPERVISOR_QPS", float64(o.QPS))
	p.AtLeastOne("SUPERVISOR_BURST", o.Burst)
	return p.Err()
}

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
	cfg.QPS, cfg.Burst = cmp.Or(o.QPS, DefaultQPS), cmp.Or(o.Burst, DefaultBurst)
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
