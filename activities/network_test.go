package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGenerateMAC(t *testing.T) {
	a := &Activities{settings: DefaultSettings()}
	a.settings.MACSet = "AB"
	seen := map[string]bool{}
	for range 50 {
		mac, err := a.generateMAC()
		require.NoError(t, err)
		require.Regexp(t, `^02:ab:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`, mac)
		seen[mac] = true
	}
	require.Greater(t, len(seen), 45, "MACs must be random")
}
