package kubevirtsim

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// errPoolExhausted is returned when every usable address is taken.
var errPoolExhausted = errors.New("address pool exhausted")

// addressPool hands out addresses from one prefix. An owner (a VM's UID)
// keeps its addresses until released, and the cursor moves on after every
// allocation, so a released address is not handed out again until the rest
// of the pool has been used: a test never sees a dead VM's address on a new
// one while a stale reference might still exist. The simulator's single loop
// is its only user, so it has no lock.
type addressPool struct {
	prefix   netip.Prefix
	capacity *big.Int // usable addresses
	cursor   netip.Addr
	byOwner  map[string][]netip.Addr
	owner    map[netip.Addr]string
}

func newAddressPool(cidr string) (*addressPool, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("address pool %q: %w", cidr, err)
	}
	p = p.Masked()
	// Network address, gateway (first host) and broadcast (last) are skipped.
	hostBits := p.Addr().BitLen() - p.Bits()
	capacity := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(hostBits)), big.NewInt(3))
	if capacity.Sign() <= 0 {
		return nil, fmt.Errorf("address pool %q: prefix too small, need at least /%d", cidr, p.Addr().BitLen()-2)
	}
	return &addressPool{
		prefix:   p,
		capacity: capacity,
		cursor:   p.Addr().Next(), // the gateway: the first allocation moves past it
		byOwner:  map[string][]netip.Addr{},
		owner:    map[netip.Addr]string{},
	}, nil
}

// addresses returns n addresses for owner, allocating any it does not hold
// yet. Earlier addresses keep their positions, so interface i keeps its
// address while the owner lives.
func (p *addressPool) addresses(owner string, n int) ([]netip.Addr, error) {
	held := p.byOwner[owner]
	for len(held) < n {
		a, err := p.next()
		if err != nil {
			return nil, fmt.Errorf("%w: %s (%s addresses)", err, p.prefix, p.capacity)
		}
		p.owner[a] = owner
		held = append(held, a)
		p.byOwner[owner] = held
	}
	return held[:n:n], nil
}

// next finds the next free address after the cursor. With k addresses in
// use, a free one is at most k+1 steps away, so the loop is bounded even for
// huge IPv6 prefixes.
func (p *addressPool) next() (netip.Addr, error) {
	if big.NewInt(int64(len(p.owner))).Cmp(p.capacity) >= 0 {
		return netip.Addr{}, errPoolExhausted
	}
	for {
		a := p.cursor.Next()
		if !p.usable(a) {
			a = p.prefix.Addr().Next().Next() // wrap to the first host after the gateway
		}
		p.cursor = a
		if _, taken := p.owner[a]; !taken {
			return a, nil
		}
	}
}

func (p *addressPool) usable(a netip.Addr) bool {
	// The last address of the prefix (broadcast) is the only one whose
	// successor falls outside it.
	return a.IsValid() && p.prefix.Contains(a) && p.prefix.Contains(a.Next())
}

// reserve records addresses found on an existing VMI, so a restarted
// simulator keeps them with their owner. Addresses outside the pool, or
// already held by another owner, are ignored.
func (p *addressPool) reserve(owner string, addrs []netip.Addr) {
	if len(p.byOwner[owner]) > 0 {
		return
	}
	var held []netip.Addr
	for _, a := range addrs {
		if !p.usable(a) || a == p.prefix.Addr() || a == p.prefix.Addr().Next() {
			continue
		}
		if _, taken := p.owner[a]; taken {
			continue
		}
		p.owner[a] = owner
		held = append(held, a)
	}
	if len(held) > 0 {
		p.byOwner[owner] = held
	}
}

// releaseExcept frees the addresses of every owner not in live.
func (p *addressPool) releaseExcept(live map[string]bool) {
	for owner, addrs := range p.byOwner {
		if live[owner] {
			continue
		}
		for _, a := range addrs {
			delete(p.owner, a)
		}
		delete(p.byOwner, owner)
	}
}
