package memo

import (
	"encoding/binary"
	"testing"

	"github.com/memokit/memo/internal/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStringKeyFastPath checks the typed string fast path (index.getString,
// hashFidString) against the key it stands for, at every length it takes
// (0-127: inline keys up to 48 bytes, keys of their own above) and at the
// boundary: hashKey of the made key is the fast path's hash, a lookup finds
// exactly the key, never one that differs in a byte, the length or the
// function, and Invalidate (which makes the key) removes what the fast path
// stored.
func TestStringKeyFastPath(t *testing.T) {
	var execs int
	f := Func(func(s string) int { execs++; return len(s) + 1000*int(s[0]) })
	g := Func(func(s string) int { return -1 })
	w := lookupWrapped(f)
	require.NotNil(t, w)
	strs := []string{}
	for n := 1; n <= 130; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + (i*7+n)%26)
		}
		strs = append(strs, string(b))
		b[n/2] ^= 1 // one byte apart
		strs = append(strs, string(b))
	}
	for _, s := range strs {
		k := binary.LittleEndian.AppendUint64(nil, w.fid)
		k, ok := appendBasic(k, s)
		require.True(t, ok)
		if len(s) < 128 {
			assert.Equal(t, engine.HashKey(k), engine.HashFidString(w.fid, s), "len %d", len(s))
		}
	}
	for _, s := range strs {
		assert.Equal(t, len(s)+1000*int(s[0]), f(s), "len %d", len(s))
		assert.Equal(t, -1, g(s), "another function's entry, len %d", len(s))
	}
	require.Equal(t, len(strs), execs)
	for _, s := range strs {
		assert.Equal(t, len(s)+1000*int(s[0]), f(s), "a hit, len %d", len(s))
		v, ok := w.c.e.LookupString(w.fid, s+"x", engine.HashFidString(w.fid, s+"x"))
		if len(s)+1 < 128 {
			assert.False(t, ok, "a longer key is not found (%v), len %d", v, len(s))
		}
	}
	require.Equal(t, len(strs), execs, "every second call hits")
	for _, s := range strs {
		require.True(t, Invalidate(f, s), "Invalidate finds the fast path's entry, len %d", len(s))
	}
	assert.Zero(t, CacheOf(f).Len(), "every entry of f went")
	assert.Equal(t, len(strs), CacheOf(g).Len(), "g's stay")
}
