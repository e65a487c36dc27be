package memo

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/memokit/memo/internal/engine"
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
		n := engine.NewNode(string(key), kl)
		clear(key) // the node holds its own copy
		runtime.GC()
		require.Equal(t, string(makeKey(kl)), engine.KeyOf(n), "keyOf, %d bytes", kl)
		assert.Equal(t, kl, n.Value.Value(), "value, %d bytes", kl)
		assert.True(t, engine.KeyEqual(n, makeKey(kl)), "%d bytes: equal", kl)
		for i := range kl {
			for _, flip := range []byte{1, 0x80} {
				k := makeKey(kl)
				k[i] ^= flip
				assert.False(t, engine.KeyEqual(n, k), "%d bytes, byte %d ^ %#x", kl, i, flip)
			}
		}
		assert.False(t, engine.KeyEqual(n, makeKey(kl)[:kl-1]), "%d bytes: a prefix", kl)
		assert.False(t, engine.KeyEqual(n, append(makeKey(kl), 0)), "%d bytes: longer by a zero byte", kl)
		assert.False(t, engine.KeyEqual(engine.Tombstone, makeKey(kl)), "the tombstone")
	}
	assert.Equal(t, "", engine.KeyOf(engine.Tombstone))
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
	assert.Equal(t, uintptr(48), unsafe.Sizeof(engine.Node{}))
	for _, kl := range []int{8, 16, 17, 32, 33, 48, 49} {
		t.Run(fmt.Sprint(kl), func(t *testing.T) {
			key := string(makeKey(kl))
			got := testing.AllocsPerRun(10, func() { _ = engine.NewNode(key, nil) })
			assert.Equal(t, 1.0, got, "one allocation")
		})
	}
	n := engine.NewNode("0123456789abcdef", "v")
	assert.Nil(t, n.Value.X())
	assert.Equal(t, int64(0), n.Value.Expires())
	engine.Ext(n).Expires = 41
	assert.Equal(t, "v", n.Value.Value())
	assert.Equal(t, int64(41), n.Value.Expires())
	fx := &engine.FreshX{}
	m := engine.NewNode("0123456789abcdef", "w")
	engine.SetExt(m, &fx.Extra)
	assert.Equal(t, "w", m.Value.Value())
	assert.Same(t, fx, engine.FreshOf(m))
}

type r2Obj struct {
	_ [8]uint64
	_ *int
}

// TestReplacedEntryDoesNotPinKey: a key's object must not be kept
// alive by the cache's bookkeeping (SPEC: "A pointer in a key must not keep
// its object alive"). When Set replaces an entry whose value referred to
// the key object, the old node is out of the cache; but the old node's
// cleanup is still registered, and since newNode its key string points
// into the old node's allocation: the cleanup's arg then reaches the old
// value, hence the key object, and the cleanup can never run (see
// runtime.AddCleanup: "if ptr is reachable from cleanup or arg, ptr will
// never be collected").
func TestReplacedEntryDoesNotPinKey(t *testing.T) {
	c := MustNew(WithMaxSize(100))
	collected := make(chan struct{})
	func() {
		p := &r2Obj{}
		runtime.AddCleanup(p, func(ch chan struct{}) { close(ch) }, collected)
		c.Set(p, p) // the first value refers to the key
		c.Set(p, 1) // replaced: the cache no longer refers to p
	}()
	if !dtGCUntil(func() bool {
		select {
		case <-collected:
			return true
		default:
			return false
		}
	}) {
		t.Fatalf("the key object is never collected: the replaced node, pinned by its cleanup's key, keeps it alive; Len=%d", c.Len())
	}
	// Then the cache's own cleanup drops the entry.
	dtGCUntil(func() bool { return c.Len() == 0 })
	assert.Equal(t, 0, c.Len())
}
