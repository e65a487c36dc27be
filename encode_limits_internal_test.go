package memo

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bdCost runs f once and returns its wall time and the bytes it allocated.
func bdCost(f func()) (time.Duration, uint64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&m1)
	return d, m1.TotalAlloc - m0.TotalAlloc
}

// bdShared returns a []string of n copies of one 1 MiB string: 1.1 MiB of
// memory for n = 8192, an 8 GiB key if keyed naively.
func bdShared(n int) []string {
	s := strings.Repeat("x", lkMiB)
	xs := make([]string, n)
	for i := range xs {
		xs[i] = s
	}
	return xs
}

// Every encoding of a value that shares long strings stays within the key
// limit: a []string, a map[int]string, a struct holding them, through any,
// and MakeHashable and NewHashableWrapper.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyBoundedBySharing(t *testing.T) {
	xs := bdShared(8192)
	m := make(map[int]string, 8192)
	for i, x := range xs {
		m[i] = x
	}
	type holder struct {
		Xs []string
		N  int
	}
	var calls int
	fs := Decorate(func(xs []string) int { calls++; return len(xs) })
	fm := Func(func(m map[int]string) int { calls++; return len(m) })
	fh := Func2(func(h holder, i int) int { calls++; return len(h.Xs) + i })
	fa := Decorate(func(a any) int { calls++; return 1 })
	arr := new([4096]string)
	copy(arr[:], xs)
	fr := Func(func(a [4096]string) int { calls++; return len(a[0]) })
	cases := []struct {
		name string
		run  func()
	}{
		{"[]string", func() { assert.Equal(t, 8192, fs(xs)) }},
		{"map[int]string", func() { assert.Equal(t, 8192, fm(m)) }},
		{"struct", func() { assert.Equal(t, 8193, fh(holder{xs, 1}, 1)) }},
		{"any", func() { assert.Equal(t, 1, fa([]any{xs, m})) }},
		{"[4096]string", func() { assert.Equal(t, lkMiB, fr(*arr)) }},
		{"MakeHashable", func() {
			h := MakeHashable(xs)
			assert.IsType(t, HashableWrapper{}, h, "a key past the limit equals no other")
			assert.NotEqual(t, h, MakeHashable(xs))
		}},
		{"NewHashableWrapper", func() {
			w := NewHashableWrapper(m)
			assert.NotEqual(t, w, NewHashableWrapper(m))
			_ = w.Hash()
		}},
	}
	for _, c := range cases {
		d, alloc := bdCost(c.run)
		t.Logf("%s: %v, %d MiB allocated", c.name, d, alloc>>20)
		assert.Less(t, alloc, uint64(32*lkMiB), "%s: a key must not allocate much beyond the 4 MiB limit", c.name)
		// How fast it fails is BenchmarkKeyShared/strings's: no test
		// asserts a wall-clock bound.
	}
	assert.Equal(t, 5, calls)
	for _, f := range []any{fs, fm, fh, fa, fr} {
		st := CacheOf(f).Stats()
		assert.Equal(t, 0, st.CurrentSize, "nothing is stored")
		assert.Equal(t, uint64(1), st.Uncacheable)
	}
}

// bdSmall encodes larger than it is in memory: 4 bytes, 32 in a key.
type bdSmall struct{ A, B, C, D int8 }

// bdOpaque is not flat (it holds a pointer), so its unexported fields are
// keyed by the reflective encoders.
type bdOpaque struct {
	p  *int
	xs []int8
	ar [1 << 20]int16
	m  map[int]int8
}

// n is what p points to, 0 for nil.
func (o bdOpaque) n() int {
	if o.p == nil {
		return 0
	}
	return *o.p
}

// Elements that encode larger than they are in memory (an int8 takes 8
// bytes of key) count against the key limit before the loop over them,
// not only when a container is entered: 4 MiB of int8 made a 32 MiB key
// that was stored (223 MiB allocated; a 16 MiB slice allocated 861 MiB),
// on the flat and the reflective encoders alike, in slices, arrays and
// maps.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyBoundedPerElement(t *testing.T) {
	const n = 4 * lkMiB // 4 MiB of int8: a 32 MiB key if spelled out
	xs := make([]int8, n)
	smalls := make([]bdSmall, n/4)
	arr := new([1 << 20]int16) // 2 MiB, an 8 MiB key
	const nm = 1 << 20         // 16 bytes of key a pair: a 16 MiB key
	m := make(map[int]int8, nm)
	for i := range nm {
		m[i] = int8(i)
	}
	big := &bdOpaque{ar: *arr}
	var calls int
	fx := Func(func(xs []int8) int { calls++; return len(xs) })
	fs := Decorate(func(xs []bdSmall) int { calls++; return len(xs) })
	fa := Func(func(a [1 << 20]int16) int { calls++; return len(a) })
	fm := Func(func(m map[int]int8) int { calls++; return len(m) })
	fo := Decorate(func(o bdOpaque) int { calls++; return len(o.xs) + len(o.m) + o.n() })
	cases := []struct {
		name string
		want int
		run  func() int
	}{
		{"[]int8", n, func() int { return fx(xs) }},
		{"[]struct of int8", n / 4, func() int { return fs(smalls) }},
		{"[1<<20]int16", 1 << 20, func() int { return fa(*arr) }},
		{"map[int]int8", nm, func() int { return fm(m) }},
		{"unexported []int8", n, func() int { return fo(bdOpaque{xs: xs}) }},
		{"unexported [1<<20]int16", 0, func() int { return fo(*big) }},
		{"unexported map", nm, func() int { return fo(bdOpaque{m: m}) }},
	}
	for _, c := range cases {
		var got int
		d, alloc := bdCost(func() { got = c.run() })
		t.Logf("%s: %v, %d MiB allocated", c.name, d, alloc>>20)
		assert.Equal(t, c.want, got, c.name)
		// A map's pairs are sorted through scratch space as large as the
		// key: about 50 MiB at the limit, whatever the map's size.
		assert.Less(t, alloc, uint64(64*lkMiB), "%s: a key must not allocate much beyond the 4 MiB limit", c.name)
	}
	assert.Equal(t, len(cases), calls)
	for _, f := range []any{fx, fs, fa, fm, fo} {
		st := CacheOf(f).Stats()
		assert.Equal(t, 0, st.CurrentSize, "a key past the limit is not stored")
		assert.Equal(t, st.Misses, st.Uncacheable)
	}
	assert.IsType(t, HashableWrapper{}, MakeHashable(xs), "a key past the limit equals no other")
}

// Two string arguments that each fit the limit but not together make a
// key past it on the typed fast paths too (their stack-buffer keys were
// checked per string: a 6 MiB key was stored), as on the reflective one.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyTwoStringsPastLimit(t *testing.T) {
	half := strings.Repeat("z", 3*lkMiB)
	var calls int
	f2 := Func2(func(a, b string) int { calls++; return len(a) + len(b) })
	f2c := Func2Ctx(func(_ context.Context, a, b string) (int, error) { calls++; return len(a) + len(b), nil })
	d := Decorate(func(a, b string) int { calls++; return len(a) + len(b) })
	for range 2 {
		assert.Equal(t, 2*len(half), f2(half, half))
		n, err := f2c(context.Background(), half, half)
		require.NoError(t, err)
		assert.Equal(t, 2*len(half), n)
		assert.Equal(t, 2*len(half), d(half, half))
	}
	assert.Equal(t, 6, calls, "never stored, so every call runs")
	for _, f := range []any{f2, f2c, d} {
		assert.Equal(t, 0, CacheOf(f).Len())
		assert.Equal(t, uint64(2), CacheOf(f).Stats().Uncacheable)
	}
	// Each alone fits and hits.
	assert.Equal(t, len(half), f2(half, ""))
	assert.Equal(t, len(half), f2(half, ""))
	assert.Equal(t, 7, calls)
}
