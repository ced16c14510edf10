package clients

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/vitistack/common/pkg/v1alpha1"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/machineflow/machineflow/internal/names"
)

// KubevirtClientManager is the ClientManager backed by KubevirtConfigs and
// kubeconfig Secrets on the supervisor. See doc.go for its design.
type KubevirtClientManager struct {
	supervisor      client.Client
	scheme          *runtime.Scheme
	configNamespace string
	opts            options

	mu      sync.RWMutex
	entries map[string]*entry
	// gens counts the invalidations of each name and epoch those of
	// InvalidateAll, so a build that raced with an invalidation does not
	// put its result back into the cache.
	gens  map[string]uint64
	epoch uint64

	flights singleflight.Group
}

var _ ClientManager = (*KubevirtClientManager)(nil)

// entry is one cached client. Everything but freshUntil is immutable once
// the entry is published.
type entry struct {
	client     client.Client
	restConfig *rest.Config // handed out as copies only
	discovery  *discovery.DiscoveryClient
	// fingerprint identifies the kubeconfig bytes the client was built from.
	fingerprint [sha256.Size]byte
	// freshUntil (unix nanoseconds) is when the entry must be revalidated.
	freshUntil atomic.Int64
}

// NewKubevirtClientManager returns a manager that reads KubevirtConfigs
// through supervisorClient and the kubeconfig Secrets they name from
// configNamespace unless a config says otherwise.
//
// Invalid arguments are programmer errors and panic with a message naming
// the argument, as controller-runtime's constructors do: a nil client or
// scheme, an empty namespace, or an option out of range (a non-positive
// QPS, burst or request timeout). Settings read from the environment are
// validated before they get here (Module returns them as a start-up
// error), so a bad setting never panics a process.
func NewKubevirtClientManager(supervisorClient client.Client, scheme *runtime.Scheme, configNamespace string, opts ...Option) *KubevirtClientManager {
	m, err := newKubevirtClientManager(supervisorClient, scheme, configNamespace, opts...)
	if err != nil {
		panic("clients.NewKubevirtClientManager: " + err.Error())
	}
	return m
}

// newKubevirtClientManager is NewKubevirtClientManager with its argument
// errors returned, for wiring that takes them from settings.
func newKubevirtClientManager(supervisorClient client.Client, scheme *runtime.Scheme, configNamespace string, opts ...Option) (*KubevirtClientManager, error) {
	if supervisorClient == nil {
		return nil, errors.New("supervisor client is nil")
	}
	if scheme == nil {
		return nil, errors.New("scheme is nil")
	}
	if configNamespace == "" {
		return nil, errors.New("config namespace is empty")
	}
	o := options{
		requestTimeout:       DefaultRequestTimeout,
		qps:                  DefaultQPS,
		burst:                DefaultBurst,
		revalidationInterval: DefaultRevalidationInterval,
		log:                  logr.Discard(),
		secretReader:         supervisorClient,
		clock:                clock.RealClock{},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &KubevirtClientManager{
		supervisor:      supervisorClient,
		scheme:          scheme,
		configNamespace: configNamespace,
		opts:            o,
		entries:         map[string]*entry{},
		gens:            map[string]uint64{},
	}, nil
}

// GetConfigNamespace returns the namespace of kubeconfig Secrets whose
// KubevirtConfig sets no spec.secretNamespace.
func (m *KubevirtClientManager) GetConfigNamespace() string { return m.configNamespace }

// GetClientForConfig returns the cached client of the KubevirtConfig name,
// building or revalidating it first when needed.
func (m *KubevirtClientManager) GetClientForConfig(ctx context.Context, name string) (client.Client, error) {
	e, err := m.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return e.client, nil
}

// GetRESTConfigForConfig returns a copy of the REST config behind the
// client of name.
func (m *KubevirtClientManager) GetRESTConfigForConfig(ctx context.Context, name string) (*rest.Config, error) {
	e, err := m.get(ctx, name)
	if err != nil {
		return nil, err
	}
	return rest.CopyConfig(e.restConfig), nil
}

// InvalidateClient drops the cached client of name; the next call builds a
// new one from the current KubevirtConfig and Secret.
func (m *KubevirtClientManager) InvalidateClient(name string) {
	m.mu.Lock()
	delete(m.entries, name)
	m.gens[name]++
	m.mu.Unlock()
	// Callers arriving from now on start a new build instead of joining
	// one that may have read the old Secret.
	m.flights.Forget(name)
	m.opts.log.V(1).Info("dropped cached client", "kubevirtConfig", name)
}

// InvalidateAll drops every cached client.
func (m *KubevirtClientManager) InvalidateAll() {
	m.mu.Lock()
	dropped := make([]string, 0, len(m.entries))
	for name := range m.entries {
		dropped = append(dropped, name)
	}
	m.epoch++
	clear(m.entries)
	m.mu.Unlock()
	for _, name := range dropped {
		m.flights.Forget(name)
	}
	m.opts.log.V(1).Info("dropped all cached clients", "count", len(dropped))
}

// ListKubevirtConfigs lists every KubevirtConfig on the supervisor.
func (m *KubevirtClientManager) ListKubevirtConfigs(ctx context.Context) ([]v1alpha1.KubevirtConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.requestTimeout)
	defer cancel()
	var list v1alpha1.KubevirtConfigList
	if err := m.supervisor.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing KubevirtConfigs on the supervisor: %w", err)
	}
	return list.Items, nil
}

// get is the hot path: a read-locked map lookup and a clock read. Anything
// else (first build, revalidation) runs once per name at a time, without
// the lock, in a flight that the callers share.
func (m *KubevirtClientManager) get(ctx context.Context, name string) (*entry, error) {
	m.mu.RLock()
	e := m.entries[name]
	m.mu.RUnlock()
	if e != nil && m.opts.clock.Now().UnixNano() < e.freshUntil.Load() {
		return e, nil
	}
	if name == "" {
		return nil, &Error{Kind: ErrConfigNotFound, Reason: "no KubevirtConfig name given"}
	}
	// The flight outlives any single caller, so it runs on a context of its
	// own: one caller giving up must not fail the others.
	ch := m.flights.DoChan(name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*m.opts.requestTimeout)
		defer cancel()
		return m.load(fctx, name)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*entry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the client of KubevirtConfig %q: %w", name, ctx.Err())
	}
}

// load reads the KubevirtConfig and its Secret and returns the cached entry
// if it was built from the same kubeconfig, else a new one.
func (m *KubevirtClientManager) load(ctx context.Context, name string) (*entry, error) {
	m.mu.RLock()
	gen, epoch := m.gens[name], m.epoch
	cached := m.entries[name]
	m.mu.RUnlock()
	// A caller that missed the cache just before another flight stored a
	// fresh entry starts a flight of its own once that one is over: it
	// takes the entry instead of reading the Secret again.
	if cached != nil && m.opts.clock.Now().UnixNano() < cached.freshUntil.Load() {
		return cached, nil
	}

	secretRef, data, err := m.readKubeconfig(ctx, name)
	if err != nil {
		if errors.Is(err, ErrConfigNotFound) || errors.Is(err, ErrInvalidKubeconfig) {
			// The source of truth says this client must no longer be used.
			m.dropIfCurrent(name, cached)
		}
		return nil, err
	}
	fingerprint := sha256.Sum256(data)
	if cached != nil && cached.fingerprint == fingerprint {
		m.markFresh(cached)
		return cached, nil
	}

	e, err := m.build(name, secretRef, data)
	if err != nil {
		m.dropIfCurrent(name, cached)
		return nil, err
	}
	e.fingerprint = fingerprint
	m.markFresh(e)

	m.mu.Lock()
	stored := m.gens[name] == gen && m.epoch == epoch
	if stored {
		m.entries[name] = e
	}
	m.mu.Unlock()
	m.opts.log.Info("built client", "kubevirtConfig", name, "secret", secretRef.String(),
		"host", e.restConfig.Host, "replaced", cached != nil, "cached", stored)
	return e, nil
}

// readKubeconfig returns the Secret a KubevirtConfig names and its
// kubeconfig. The Secret is read with a direct Get in its own namespace.
func (m *KubevirtClientManager) readKubeconfig(ctx context.Context, name string) (types.NamespacedName, []byte, error) {
	var kvc v1alpha1.KubevirtConfig
	if err := m.supervisor.Get(ctx, client.ObjectKey{Name: name}, &kvc); err != nil {
		if apierrors.IsNotFound(err) {
			return types.NamespacedName{}, nil, &Error{Kind: ErrConfigNotFound, Config: name, Reason: "no such KubevirtConfig on the supervisor"}
		}
		return types.NamespacedName{}, nil, fmt.Errorf("reading KubevirtConfig %q from the supervisor: %w", name, err)
	}
	ref := types.NamespacedName{Namespace: kvc.Spec.SecretNamespace, Name: kvc.Spec.KubeconfigSecretRef}
	if ref.Namespace == "" {
		ref.Namespace = m.configNamespace
	}
	if ref.Name == "" {
		return ref, nil, &Error{Kind: ErrInvalidKubeconfig, Config: name, Reason: "spec.kubeconfigSecretRef is empty"}
	}
	var secret corev1.Secret
	if err := m.opts.secretReader.Get(ctx, ref, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return ref, nil, &Error{Kind: ErrInvalidKubeconfig, Config: name, Reason: fmt.Sprintf("Secret %s not found", ref)}
		}
		return ref, nil, fmt.Errorf("reading kubeconfig Secret %s of KubevirtConfig %q: %w", ref, name, err)
	}
	data, ok := secret.Data[names.KubeconfigSecretKey]
	if !ok {
		return ref, nil, &Error{Kind: ErrInvalidKubeconfig, Config: name,
			Reason: fmt.Sprintf("Secret %s has no key %q", ref, names.KubeconfigSecretKey)}
	}
	return ref, data, nil
}

// build makes a client from a kubeconfig. It does no network I/O: the
// client discovers the cluster's API lazily.
func (m *KubevirtClientManager) build(name string, secretRef types.NamespacedName, kubeconfig []byte) (*entry, error) {
	cfg, err := restConfigFromKubeconfig(name, secretRef, kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = m.opts.requestTimeout
	cfg.QPS = m.opts.qps
	cfg.Burst = m.opts.burst
	cfg.UserAgent = "machineflow"

	e := &entry{}
	// Every response of this cluster passes here, whichever API the caller
	// used, so a 401 anywhere drops exactly this entry: the Secret may have
	// been rotated, and the next call rebuilds from it.
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &unauthorizedTripper{next: rt, onUnauthorized: func() {
			if m.dropIfCurrent(name, e) {
				m.opts.log.Info("cluster rejected credentials, dropped cached client", "kubevirtConfig", name)
			}
		}}
	})
	e.restConfig = cfg

	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidKubeconfig, Config: name,
			Reason: fmt.Sprintf("Secret %s key %q holds unusable TLS or auth material", secretRef, names.KubeconfigSecretKey)}
	}
	if e.client, err = client.New(cfg, client.Options{Scheme: m.scheme, HTTPClient: httpClient}); err != nil {
		return nil, fmt.Errorf("creating client for KubevirtConfig %q: %w", name, err)
	}
	if e.discovery, err = discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient); err != nil {
		return nil, fmt.Errorf("creating discovery client for KubevirtConfig %q: %w", name, err)
	}
	return e, nil
}

func (m *KubevirtClientManager) markFresh(e *entry) {
	e.freshUntil.Store(m.opts.clock.Now().Add(m.opts.revalidationInterval).UnixNano())
}

// dropIfCurrent removes e if it is still the cached entry of name, and
// reports whether it did. A late failure of an old client thus never drops
// its successor.
func (m *KubevirtClientManager) dropIfCurrent(name string, e *entry) bool {
	if e == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[name] != e {
		return false
	}
	delete(m.entries, name)
	m.gens[name]++
	return true
}

// unauthorizedTripper reports 401 answers.
type unauthorizedTripper struct {
	next           http.RoundTripper
	onUnauthorized func()
}

func (t *unauthorizedTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.onUnauthorized()
	}
	return resp, err
}

// WrappedRoundTripper lets client-go's debugging helpers see through.
func (t *unauthorizedTripper) WrappedRoundTripper() http.RoundTripper { return t.next }
