package clients

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// SupervisorHealthKey is the key under which HealthCheck reports that it
// could not list the KubevirtConfigs. It cannot clash with a config name,
// which must be a DNS subdomain.
const SupervisorHealthKey = "<supervisor>"

// ValidateConnection asks the cluster of name for its kubevirt.io/v1
// discovery document: an answer proves the API server is reachable with
// these credentials, and it must list virtualmachines.
func (m *KubevirtClientManager) ValidateConnection(ctx context.Context, name string) error {
	e, err := m.get(ctx, name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.requestTimeout)
	defer cancel()
	raw, err := e.discovery.RESTClient().Get().AbsPath("/apis", kubevirtv1.GroupVersion.Group, kubevirtv1.GroupVersion.Version).Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return &Error{Kind: ErrKubeVirtAPIMissing, Config: name, Reason: "the API server does not serve kubevirt.io/v1"}
	}
	if err != nil {
		return ClassifyRemoteError(name, err)
	}
	var resources metav1.APIResourceList
	if err := json.Unmarshal(raw, &resources); err != nil {
		return &Error{Kind: ErrClusterUnreachable, Config: name, Reason: "the kubevirt.io/v1 discovery document does not decode", cause: err}
	}
	if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "virtualmachines" }) {
		return &Error{Kind: ErrKubeVirtAPIMissing, Config: name, Reason: "kubevirt.io/v1 is served without virtualmachines"}
	}
	return nil
}

// HealthCheck validates the connection of every KubevirtConfig on the
// supervisor, all at once, and returns the failures by config name. When
// the configs cannot be listed it checks the cached ones and reports the
// listing error under SupervisorHealthKey; when they can, cached clients
// of configs that no longer exist are dropped.
func (m *KubevirtClientManager) HealthCheck(ctx context.Context) map[string]error {
	failures := map[string]error{}
	var toCheck []string
	configs, err := m.ListKubevirtConfigs(ctx)
	if err != nil {
		failures[SupervisorHealthKey] = err
		m.mu.RLock()
		for name := range m.entries {
			toCheck = append(toCheck, name)
		}
		m.mu.RUnlock()
	} else {
		for _, c := range configs {
			toCheck = append(toCheck, c.Name)
		}
		m.dropAllExcept(toCheck)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range toCheck {
		wg.Go(func() {
			if err := m.ValidateConnection(ctx, name); err != nil {
				mu.Lock()
				failures[name] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failures
}

// dropAllExcept drops the cached clients of configs not in keep.
func (m *KubevirtClientManager) dropAllExcept(keep []string) {
	var dropped []string
	m.mu.Lock()
	for name := range m.entries {
		if !slices.Contains(keep, name) {
			delete(m.entries, name)
			m.gens[name]++
			dropped = append(dropped, name)
		}
	}
	m.mu.Unlock()
	for _, name := range dropped {
		m.opts.log.Info("dropped client of deleted KubevirtConfig", "kubevirtConfig", name)
	}
}
