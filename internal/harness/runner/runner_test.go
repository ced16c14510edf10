package runner

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/internal/harness/devtemporal"
	"github.com/machineflow/machineflow/internal/harness/freeport"
)

// A sandbox that cannot start stops the run: Run fails naming it, with its
// exit status, and Temporal, already running, is stopped.
func TestRunStopsEverythingWhenTheSandboxFails(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the Temporal dev server (bin/temporal); skipped with -short")
	}
	cli, err := devtemporal.CLIPath()
	require.NoError(t, err)
	bin := t.TempDir()
	script := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	}
	script("sandbox", `echo "etcd: cannot start" >&2; exit 4`)
	for _, name := range []string{"worker", "controller", "starter"} {
		script(name, `echo "must not run" >&2; exit 1`)
	}

	var out bytes.Buffer
	opts := DefaultOptions()
	opts.Dir, opts.BinDir, opts.TemporalCLI = t.TempDir(), bin, cli
	opts.TemporalPort, opts.UIPort = freePort(t), freePort(t)
	opts.Headless = true
	opts.StopGrace = 20 * time.Second
	opts.Out = &out

	err = Run(t.Context(), opts)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "waiting for the sandbox's API servers: sandbox exited first")
	assert.Contains(t, err.Error(), "sandbox exited: exit status 4")
	assert.Contains(t, out.String(), "sandbox    | etcd: cannot start")
	assert.NotContains(t, out.String(), "must not run")
	assert.NotContains(t, out.String(), "machineflow is running")

	m := regexp.MustCompile(`msg=started process="temporal dev server" pid=(\d+)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	pid, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "Temporal was stopped")
}

func freePort(t *testing.T) int {
	t.Helper()
	addr, err := freeport.Address()
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return n
}
