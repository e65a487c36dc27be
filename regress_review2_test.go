package memo

import (
	"reflect"
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Review 2 probes. Each test states the property it checks.

type r2Flat struct {
	A int16
	S string
	B []byte
	T []string
	N [][2]float32
	E struct{}
	u uint8
}

type r2Holder struct {
	X r2Flat
	y r2Flat
}

// TestRegression2FlatAllAccessPaths: the flat/generic combined encoder gives the
// same bytes for one value whatever way reflect reached it (addressable,
// interface Elem, map value, map key, unexported field of an addressable
// and of a non-addressable struct, array element, MakeFunc argument).
func TestRegression2FlatAllAccessPaths(t *testing.T) {
	v := r2Flat{A: -3, S: "x", B: []byte{1, 2}, T: []string{"a", ""}, N: [][2]float32{{1, -0}}, u: 7}
	typ := reflect.TypeFor[r2Flat]()
	enc := encoderOf(typ)
	gen := newKindEncoder(typ)
	key := func(e encoder, rv reflect.Value) string {
		s := getState()
		defer putState(s)
		e(s, rv)
		return string(s.buf)
	}
	want := key(gen, reflect.ValueOf(v))
	var anyv any = v
	h := r2Holder{v, v}
	m := map[int]r2Flat{1: v}
	paths := map[string]reflect.Value{
		"value":            reflect.ValueOf(v),
		"addr":             reflect.ValueOf(&v).Elem(),
		"iface elem":       reflect.ValueOf(&anyv).Elem().Elem(),
		"map value":        reflect.ValueOf(m).MapIndex(reflect.ValueOf(1)),
		"unexp addr":       reflect.ValueOf(&h).Elem().Field(1),
		"unexp nonaddr":    reflect.ValueOf(h).Field(1),
		"exp nonaddr":      reflect.ValueOf(h).Field(0),
		"array elem":       reflect.ValueOf([2]r2Flat{v, v}).Index(1),
		"slice elem":       reflect.ValueOf([]r2Flat{v}).Index(0),
		"converted":        reflect.ValueOf(v).Convert(typ),
		"zero then set":    func() reflect.Value { z := reflect.New(typ).Elem(); z.Set(reflect.ValueOf(v)); return z }(),
		"interface result": reflect.ValueOf(reflect.ValueOf(v).Interface()),
	}
	it := reflect.ValueOf(m).MapRange()
	for it.Next() {
		paths["map iter value"] = it.Value()
	}
	for name, rv := range paths {
		assert.Equal(t, want, key(enc, rv), name)
	}
	// MakeFunc argument: Decorate keys through MakeFunc's args.
	calls := 0
	f := Decorate(func(x r2Flat) int { calls++; return int(x.A) })
	f(v)
	w := v
	w.T = []string{"a", "", ""}
	f(w)
	f(v)
	assert.Equal(t, 2, calls)
	assert.True(t, Invalidate(f, v))
}

// TestRegression2NamespacesApart: Cache.Get/Set keys (namespace 0) never meet a
// decorated or typed function's keys on a shared cache, for every basic key
// path (appendDynamicBasic, appendKind, appendBasic).
func TestRegression2NamespacesApart(t *testing.T) {
	c := MustNew(WithMaxSize(100))
	d := Decorate(func(i int) string { return "decorated" }, WithCache(c))
	ty := Func(func(i int) string { return "typed" }, WithCache(c))
	assert.Equal(t, "decorated", d(5))
	assert.Equal(t, "typed", ty(5))
	_, err := c.Get(5)
	require.ErrorIs(t, err, ErrNotFound)
	c.Set(5, "set")
	v, err := c.Get(5)
	require.NoError(t, err)
	assert.Equal(t, "set", v)
	assert.Equal(t, "decorated", d(5))
	assert.Equal(t, "typed", ty(5))
	// The basic Get and the reflective Delete/Set build the same key.
	for _, k := range []any{int(1), int64(1), uint64(1), "1", true, 1.5} {
		c.Set(k, k)
	}
	for _, k := range []any{int(1), int64(1), uint64(1), "1", true, 1.5} {
		got, err := c.Get(k)
		require.NoError(t, err)
		assert.Equal(t, k, got)
		assert.True(t, c.Delete(k))
	}
}

// TestRegression2StatsExactUnderContention: every Get is exactly one hit or one
// miss, even while stripes grow and drains run.
func TestRegression2StatsExactUnderContention(t *testing.T) {
	c := MustNew(WithMaxSize(64))
	for i := range 32 {
		c.Set(i, i)
	}
	const G, N = 16, 20000
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				c.Get((i + g) % 48) // 2/3 hits
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	assert.Equal(t, uint64(G*N), st.Hits+st.Misses)
	var hits uint64
	for g := range G {
		for i := range N {
			if (i+g)%48 < 32 {
				hits++
			}
		}
	}
	assert.Equal(t, hits, st.Hits)
}

type r2Obj struct {
	_ [8]uint64
	_ *int
}

// TestRegression2ReplacedEntryDoesNotPinKey: a key's object must not be kept
// alive by the cache's bookkeeping (SPEC: "A pointer in a key must not keep
// its object alive"). When Set replaces an entry whose value referred to
// the key object, the old node is out of the cache; but the old node's
// cleanup is still registered, and since newNode its key string points
// into the old node's allocation: the cleanup's arg then reaches the old
// value, hence the key object, and the cleanup can never run (see
// runtime.AddCleanup: "if ptr is reachable from cleanup or arg, ptr will
// never be collected").
func TestRegression2ReplacedEntryDoesNotPinKey(t *testing.T) {
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

func TestReadStripeFillsCacheLines(t *testing.T) {
	assert.Zero(t, unsafe.Sizeof(readStripe{})%cacheLine, "stripes must not share cache lines")
}
