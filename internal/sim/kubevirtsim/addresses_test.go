package kubevirtsim

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestAddressPoolSkipsNetworkGatewayAndBroadcastAndKeepsOwnersStable(t *testing.T) {
	p, err := newAddressPool("10.7.0.0/29") // .0 network, .1 gateway, .7 broadcast: .2-.6 usable
	require.NoError(t, err)

	a, err := p.addresses("vm-a", 2)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.7.0.2", "10.7.0.3"), a)

	again, err := p.addresses("vm-a", 2)
	require.NoError(t, err)
	assert.Equal(t, a, again, "an owner keeps its addresses")
	one, err := p.addresses("vm-a", 1)
	require.NoError(t, err)
	assert.Equal(t, a[:1], one, "interface 0 keeps its address when fewer are asked for")

	b, err := p.addresses("vm-b", 3)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.7.0.4", "10.7.0.5", "10.7.0.6"), b)

	_, err = p.addresses("vm-c", 1)
	require.ErrorIs(t, err, errPoolExhausted)
	assert.ErrorContains(t, err, "10.7.0.0/29")
}

func TestAddressPoolDoesNotReuseReleasedAddressesUntilItCycles(t *testing.T) {
	p, err := newAddressPool("10.7.0.0/29")
	require.NoError(t, err)
	first, err := p.addresses("vm-a", 1)
	require.NoError(t, err)
	_, err = p.addresses("vm-b", 1)
	require.NoError(t, err)

	p.releaseExcept(map[string]bool{"vm-b": true})
	var got []netip.Addr
	for _, owner := range []string{"vm-c", "vm-d", "vm-e", "vm-f"} {
		a, err := p.addresses(owner, 1)
		require.NoError(t, err)
		got = append(got, a...)
	}
	assert.Equal(t, addrs("10.7.0.4", "10.7.0.5", "10.7.0.6", "10.7.0.2"), got,
		"the released %s comes back only after the rest of the pool", first[0])
	_, err = p.addresses("vm-g", 1)
	require.ErrorIs(t, err, errPoolExhausted)
}

func TestAddressPoolReserveKeepsRecoveredAddresses(t *testing.T) {
	p, err := newAddressPool("10.7.0.0/24")
	require.NoError(t, err)
	// Out of the pool, the gateway and the network address are ignored.
	p.reserve("vm-a", addrs("10.7.0.2", "192.168.1.5", "10.7.0.1", "10.7.0.0", "10.7.0.255"))
	p.reserve("vm-b", addrs("10.7.0.2", "10.7.0.9")) // .2 belongs to vm-a already

	a, err := p.addresses("vm-a", 1)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.7.0.2"), a)
	b, err := p.addresses("vm-b", 2)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.7.0.9", "10.7.0.3"), b)
	c, err := p.addresses("vm-c", 1)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.7.0.4"), c)
}

func TestAddressPoolIPv6(t *testing.T) {
	p, err := newAddressPool("fd00:10::/64")
	require.NoError(t, err)
	a, err := p.addresses("vm-a", 2)
	require.NoError(t, err)
	assert.Equal(t, addrs("fd00:10::2", "fd00:10::3"), a)
}

func TestAddressPoolRejectsBadPrefixes(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.0.0.0":    `address pool "10.0.0.0"`,
		"not-a-cidr":  `address pool "not-a-cidr"`,
		"10.0.0.0/31": "prefix too small, need at least /30",
		"fd00::/127":  "prefix too small, need at least /126",
	} {
		_, err := newAddressPool(cidr)
		assert.ErrorContains(t, err, want, cidr)
	}
	p, err := newAddressPool("10.0.0.5/30")
	require.NoError(t, err, "host bits are masked off")
	a, err := p.addresses("vm-a", 1)
	require.NoError(t, err)
	assert.Equal(t, addrs("10.0.0.6"), a, "10.0.0.4/30: only .6 is usable")
}

func BenchmarkAddressPoolAllocate(b *testing.B) {
	p, err := newAddressPool("10.0.0.0/8")
	require.NoError(b, err)
	owners := make([]string, 1024)
	for i := range owners {
		owners[i] = "vm-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		owner := owners[i%len(owners)]
		if _, err := p.addresses(owner, 2); err != nil {
			b.Fatal(err)
		}
		if i%len(owners) == len(owners)-1 {
			p.releaseExcept(nil) // VMs come and go
		}
		i++
	}
}
