package childproc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailKeepsTheEnd(t *testing.T) {
	w := &Tail{Max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		assert.Equal(t, len(s), n)
	}
	assert.Equal(t, "defgh", w.String())
}
