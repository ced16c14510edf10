package kubevirtsim

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clienttesting "k8s.io/client-go/testing"
	kubevirtv1 "kubevirt.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/machineflow/machineflow/internal/scheme"
)

// fakeCluster is an in-memory KubeVirt API. A plain object tracker: the
// default one's managed-fields converter panics on KubeVirt's unsigned
// integers.
func fakeCluster(t *testing.T, funcs interceptor.Funcs) client.Client {
	t.Helper()
	s, err := scheme.New()
	require.NoError(t, err)
	return fake.NewClientBuilder().WithScheme(s).
		WithObjectTracker(clienttesting.NewObjectTracker(s, serializer.NewCodecFactory(s).UniversalDecoder())).
		WithStatusSubresource(&kubevirtv1.VirtualMachine{}).
		WithInterceptorFuncs(funcs).
		Build()
}

func TestFleetRunsOneSimulatorPerClusterWithItsOwnPool(t *testing.T) {
	targets := []Target{{Name: "a", Client: fakeCluster(t, interceptor.Funcs{})}, {Name: "b", Client: fakeCluster(t, interceptor.Funcs{})}}
	f, err := NewFleet(targets, Options{AddressPool: "10.1.0.0/16", BootDelay: time.Millisecond, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, netip.MustParsePrefix("10.1.0.0/16"), f.AddressPool("a"))
	assert.Equal(t, netip.MustParsePrefix("10.2.0.0/16"), f.AddressPool("b"))
	assert.False(t, f.AddressPool("c").IsValid(), "no pool for a cluster outside the fleet")

	stop := f.Start(t.Context())
	for _, target := range targets {
		vm := newVM("default", "vm-"+target.Name, nil)
		require.NoError(t, target.Client.Create(t.Context(), vm))
		_, vmi := waitFor(t, target.Client, vm, "Running", running)
		addr := netip.MustParseAddr(vmi.Status.Interfaces[0].IP)
		assert.True(t, f.AddressPool(target.Name).Contains(addr), "%s: address %s from the cluster's pool %s", target.Name, addr, f.AddressPool(target.Name))
	}
	require.NoError(t, stop(), "Run returns nil when its context ends")
	require.NoError(t, stop(), "a second stop returns the same")
}

func TestFleetStopsAtTheFirstFailure(t *testing.T) {
	noKubevirt := interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return &meta.NoKindMatchError{GroupKind: kubevirtv1.VirtualMachineInstanceGroupVersionKind.GroupKind()}
	}}
	f, err := NewFleet([]Target{
		{Name: "healthy", Client: fakeCluster(t, interceptor.Funcs{})},
		{Name: "bare", Client: fakeCluster(t, noKubevirt)},
	}, Options{PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)

	done := make(chan error, 1)
	// The context never ends: only the failure can stop the healthy one.
	go func() { done <- f.Run(context.Background()) }()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "kubevirtsim bare: the API server does not serve kubevirt.io/v1")
		var noMatch *meta.NoKindMatchError
		assert.True(t, errors.As(err, &noMatch), "the cause is kept: %v", err)
	case <-time.After(wait):
		t.Fatal("Run did not return after a simulator failed")
	}
}

func TestNewFleetRejectsBadInput(t *testing.T) {
	c := fakeCluster(t, interceptor.Funcs{})
	for name, tc := range map[string]struct {
		targets []Target
		opts    Options
		want    string
	}{
		"no clusters":    {nil, Options{}, "a fleet needs at least one cluster"},
		"duplicate name": {[]Target{{"a", c}, {"a", c}}, Options{}, `cluster name "a" appears twice`},
		"nil client":     {[]Target{{"a", c}, {"b", nil}}, Options{}, "cluster b: kubevirtsim: nil client"},
		"bad option":     {[]Target{{"a", c}}, Options{BootDelay: -1}, "cluster a: kubevirtsim: Options.BootDelay is negative"},
		"bad pool":       {[]Target{{"a", c}}, Options{AddressPool: "10.1.0.0"}, "kubevirtsim: Options.AddressPool"},
		"pool overflow": {[]Target{{"a", c}, {"b", c}}, Options{AddressPool: "255.255.0.0/16"},
			"address pool of cluster b: block 1 after 255.255.0.0/16 is beyond the address space"},
		"scheme without KubeVirt": {[]Target{{"a", fake.NewClientBuilder().WithScheme(runtime.NewScheme()).Build()}}, Options{},
			"cluster a: kubevirtsim: the client's scheme does not know kubevirt.io/v1"},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := NewFleet(tc.targets, tc.opts)
			require.ErrorContains(t, err, tc.want)
			assert.Nil(t, f)
		})
	}
}

func TestNthBlock(t *testing.T) {
	for _, tc := range []struct {
		base string
		n    int
		want string
	}{
		{"10.100.0.0/16", 0, "10.100.0.0/16"},
		{"10.100.7.1/16", 2, "10.102.0.0/16"},
		{"10.255.0.0/16", 1, "11.0.0.0/16"},
		{"192.168.0.0/24", 3, "192.168.3.0/24"},
		{"fd00::/64", 1, "fd00:0:0:1::/64"},
	} {
		got, err := nthBlock(netip.MustParsePrefix(tc.base), tc.n)
		require.NoError(t, err, tc.base)
		assert.Equal(t, tc.want, got.String(), "block %d after %s", tc.n, tc.base)
	}
}
