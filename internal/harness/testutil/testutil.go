package testutil

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/machineflow/machineflow/internal/harness/freeport"
)

// FreeAddress is freeport.Address for a test: it fails the test instead
// of returning an error.
func FreeAddress(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Address()
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return addr
}

// SyncBuffer is a bytes.Buffer that may be written (as a child process's
// Stdout or Stderr) and read at the same time. The zero value is empty and
// ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// JSONLines decodes text as one JSON object a line, the shape of a JSON
// log; blank lines are skipped and a line that is not an object fails the
// test, naming it.
func JSONLines(t testing.TB, text string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("testutil: log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// BlackHole listens on a loopback port, accepts TCP connections and never
// answers on them: a cluster that is up at the network level and hangs,
// the case that only a timeout ends. It returns the https:// URL of the
// listener and closes the listener and every connection when the test ends.
func BlackHole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: black hole: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "https://" + l.Addr().String()
}
