package memo

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
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
		n := newNode(string(key), kl)
		clear(key) // the node holds its own copy
		runtime.GC()
		require.Equal(t, string(makeKey(kl)), keyOf(n), "keyOf, %d bytes", kl)
		assert.Equal(t, kl, n.Value.value(), "value, %d bytes", kl)
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
	assert.Equal(t, "", keyOf(tombstone))
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
	assert.Equal(t, uintptr(48), unsafe.Sizeof(node{}))
	for _, kl := range []int{8, 16, 17, 32, 33, 48, 49} {
		t.Run(fmt.Sprint(kl), func(t *testing.T) {
			key := string(makeKey(kl))
			got := testing.AllocsPerRun(10, func() { _ = newNode(key, nil) })
			assert.Equal(t, 1.0, got, "one allocation")
		})
	}
	n := newNode("0123456789abcdef", "v")
	assert.Nil(t, n.Value.x())
	assert.Equal(t, int64(0), n.Value.expires())
	ext(n).expires = 41
	assert.Equal(t, "v", n.Value.value())
	assert.Equal(t, int64(41), n.Value.expires())
	fx := &freshX{}
	m := newNode("0123456789abcdef", "w")
	setExt(m, &fx.extra)
	assert.Equal(t, "w", m.Value.value())
	assert.Same(t, fx, freshOf(m))
}

// hashSeeded's unrolled 16-byte case gives the loop's hash: W-TinyLFU's
// decisions, pinned by the replay tests, depend on it.
func TestHashSeeded16(t *testing.T) {
	loop := func(seed uint64, k []byte) uint64 {
		h := seed ^ uint64(len(k))*0x9e3779b97f4a7c15
		for len(k) >= 8 {
			h = mix(h^binary.LittleEndian.Uint64(k), 0xbf58476d1ce4e5b9)
			k = k[8:]
		}
		if len(k) > 0 {
			var t uint64
			for i, b := range k {
				t |= uint64(b) << (8 * i)
			}
			h = mix(h^t, 0x94d049bb133111eb)
		}
		return mix(h, 0x2545f4914f6cdd1d)
	}
	for kl := 1; kl <= 40; kl++ {
		for _, seed := range []uint64{0, 0x9e3779b97f4a7c15, 12345} {
			k := makeKey(kl)
			assert.Equal(t, loop(seed, k), hashSeeded(seed, k), "%d bytes, seed %d", kl, seed)
		}
	}
}

// TestWTinyLFURecordsHitsFromHalfFull checks that a W-TinyLFU cache passes
// hits to its policy only once it has been half full (as Caffeine and
// otter start their sketch), that the hits before still count in Stats,
// and that LRU records from the first hit.
func TestWTinyLFURecordsHitsFromHalfFull(t *testing.T) {
	c, err := New(WithMaxSize(100), WithPolicy(policies.WTinyLFU))
	require.NoError(t, err)
	for k := range 49 {
		c.Set(k, k)
	}
	for range 3 {
		for k := range 49 {
			_, err := c.Get(k)
			require.NoError(t, err)
		}
	}
	assert.False(t, c.reads.recording(), "not recording below half full")
	assert.Zero(t, c.reads.first.Load().n, "no use recorded")
	c.Set(49, 49)
	assert.True(t, c.reads.recording(), "recording from half full")
	_, err = c.Get(1)
	require.NoError(t, err)
	assert.Equal(t, 1, c.reads.first.Load().n, "the use is recorded")
	assert.Equal(t, uint64(3*49+1), c.Stats().Hits, "every hit counts")
	c.Clear()
	assert.False(t, c.reads.recording(), "cleared, it starts over as a new cache")

	lru, err := New(WithMaxSize(100), WithPolicy(policies.LRU))
	require.NoError(t, err)
	lru.Set(1, 1)
	_, err = lru.Get(1)
	require.NoError(t, err)
	assert.Equal(t, 1, lru.reads.first.Load().n, "LRU records from the first hit")
}

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
			assert.Equal(t, hashKey(k), hashFidString(w.fid, s), "len %d", len(s))
		}
	}
	for _, s := range strs {
		assert.Equal(t, len(s)+1000*int(s[0]), f(s), "len %d", len(s))
		assert.Equal(t, -1, g(s), "another function's entry, len %d", len(s))
	}
	require.Equal(t, len(strs), execs)
	for _, s := range strs {
		assert.Equal(t, len(s)+1000*int(s[0]), f(s), "a hit, len %d", len(s))
		v, ok := w.c.lookupString(w.fid, s+"x", hashFidString(w.fid, s+"x"))
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

// TestFlushKeepsUndrainedHits checks that flush (a tier's remote Clear,
// which keeps the statistics) keeps the hits still counted in the read
// stripes: a W-TinyLFU cache below half full never drains them on hits.
func TestFlushKeepsUndrainedHits(t *testing.T) {
	for _, k := range []policies.Kind{policies.WTinyLFU, policies.LRU, policies.LFU} {
		c := MustNew(WithMaxSize(1000), WithPolicy(k))
		c.Set(1, 1)
		for range 1000 {
			_, err := c.Get(1)
			require.NoError(t, err)
		}
		c.flush()
		assert.Equal(t, uint64(1000), c.Stats().Hits, "%v", k)
		assert.Zero(t, c.Len())
	}
}

// TestWTinyLFUClearReplaysAsNew checks that a cleared W-TinyLFU cache
// replays a trace exactly as a new one does (its recording, sketch, window,
// simulations and history start over).
func TestWTinyLFUClearReplaysAsNew(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	keys := make([]int, 60000)
	for i := range keys {
		keys[i] = int(r.ExpFloat64() * 300)
	}
	replay := func(c *Cache) uint64 {
		for _, k := range keys {
			if _, err := c.Get(k); err != nil {
				c.Set(k, k)
			}
		}
		return c.Stats().Hits
	}
	for _, size := range []int{500, 5000} {
		fresh := replay(MustNew(WithMaxSize(size)))
		c := MustNew(WithMaxSize(size))
		replay(c)
		c.Clear()
		assert.Equal(t, fresh, replay(c), "size %d", size)
	}
}

// FuzzStringKeys: typed functions of one string argument (the fast path
// under 128 bytes, the general one above) return each string's own result,
// never another's, in either order of first call, and Invalidate removes
// exactly the entry asked for.
func FuzzStringKeys(f *testing.F) {
	f.Add("a", "b")
	f.Add("", "\x00")
	f.Add("héllo", "héllo\x00")
	f.Add(strings.Repeat("x", 127), strings.Repeat("x", 128))
	f.Add("\x07abcdefg", "abcdefg\x07")
	f.Fuzz(func(t *testing.T, a, b string) {
		g := Func(func(s string) string { return "r:" + s })
		ctx := FuncCtx(func(_ context.Context, s string) (string, error) { return "c:" + s, nil })
		for range 2 {
			for _, s := range []string{a, b} {
				if got := g(s); got != "r:"+s {
					t.Fatalf("g(%q) = %q", s, got)
				}
				if got, _ := ctx(context.Background(), s); got != "c:"+s {
					t.Fatalf("ctx(%q) = %q", s, got)
				}
			}
		}
		if a != b {
			require.True(t, Invalidate(g, a))
			assert.Equal(t, "r:"+b, g(b), "b's entry stays")
			assert.Equal(t, 1, CacheOf(g).Len())
		}
	})
}
