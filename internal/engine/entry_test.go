package engine

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every key length a node keeps (inline up to 48 bytes, then in a string of
// its own) reads back whole, matches itself, and matches no key that
// differs in one byte or in length: keyEqual's word compares with an
// overlapping last word must never turn a miss into a wrong hit.
func TestNodeKeys(t *testing.T) {
	for kl := 1; kl <= 80; kl++ {
		key := make([]byte, kl)
		for i := range key {
			key[i] = byte(i*7 + kl)
		}
		n := NewNode(string(key), kl)
		clear(key) // the node holds its own copy
		runtime.GC()
		require.Equal(t, string(makeKey(kl)), KeyOf(n), "keyOf, %d bytes", kl)
		assert.Equal(t, kl, n.Value.Value(), "value, %d bytes", kl)
		assert.True(t, keyEqual(n, makeKey(kl)), "%d bytes: equal", kl)
		for i := range kl {
			for _, flip := range []byte{1, 0x80} {
				k := makeKey(kl)
				k[i] ^= flip
				assert.False(t, keyEqual(n, k), "%d bytes, byte %d ^ %#x", kl, i, flip)
			}
		}
		assert.False(t, keyEqual(n, makeKey(kl)[:kl-1]), "%d bytes: a prefix", kl)
		assert.False(t, keyEqual(n, append(makeKey(kl), 0)), "%d bytes: longer by a zero byte", kl)
		assert.False(t, keyEqual(tombstone, makeKey(kl)), "the tombstone")
	}
	assert.Equal(t, "", KeyOf(tombstone))
}

func makeKey(kl int) []byte {
	k := make([]byte, kl)
	for i := range k {
		k[i] = byte(i*7 + kl)
	}
	return k
}

// A node and its key are one allocation, and an entry with a TTL keeps its
// value in its extra.
func TestNodeLayout(t *testing.T) {
	assert.Equal(t, uintptr(48), unsafe.Sizeof(Node{}))
	for _, kl := range []int{8, 16, 17, 32, 33, 48, 49} {
		t.Run(fmt.Sprint(kl), func(t *testing.T) {
			key := string(makeKey(kl))
			got := testing.AllocsPerRun(10, func() { _ = NewNode(key, nil) })
			assert.Equal(t, 1.0, got, "one allocation")
		})
	}
	n := NewNode("0123456789abcdef", "v")
	assert.Nil(t, n.Value.X())
	assert.Equal(t, int64(0), n.Value.Expires())
	ext(n).Expires = 41
	assert.Equal(t, "v", n.Value.Value())
	assert.Equal(t, int64(41), n.Value.Expires())
	fx := &FreshX{}
	m := NewNode("0123456789abcdef", "w")
	setExt(m, &fx.Extra)
	assert.Equal(t, "w", m.Value.Value())
	assert.Same(t, fx, FreshOf(m))
}
