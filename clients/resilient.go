package clients

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/vitistack/common/pkg/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// ErrCircuitOpen is matched (errors.Is) by the errors a
// ResilientClientManager returns without calling a cluster whose breaker
// is open. Those errors also match ErrClusterUnreachable, so callers that
// retry unreachable clusters treat them alike.
var ErrCircuitOpen = errors.New("circuit breaker open")

// CircuitOpenError is the fail-fast error of an open breaker.
type CircuitOpenError struct {
	// Config is the KubevirtConfig whose cluster is considered down.
	Config string
	// Failures is the number of consecutive failures that opened it.
	Failures int
	// RetryIn is the time until the breaker lets a probe through.
	RetryIn time.Duration
}

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("KubevirtConfig %q: %s: %s after %d consecutive failures, next probe in %s",
		e.Config, ErrClusterUnreachable, ErrCircuitOpen, e.Failures, e.RetryIn.Round(time.Millisecond))
}

// Is matches ErrCircuitOpen and ErrClusterUnreachable.
func (e *CircuitOpenError) Is(target error) bool {
	return target == ErrCircuitOpen || target == ErrClusterUnreachable
}

// Defaults of ResilienceOptions.
const (
	DefaultRetryAttempts    = 3
	DefaultRetryInitial     = 200 * time.Millisecond
	DefaultRetryMax         = 2 * time.Second
	DefaultFailureThreshold = 5
	DefaultCoolDown         = 30 * time.Second
)

// ResilienceOptions tune a ResilientClientManager; zero fields take the
// defaults above.
type ResilienceOptions struct {
	// Attempts is the number of tries of one call, the first included.
	Attempts int
	// RetryInitial and RetryMax bound the exponential backoff between tries.
	RetryInitial, RetryMax time.Duration
	// FailureThreshold consecutive transient failures open a config's breaker.
	FailureThreshold int
	// CoolDown is how long an open breaker fails fast before it lets one
	// probe through.
	CoolDown time.Duration
	// Clock times the breakers; tests inject a fake one.
	Clock clock.PassiveClock
}

func (o ResilienceOptions) withDefaults() ResilienceOptions {
	if o.Attempts <= 0 {
		o.Attempts = DefaultRetryAttempts
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = DefaultRetryInitial
	}
	if o.RetryMax < o.RetryInitial {
		o.RetryMax = max(DefaultRetryMax, o.RetryInitial)
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.CoolDown <= 0 {
		o.CoolDown = DefaultCoolDown
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
}

// ResilientClientManager decorates a ClientManager with retries of
// transient failures and a circuit breaker per KubevirtConfig.
//
// Transient means: ErrClusterUnreachable, API timeouts, throttling and 5xx
// answers, network timeouts. Everything else (config not found, invalid
// kubeconfig, unauthorized, ambiguous placement, any answer of the API
// such as NotFound) is returned at once: retrying cannot change it.
//
// The breaker of a config counts consecutive transient failures of the
// ClientManager's calls for that config and of every request made through
// the clients it hands out, since that is where the cluster is really
// used. At FailureThreshold it opens: calls and requests fail at once
// with a *CircuitOpenError naming the config. After CoolDown it lets one
// probe through (half-open): an answer closes it, a transient failure
// opens it for another CoolDown. ListKubevirtConfigs and invalidations
// pass through the breakers: they do not talk to KubeVirt clusters.
//
// ValidateConnection and HealthCheck pass through untouched, neither
// retried nor guarded: they are probes, whose answer is the cluster as it
// is now. Retrying them in process would multiply a dark cluster's cost
// (three request timeouts plus backoff for one health check), and a
// breaker would answer "circuit open" instead of saying what is wrong.
// Their callers retry where that is wanted: the ValidateCluster activity
// through its Temporal retry policy, the health check at its next run.
type ResilientClientManager struct {
	next ClientManager
	opts ResilienceOptions

	mu       sync.Mutex
	breakers map[string]*breaker
	// sleep waits between tries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ ClientManager = (*ResilientClientManager)(nil)

// NewResilientClientManager decorates next.
func NewResilientClientManager(next ClientManager, opts ResilienceOptions) *ResilientClientManager {
	return &ResilientClientManager{next: next, opts: opts.withDefaults(), breakers: map[string]*breaker{}, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// BreakerState is the state of one config's breaker.
type BreakerState int

// Breaker states.
const (
	BreakerClosed BreakerState = iota
	BreakerHalfOpen
	BreakerOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "closed"
}

// BreakerState reports the breaker of config as of now; an open breaker
// whose cool-down has passed reports half-open.
func (r *ResilientClientManager) BreakerState(config string) BreakerState {
	b := r.breaker(config)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !r.opts.Clock.Now().Before(b.openedAt.Add(r.opts.CoolDown)) {
		return BreakerHalfOpen
	}
	return b.state
}

func (r *ResilientClientManager) breaker(config string) *breaker {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.breakers[config]
	if !ok {
		b = &breaker{}
		r.breakers[config] = b
	}
	return b
}

type breaker struct {
	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	// probing is true while the half-open breaker's one probe runs.
	probing bool
}

// outcome of a call as the breaker sees it.
type outcome int

const (
	answered  outcome = iota // the cluster (or supervisor) answered
	transient                // it did not: counts towards opening
	abandoned                // the caller gave up: says nothing
)

// allow reports whether a call may go to the cluster of config, and
// whether it is the half-open probe.
func (r *ResilientClientManager) allow(config string) (probe bool, err error) {
	b := r.breaker(config)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		reopen := b.openedAt.Add(r.opts.CoolDown)
		if now := r.opts.Clock.Now(); now.Before(reopen) {
			return false, &CircuitOpenError{Config: config, Failures: b.failures, RetryIn: reopen.Sub(now)}
		}
		b.state = BreakerHalfOpen
	}
	if b.probing {
		return false, &CircuitOpenError{Config: config, Failures: b.failures}
	}
	b.probing = true
	return true, nil
}

func (r *ResilientClientManager) record(config string, probe bool, o outcome) {
	b := r.breaker(config)
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch o {
	case answered:
		b.state, b.failures = BreakerClosed, 0
	case transient:
		b.failures++
		if b.state == BreakerHalfOpen || b.failures >= r.opts.FailureThreshold {
			b.state, b.openedAt = BreakerOpen, r.opts.Clock.Now()
		}
	}
}

// guarded runs one request to the cluster of config through its breaker.
func (r *ResilientClientManager) guarded(ctx context.Context, config string, call func() error) error {
	probe, err := r.allow(config)
	if err != nil {
		return err
	}
	err = call()
	r.record(config, probe, classifyOutcome(ctx, err))
	return err
}

func classifyOutcome(ctx context.Context, err error) outcome {
	switch {
	case err == nil:
		return answered
	case ctx.Err() != nil:
		return abandoned
	case isTransient(err):
		return transient
	}
	return answered
}

// isTransient: the error says the cluster or supervisor did not answer,
// so a later try may succeed.
func isTransient(err error) bool {
	var typed *Error
	var netErr net.Error
	switch {
	case errors.Is(err, ErrCircuitOpen):
		return false
	case errors.Is(err, ErrClusterUnreachable):
		return true
	case errors.As(err, &typed), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &netErr):
		// Refused, reset or timed out: the cluster did not answer.
		return true
	}
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}

// retry runs call up to Attempts times while it fails transiently and ctx
// lives, with exponential backoff and jitter between tries. A try that
// ctx's deadline would cut short, judged by how long the last one took, is
// not started: its end would be the caller's own timeout (an activity's
// StartToClose), which hides why the cluster did not answer, where this
// try's error says it.
func (r *ResilientClientManager) retry(ctx context.Context, call func() error) error {
	backoff := r.opts.RetryInitial
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || attempt >= r.opts.Attempts || !isTransient(err) || ctx.Err() != nil {
			return err
		}
		// Jitter in [backoff/2, backoff) keeps workers that failed together
		// from retrying together.
		wait := backoff/2 + rand.N(backoff/2+1)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait+took {
			return err
		}
		if r.sleep(ctx, wait) != nil {
			return err
		}
		backoff = min(2*backoff, r.opts.RetryMax)
	}
}

// GetClientForConfig returns next's client, guarded by the config's breaker.
func (r *ResilientClientManager) GetClientForConfig(ctx context.Context, name string) (client.Client, error) {
	var c client.Client
	err := r.retry(ctx, func() error {
		return r.guarded(ctx, name, func() (err error) {
			c, err = r.next.GetClientForConfig(ctx, name)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return &guardedClient{Client: c, r: r, config: name}, nil
}

// GetOrCreateClientFromMachine chooses through next; a Machine placed by
// annotation fails fast while its config's breaker is open.
func (r *ResilientClientManager) GetOrCreateClientFromMachine(ctx context.Context, machine *v1alpha1.Machine) (client.Client, string, error) {
	var (
		c    client.Client
		name string
	)
	call := func() (err error) {
		c, name, err = r.next.GetOrCreateClientFromMachine(ctx, machine)
		return err
	}
	err := r.retry(ctx, func() error {
		if machine != nil {
			if config := machine.Annotations[names.PlacementAnnotation]; config != "" {
				return r.guarded(ctx, config, call)
			}
		}
		return call()
	})
	if err != nil {
		return nil, "", err
	}
	return &guardedClient{Client: c, r: r, config: name}, name, nil
}

// ListKubevirtConfigs retries transient supervisor failures.
func (r *ResilientClientManager) ListKubevirtConfigs(ctx context.Context) ([]v1alpha1.KubevirtConfig, error) {
	var configs []v1alpha1.KubevirtConfig
	err := r.retry(ctx, func() (err error) {
		configs, err = r.next.ListKubevirtConfigs(ctx)
		return err
	})
	return configs, err
}

// GetConfigNamespace passes through.
func (r *ResilientClientManager) GetConfigNamespace() string { return r.next.GetConfigNamespace() }

// InvalidateClient passes through; the breaker keeps its state, because
// invalidating is what callers do after failures, not proof of recovery.
func (r *ResilientClientManager) InvalidateClient(name string) { r.next.InvalidateClient(name) }

// InvalidateAll passes through.
func (r *ResilientClientManager) InvalidateAll() { r.next.InvalidateAll() }

// ValidateConnection passes through, neither retried nor guarded: it is a
// probe (see the type's comment).
func (r *ResilientClientManager) ValidateConnection(ctx context.Context, name string) error {
	return r.next.ValidateConnection(ctx, name)
}

// HealthCheck passes through, unguarded: it reports every cluster as it is.
func (r *ResilientClientManager) HealthCheck(ctx context.Context) map[string]error {
	return r.next.HealthCheck(ctx)
}

// GetRESTConfigForConfig retries and is guarded by the config's breaker.
func (r *ResilientClientManager) GetRESTConfigForConfig(ctx context.Context, name string) (*rest.Config, error) {
	var cfg *rest.Config
	err := r.retry(ctx, func() error {
		return r.guarded(ctx, name, func() (err error) {
			cfg, err = r.next.GetRESTConfigForConfig(ctx, name)
			return err
		})
	})
	return cfg, err
}

// guardedClient sends every request to its cluster through the config's
// breaker. It does not retry: a request's caller (an activity) has its
// own retry policy, and Create or Update are not for repeating blindly.
// Methods without I/O (Scheme, RESTMapper, ...) come from the embedded
// client.
type guardedClient struct {
	client.Client
	r      *ResilientClientManager
	config string
}

func (g *guardedClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Get(ctx, key, obj, opts...) })
}

func (g *guardedClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.List(ctx, list, opts...) })
}

func (g *guardedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Create(ctx, obj, opts...) })
}

func (g *guardedClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Delete(ctx, obj, opts...) })
}

func (g *guardedClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Update(ctx, obj, opts...) })
}

func (g *guardedClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Patch(ctx, obj, patch, opts...) })
}

func (g *guardedClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.Apply(ctx, obj, opts...) })
}

func (g *guardedClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	return g.r.guarded(ctx, g.config, func() error { return g.Client.DeleteAllOf(ctx, obj, opts...) })
}

func (g *guardedClient) Status() client.SubResourceWriter { return g.SubResource("status") }

func (g *guardedClient) SubResource(subResource string) client.SubResourceClient {
	return &guardedSubResource{next: g.Client.SubResource(subResource), g: g}
}

type guardedSubResource struct {
	next client.SubResourceClient
	g    *guardedClient
}

func (s *guardedSubResource) Get(ctx context.Context, obj, subResource client.Object, opts ...client.SubResourceGetOption) error {
	return s.g.r.guarded(ctx, s.g.config, func() error { return s.next.Get(ctx, obj, subResource, opts...) })
}

func (s *guardedSubResource) Create(ctx context.Context, obj, subResource client.Object, opts ...client.SubResourceCreateOption) error {
	return s.g.r.guarded(ctx, s.g.config, func() error { return s.next.Create(ctx, obj, subResource, opts...) })
}

func (s *guardedSubResource) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	return s.g.r.guarded(ctx, s.g.config, func() error { return s.next.Update(ctx, obj, opts...) })
}

func (s *guardedSubResource) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	return s.g.r.guarded(ctx, s.g.config, func() error { return s.next.Patch(ctx, obj, patch, opts...) })
}

func (s *guardedSubResource) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	return s.g.r.guarded(ctx, s.g.config, func() error { return s.next.Apply(ctx, obj, opts...) })
}
