// Package freeport finds a loopback port for a server about to start.
package freeport

import (
	"fmt"
	"net"
)

// Address returns a 127.0.0.1:port address that nothing listens on right
// now. The port is released before returning, so that the server can bind
// it; another process could take it in between, which on a developer's or
// a CI machine is rare enough to accept.
func Address() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("releasing %s: %w", addr, err)
	}
	return addr, nil
}
