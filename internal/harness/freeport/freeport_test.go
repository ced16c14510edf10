package freeport

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAddressIsFreeLoopback(t *testing.T) {
	addr, err := Address()
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.NotEqual(t, "0", port)

	// Released: a server can bind it.
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, l.Close())
}
