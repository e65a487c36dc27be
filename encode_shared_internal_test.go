package memo

import (
	"reflect"
	"strings"
	"testing"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Keys of values that share their parts: once a key has passed shareFrom
// bytes, a container met again is copied from where it was first encoded
// (keyState.shared). These tests check that a copy is always the bytes
// the walk would have written, and that what a copy must not stand for (a
// walk that would hit a limit, a CacheKey result) is walked.

// encodeWith returns the encoding of v (an any) and whether it can never
// hit. share is keyState.share: 1 records every container for reuse from
// the first byte, -1 none (every part is walked), 0 as keys do.
func encodeWith(v any, deref bool, share int8) (key string, never bool) {
	s := keys.GetState()
	defer keys.PutState(s)
	s.Deref, s.Share = deref, share
	keys.EncodeInterface(s, reflect.ValueOf(&v).Elem())
	return string(s.Buf), s.Never
}

// requireSameKey checks that copying parts changes nothing, whether keys
// copy as they do or copy every container met again: the bytes of the
// walk that copies nothing, or a key that can never hit either way (whose
// nonces differ).
func requireSameKey(t *testing.T, v any) {
	t.Helper()
	for _, deref := range []bool{false, true} {
		walked, wNever := encodeWith(v, deref, -1)
		for _, share := range []int8{0, 1} {
			copied, cNever := encodeWith(v, deref, share)
			// Not the values nor the keys in the message: they may be
			// cyclic, or megabytes.
			require.Equal(t, wNever, cNever, "deref=%v share=%d: never (%T)", deref, share, v)
			if !wNever && walked != copied {
				require.Failf(t, "keys differ", "deref=%v share=%d: %T: %d bytes walked, %d copying",
					deref, share, v, len(walked), len(copied))
			}
		}
	}
}

// FuzzSharedKeys checks that copying the encoding of a container met
// again gives the bytes walking it gives, on the values FuzzKeys makes
// (pointers into a shared pool, cycles, maps, CacheKeyers, unexported and
// ignored fields), each placed several times at several depths of one
// value, inside a map too.
//
//	go test -run XXX -fuzz=FuzzSharedKeys -fuzztime=1m .
func FuzzSharedKeys(f *testing.F) {
	f.Add([]byte{0, 9, 3, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{4, 1, 12, 2, 7, 1, 7, 2})
	f.Add([]byte{0, 13, 3, 5, 3, 5, 4, 7, 1})
	f.Add([]byte{3, 14, 1, 2, 3, 15, 0, 1, 2, 3, 4})
	f.Add([]byte{0, 16, 1, 16, 2, 17, 3})
	f.Add([]byte("\x00\x0c\x03\x07a\x07b\x07c\x05\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			return
		}
		a := (&fuzzGen{data: data}).value(0)
		requireSameKey(t, a)
		inner := []any{a, []any{a}}
		requireSameKey(t, []any{a, inner, a, inner, map[string]any{"a": a, "i": inner}})
		p := &kPair2{}
		p.L, p.R = &kPair2{}, p.L
		requireSameKey(t, []any{a, p, map[any]any{"p": p, "a": inner}, p})
		// Met first inside a map, whose pairs are then put in order (the
		// bytes move), and again after it.
		requireSameKey(t, []any{map[string]any{"z": inner, "a": a}, inner, a})
	})
}

// kShared is a node of a value that shares its parts, with a payload so
// that a copy of the wrong bytes shows.
type kShared struct {
	V    int
	L, R *kShared
}

// sharedValues returns, for each kind of container, a value of the given
// height whose every level holds the level below twice (x := []any{y, y};
// y := []any{z, z}; ...), and an equal value built as a tree: no part of
// it met twice. leaf gives the payload at each level (i is the height).
func sharedValues(height int, leaf func(i int) any) (shared, tree []any) {
	var slice func(i int, share bool) any
	slice = func(i int, share bool) any {
		if i == 0 {
			return leaf(0)
		}
		if share {
			y := slice(i-1, true)
			return []any{leaf(i), y, y}
		}
		return []any{leaf(i), slice(i-1, false), slice(i-1, false)}
	}
	var mapping func(i int, share bool) any
	mapping = func(i int, share bool) any {
		if i == 0 {
			return leaf(0)
		}
		if share {
			y := mapping(i-1, true)
			return map[string]any{"v": leaf(i), "l": y, "r": y}
		}
		return map[string]any{"v": leaf(i), "l": mapping(i-1, false), "r": mapping(i-1, false)}
	}
	var nodes func(i int, share bool) *kShared
	nodes = func(i int, share bool) *kShared {
		if i == 0 {
			return nil
		}
		n := &kShared{V: i, L: nodes(i-1, share)}
		if share {
			n.R = n.L
		} else {
			n.R = nodes(i-1, false)
		}
		return n
	}
	return []any{slice(height, true), mapping(height, true), nodes(height, true)},
		[]any{slice(height, false), mapping(height, false), nodes(height, false)}
}

// TestKeySharedPartsEqualTree checks that a value that shares its parts,
// with a key past the size from which parts are copied (64 KiB) and within
// the limit (4 MiB), gets the key of the equal tree, which is walked
// node by node; and that one change deep in the tree changes the key.
func TestKeySharedPartsEqualTree(t *testing.T) {
	t.Parallel()
	const height = 14 // 16,384 leaves
	leaf := func(i int) any { return strings.Repeat("x", 20) + string(rune('a'+i)) }
	shared, tree := sharedValues(height, leaf)
	for i := range shared {
		for _, deref := range []bool{false, true} {
			if _, isPtr := shared[i].(*kShared); isPtr && !deref {
				continue // without WithDeref a pointer is keyed by identity
			}
			sk, sNever := encodeWith(shared[i], deref, 0)
			tk, tNever := encodeWith(tree[i], deref, -1)
			require.False(t, sNever, "%T", shared[i])
			require.False(t, tNever, "%T", shared[i])
			require.Greater(t, len(sk), keys.ShareFrom, "%T: parts are copied", shared[i])
			require.Less(t, len(sk), keys.MaxKeyLen, "%T", shared[i])
			assert.Equal(t, tk, sk, "%T deref=%v: a shared value keys as the equal tree", shared[i], deref)
		}
	}
	assert.True(t, MakeHashable(shared[0]) == MakeHashable(tree[0]))
	assert.True(t, MakeHashable(shared[1]) == MakeHashable(tree[1]))
	d := newCompiled(t, []Option{WithDeref()}, anyType)
	assert.Equal(t, d.key(tree[2]), d.key(shared[2]))

	// The last leaf of the tree changed: every copy of its shared twin
	// is of a part that still holds the old leaf, so the keys differ.
	last := tree[0].([]any)
	for range height - 1 {
		last = last[2].([]any)
	}
	last[2] = "changed"
	assert.False(t, MakeHashable(shared[0]) == MakeHashable(tree[0]), "one leaf changed")
	lastNode := tree[2].(*kShared)
	for lastNode.R != nil {
		lastNode = lastNode.R
	}
	lastNode.V = -1
	assert.NotEqual(t, d.key(tree[2]), d.key(shared[2]), "one node changed")
}

// TestKeySharedPartsDepthLimit checks that a part met again deeper than
// where it was first encoded is walked, not copied, when the walk would
// pass the depth limit there: the key then matches nothing, as for the
// equal value without sharing; and that it is copied when the walk would
// stay within the limit.
func TestKeySharedPartsDepthLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", keys.ShareFrom) // the key passes shareFrom within the part
	nest := func(n int, x any) any {
		for range n {
			x = []any{x}
		}
		return x
	}
	// part is maxDepth-20 levels deep. Met first 1 level down, then 15
	// more (within the limit) or 25 more (past it).
	part := func() any { return nest(keys.MaxDepth-20, big) }
	for _, tc := range []struct {
		extra int
		never bool
	}{{15, false}, {25, true}} {
		p := part()
		shared := []any{p, nest(tc.extra, p)}
		tree := []any{part(), nest(tc.extra, part())}
		sk, sNever := encodeWith(shared, false, 0)
		tk, tNever := encodeWith(tree, false, -1)
		assert.Equal(t, tc.never, tNever, "extra %d: the tree", tc.extra)
		assert.Equal(t, tc.never, sNever, "extra %d: the shared value", tc.extra)
		if !tc.never {
			assert.Equal(t, tk, sk, "extra %d", tc.extra)
			assert.True(t, MakeHashable(shared) == MakeHashable(tree), "extra %d", tc.extra)
		} else {
			assert.False(t, MakeHashable(shared) == MakeHashable(shared), "extra %d: matches nothing", tc.extra)
		}
	}
	// The same through pointers, which count containers but not
	// interfaces.
	chain := func(n int) *kNode {
		var x *kNode
		for i := range n {
			x = &kNode{V: i, Next: x}
		}
		return x
	}
	d := newCompiled(t, []Option{WithDeref()}, anyType)
	for _, tc := range []struct {
		extra int
		never bool
	}{{15, false}, {25, true}} {
		p := chain(keys.MaxDepth - 20)
		shared := []any{big, p, nest(tc.extra, p)}
		tree := []any{big, chain(keys.MaxDepth - 20), nest(tc.extra, chain(keys.MaxDepth-20))}
		_, sNever := encodeWith(shared, true, 0)
		_, tNever := encodeWith(tree, true, -1)
		assert.Equal(t, tc.never, tNever, "extra %d: the tree", tc.extra)
		assert.Equal(t, tc.never, sNever, "extra %d: the shared value", tc.extra)
		if !tc.never {
			assert.Equal(t, d.key(tree), d.key(shared), "extra %d", tc.extra)
		}
	}
}

// kOwnKey's CacheKey returns its own type, which is then keyed by its
// structure: at a depth the limit check allows no deeper.
type kOwnKey struct{ N int }

func (k kOwnKey) CacheKey() any { return k }

// kKeyLink is a link of a chain of pointers, each with a CacheKeyer.
type kKeyLink struct {
	Next *kKeyLink
	K    kOwnKey
}

// TestKeySharedPartsDepthLimitChecks checks the depth limit's other two
// checks the same way: interfaces nested in one container (the path does
// not grow), and the check before a CacheKey result, which a chain of
// pointers (WithDeref) puts one level below its last link.
func TestKeySharedPartsDepthLimitChecks(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", keys.ShareFrom)
	boxes := func(n int, x any) any {
		for range n {
			x = rmBox{x}
		}
		return x
	}
	for _, tc := range []struct {
		extra int
		never bool
	}{{15, false}, {25, true}} {
		part := func() any { return []any{boxes(keys.MaxDepth-20, big)} }
		p := part()
		shared := []any{p, boxes(tc.extra, p)}
		tree := []any{part(), boxes(tc.extra, part())}
		sk, sNever := encodeWith(shared, false, 0)
		tk, tNever := encodeWith(tree, false, -1)
		assert.Equal(t, tc.never, tNever, "interfaces, extra %d: the tree", tc.extra)
		assert.Equal(t, tc.never, sNever, "interfaces, extra %d: the shared value", tc.extra)
		if !tc.never {
			assert.Equal(t, tk, sk, "interfaces, extra %d", tc.extra)
		}
	}
	nest := func(n int, x any) any {
		for range n {
			x = []any{x}
		}
		return x
	}
	chain := func(n int) *kKeyLink {
		var x *kKeyLink
		for i := range n {
			x = &kKeyLink{Next: x, K: kOwnKey{i}}
		}
		return x
	}
	// The outer slice, extra slices, then the chain: its last CacheKey is
	// checked at a path of 1+extra+links containers.
	const extra = 5
	for _, tc := range []struct {
		links int
		never bool
	}{{keys.MaxDepth - extra - 2, false}, {keys.MaxDepth - extra - 1, true}} {
		p := chain(tc.links)
		shared := []any{big, p, nest(extra, p)}
		tree := []any{big, chain(tc.links), nest(extra, chain(tc.links))}
		sk, sNever := encodeWith(shared, true, 0)
		tk, tNever := encodeWith(tree, true, -1)
		assert.Equal(t, tc.never, tNever, "CacheKey, %d links: the tree", tc.links)
		assert.Equal(t, tc.never, sNever, "CacheKey, %d links: the shared value", tc.links)
		if !tc.never {
			assert.Equal(t, tk, sk, "CacheKey, %d links", tc.links)
		}
	}
}

// kScratchKeyer returns, from every CacheKey call, the same slice filled
// with its own number: a result at the same address as the last one, as
// an allocation is once the last result has been collected.
type kScratchKeyer struct{ n int }

var kScratch = make([]int, 64)

func (k kScratchKeyer) CacheKey() any {
	for i := range kScratch {
		kScratch[i] = k.n
	}
	return kScratch
}

// TestKeySharedPartsNotCacheKeyResults checks that what a CacheKey returns
// is never copied from an earlier result at the same address: two values
// whose CacheKeys differ get different keys in a key long enough to copy
// parts. kScratchKeyer's results are all at one address.
func TestKeySharedPartsNotCacheKeyResults(t *testing.T) {
	big := strings.Repeat("b", keys.ShareFrom+1)
	a := []any{big, kScratchKeyer{1}, kScratchKeyer{2}}
	b := []any{big, kScratchKeyer{1}, kScratchKeyer{1}}
	assert.False(t, MakeHashable(a) == MakeHashable(b))
	c := newCompiled(t, nil, anyType)
	assert.NotEqual(t, c.key(a), c.key(b))
	requireSameKey(t, a)
}

// TestKeySharedPartsCycles checks that a part whose walk met a container
// above it (a cycle) is walked again where it is met next, not copied:
// from there the cycle closes elsewhere.
func TestKeySharedPartsCycles(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", keys.ShareFrom+1)
	p := []any{big, nil}
	c := []any{p}
	p[1] = c // c → p → c
	requireSameKey(t, []any{c, p, c, p})
	m := map[string]any{"big": big}
	n := map[string]any{"m": m, "big": big}
	m["n"] = n // m → n → m
	requireSameKey(t, []any{m, n, []any{n, m}})
}

// BenchmarkKeyShared measures keying values that share their parts, so
// that the key passes 4 MiB and is given up: as trees, 2^64 leaves
// (TestKeyCyclicShared), or 8 GiB of strings (TestKeyBoundedBySharing).
func BenchmarkKeyShared(b *testing.B) {
	var dag any = 1
	for range 64 {
		dag = []any{dag, dag}
	}
	var pdag *kPair2
	for range 64 {
		pdag = &kPair2{pdag, pdag}
	}
	b.Run("slices", func(b *testing.B) {
		for b.Loop() {
			MakeHashable(dag)
		}
	})
	b.Run("strings", func(b *testing.B) { // TestKeyBoundedBySharing's []string
		xs := bdShared(8192)
		for b.Loop() {
			MakeHashable(xs)
		}
	})
	b.Run("deref-pointers", func(b *testing.B) {
		c := newCompiled(b, []Option{WithDeref()}, anyType)
		for b.Loop() {
			c.key(pdag)
		}
	})
}
