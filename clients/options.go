package clients

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Defaults of NewKubevirtClientManager, the same as cluster-api's ClusterCache
// for the client settings.
const (
	DefaultRequestTimeout       = 10 * time.Second
	DefaultQPS                  = 20
	DefaultBurst                = 30
	DefaultRevalidationInterval = 30 * time.Second
)

type options struct {
	defaultConfig        string
	requestTimeout       time.Duration
	qps                  float32
	burst                int
	revalidationInterval time.Duration
	log                  logr.Logger
	secretReader         client.Reader
	clock                clock.PassiveClock
}

// Option configures a KubevirtClientManager.
type Option func(*options)

// WithDefaultConfig names the KubevirtConfig for Machines without the
// placement annotation (DEFAULT_KUBEVIRT_CONFIG).
func WithDefaultConfig(name string) Option {
	return func(o *options) { o.defaultConfig = name }
}

// WithRequestTimeout bounds every request to a KubeVirt cluster and every
// read from the supervisor.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.requestTimeout = d }
}

// WithQPS sets the client-side rate limit towards each KubeVirt cluster.
func WithQPS(qps float32) Option {
	return func(o *options) { o.qps = qps }
}

// WithBurst sets the client-side burst towards each KubeVirt cluster.
func WithBurst(burst int) Option {
	return func(o *options) { o.burst = burst }
}

// WithRevalidationInterval sets how long a cached client is handed out
// before its KubevirtConfig and Secret are read again: the bound on how
// stale a client may be after a change. Zero revalidates on every call.
func WithRevalidationInterval(d time.Duration) Option {
	return func(o *options) { o.revalidationInterval = d }
}

// WithLogger sets the logger; the default discards.
func WithLogger(log logr.Logger) Option {
	return func(o *options) { o.log = log }
}

// WithSecretReader sets the reader for kubeconfig Secrets. It must not be
// backed by an informer cache (that would watch every Secret of the
// cluster): pass manager.GetAPIReader() when the supervisor client is a
// manager's cached client. The default is the supervisor client itself.
func WithSecretReader(r client.Reader) Option {
	return func(o *options) { o.secretReader = r }
}

// WithClock replaces the clock that ages cached clients, for tests.
func WithClock(c clock.PassiveClock) Option {
	return func(o *options) { o.clock = c }
}

func (o *options) validate() error {
	var errs []error
	if o.requestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request timeout must be positive, got %s", o.requestTimeout))
	}
	if o.qps <= 0 {
		errs = append(errs, fmt.Errorf("QPS must be positive, got %g", o.qps))
	}
	if o.burst <= 0 {
		errs = append(errs, fmt.Errorf("burst must be positive, got %d", o.burst))
	}
	if o.revalidationInterval < 0 {
		errs = append(errs, fmt.Errorf("revalidation interval must not be negative, got %s", o.revalidationInterval))
	}
	if o.secretReader == nil {
		errs = append(errs, errors.New("secret reader must not be nil"))
	}
	if o.clock == nil {
		errs = append(errs, errors.New("clock must not be nil"))
	}
	return errors.Join(errs...)
}
