package kubevirtsim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Target is one API server a Fleet simulates KubeVirt on.
type Target struct {
	// Name identifies the cluster in logs and errors; it must be unique
	// within a Fleet.
	Name string
	// Client's scheme must know kubevirt.io/v1 (internal/scheme does).
	Client client.Client
}

// Fleet is one Simulator per cluster, each with its own address pool, so
// that a VM's address is unique across clusters and tells which cluster it
// runs on.
type Fleet struct {
	sims  []*Simulator
	pools map[string]netip.Prefix
}

// NewFleet builds a Simulator for every target with opts, except that Name
// is the target's and AddressPool is the first target's pool: target i
// gets the i-th block of the same size from there (10.100.0.0/16,
// 10.101.0.0/16, ... for the default pool). Every option is checked before
// anything runs.
func NewFleet(targets []Target, opts Options) (*Fleet, error) {
	if len(targets) == 0 {
		return nil, errors.New("kubevirtsim: a fleet needs at least one cluster")
	}
	base, err := netip.ParsePrefix(cmp.Or(opts.AddressPool, DefaultAddressPool))
	if err != nil {
		return nil, fmt.Errorf("kubevirtsim: Options.AddressPool: %w", err)
	}
	f := &Fleet{pools: make(map[string]netip.Prefix, len(targets))}
	for i, t := range targets {
		if _, dup := f.pools[t.Name]; dup {
			return nil, fmt.Errorf("kubevirtsim: cluster name %q appears twice in the fleet", t.Name)
		}
		pool, err := nthBlock(base, i)
		if err != nil {
			return nil, fmt.Errorf("kubevirtsim: address pool of cluster %s: %w", t.Name, err)
		}
		o := opts
		o.Name, o.AddressPool = t.Name, pool.String()
		sim, err := New(t.Client, o)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", t.Name, err)
		}
		f.pools[t.Name] = pool
		f.sims = append(f.sims, sim)
	}
	return f, nil
}

// AddressPool returns the pool of the named cluster; the zero Prefix (not
// IsValid) for a name that is not in the fleet.
func (f *Fleet) AddressPool(cluster string) netip.Prefix { return f.pools[cluster] }

// Run runs every simulator until ctx ends, then returns nil. The first
// simulator to fail (an API server without the KubeVirt API) stops the
// others, and Run returns its error once they have all returned.
func (f *Fleet) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, sim := range f.sims {
		g.Go(func() error { return sim.Run(gctx) })
	}
	return g.Wait()
}

// Start runs the fleet in the background until ctx ends or stop is called,
// for callers that have nothing else to wait on (test suites). stop ends
// the run, waits for every simulator and returns Run's result; calling it
// again returns the same.
func (f *Fleet) Start(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	return sync.OnceValue(func() error {
		cancel()
		return <-done
	})
}

// nthBlock is the n-th prefix of base's size counting from base: base
// itself for 0. It fails when the block would leave the address space.
func nthBlock(base netip.Prefix, n int) (netip.Prefix, error) {
	base = base.Masked()
	raw := base.Addr().AsSlice()
	v := new(big.Int).SetBytes(raw)
	v.Add(v, new(big.Int).Lsh(big.NewInt(int64(n)), uint(base.Addr().BitLen()-base.Bits())))
	if v.BitLen() > len(raw)*8 {
		return netip.Prefix{}, fmt.Errorf("block %d after %s is beyond the address space", n, base)
	}
	addr, _ := netip.AddrFromSlice(v.FillBytes(make([]byte, len(raw))))
	return netip.PrefixFrom(addr, base.Bits()), nil
}
