package testutil

import (
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreeAddressCanBeListenedOn(t *testing.T) {
	addr := FreeAddress(t)
	host, _, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "nothing holds the address after FreeAddress returns")
	require.NoError(t, ln.Close())
}

func TestSyncBufferCapturesAChildProcessWhileRead(t *testing.T) {
	var out SyncBuffer
	cmd := exec.Command("sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2")
	cmd.Stdout, cmd.Stderr = &out, &out
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() { // reads while the process's output is copied in
		for {
			select {
			case <-stop:
				return
			default:
				_ = out.String()
			}
		}
	})
	err := cmd.Run()
	close(stop)
	reader.Wait()
	require.NoError(t, err)
	assert.Equal(t, "line 1\nline 2\nline 3\nline 4\nline 5\noops\n", out.String())
}

func TestSyncBufferConcurrentWriters(t *testing.T) {
	var out SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = out.Write([]byte("x\n"))
				_ = out.String()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 800, strings.Count(out.String(), "x\n"))
}

func TestJSONLines(t *testing.T) {
	lines := JSONLines(t, "{\"msg\":\"a\",\"n\":1}\n\n  \n{\"msg\":\"b\"}\n")
	assert.Equal(t, []map[string]any{{"msg": "a", "n": float64(1)}, {"msg": "b"}}, lines)
	assert.Empty(t, JSONLines(t, ""))
}

func TestBlackHoleAcceptsAndNeverAnswers(t *testing.T) {
	url := BlackHole(t)
	require.True(t, strings.HasPrefix(url, "https://127.0.0.1:"), url)
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "https://"))
	require.NoError(t, err, "the black hole accepts connections")
	defer conn.Close()
	_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = conn.Read(make([]byte, 1))
	var netErr net.Error
	require.ErrorAs(t, err, &netErr, "nothing comes back: the read ends at its deadline")
	assert.True(t, netErr.Timeout(), "%v", err)
}
