package testenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Stop stops this cluster's API server and etcd, as a whole cluster going
// down would, and leaves the rest of the Env running. Start brings it
// back. Env.Stop still stops and cleans up a cluster stopped this way.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("testenv: cluster %s is stopped already", c.Name)
	}
	c.stopped = true
	// KubeVirt's webhooks first, as their API server's going takes them
	// down too.
	if c.admission != nil {
		if err := c.admission.Stop(); err != nil {
			return fmt.Errorf("testenv: cluster %s: %w", c.Name, err)
		}
	}
	cp := c.env.ControlPlane
	// The API server first: etcd going away under it is a different fault.
	if err := cp.APIServer.Stop(); err != nil {
		return fmt.Errorf("testenv: stopping the API server of cluster %s: %w", c.Name, err)
	}
	if err := cp.Etcd.Stop(); err != nil {
		return fmt.Errorf("testenv: stopping etcd of cluster %s: %w", c.Name, err)
	}
	return nil
}

// Start starts a cluster that Stop stopped, on the same etcd data, ports,
// serving certificate and client CA: Config, Client, Kubeconfig and every
// kubeconfig from AddUser work again, as after a real cluster's restart.
// It returns once the cluster serves its CRDs again. A port taken by
// someone else while the cluster was down makes it fail, as does a
// cluster that Stop did not stop.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		return fmt.Errorf("testenv: cluster %s is not stopped", c.Name)
	}
	cp := c.env.ControlPlane
	if err := cp.Etcd.Start(); err != nil {
		return fmt.Errorf("testenv: starting etcd of cluster %s: %w", c.Name, err)
	}
	cp.APIServer.EtcdURL = cp.Etcd.URL
	if err := cp.APIServer.Start(); err != nil {
		return errors.Join(fmt.Errorf("testenv: starting the API server of cluster %s: %w", c.Name, err), cp.Etcd.Stop())
	}
	c.stopped = false
	// Healthy is not serving yet: custom resources come back once the
	// API server has read the CRDs from etcd again.
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		missing, err := c.unservedCRDs()
		if err == nil && missing == "" {
			if c.admission == nil {
				return nil
			}
			if err := c.admission.Restart(ctx); err != nil {
				return fmt.Errorf("testenv: cluster %s: %w", c.Name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: cluster %s restarted but does not serve %s (%v): %w", c.Name, missing, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unservedCRDs names the first CRD version installed at Start that
// discovery does not list, or returns "".
func (c *Cluster) unservedCRDs() (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return "", err
	}
	for _, crd := range c.env.CRDs {
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			gv := crd.Spec.Group + "/" + v.Name
			list, err := dc.ServerResourcesForGroupVersion(gv)
			if err != nil || !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == crd.Spec.Names.Plural }) {
				return gv + "/" + crd.Spec.Names.Plural, err
			}
		}
	}
	return "", nil
}

// AddUser provisions a user of the cluster, authenticated by a client
// certificate of the cluster's CA, in the given groups, and returns its
// kubeconfig. Without "system:masters" the user may do only what RBAC
// bindings grant it, so a test can revoke its access by deleting them, as
// after a credential rotation. The kubeconfig holds a client key: never
// log it.
func (c *Cluster) AddUser(name string, groups ...string) ([]byte, error) {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: adding user %s: %w", c.Name, name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig for user %s: %w", c.Name, name, err)
	}
	return kubeconfig, nil
}
