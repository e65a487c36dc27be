package memo_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rvShape is an interface type that embeds CacheKeyer, so reflect says the
// interface type itself implements CacheKeyer.
type rvShape interface {
	memo.CacheKeyer
	Area() float64
}

type rvCircle struct{ R float64 }

func (c rvCircle) CacheKey() any { return c.R }

func (c rvCircle) Area() float64 { return 3 * c.R * c.R }

type rvSquare struct{ S float64 }

func (s rvSquare) CacheKey() any { return s.S }

func (s rvSquare) Area() float64 { return s.S * s.S }

// A parameter of an interface type that embeds CacheKeyer loses the dynamic
// type: rvCircle{1} and rvSquare{1} have equal CacheKey results but different
// dynamic types, so the SPEC's interface rule says they are different keys
// (and func(any) does keep them apart).
func TestKeyerInterfaceParamKeepsDynamicType(t *testing.T) {
	area := memo.Decorate(func(s rvShape) float64 { return s.Area() })
	require.Equal(t, 3.0, area(rvCircle{1}))
	assert.Equal(t, 1.0, area(rvSquare{1}), "wrong hit: the square got the circle's area")

	// The same through a plain CacheKeyer parameter and a struct field.
	type holder struct{ S rvShape }
	areaH := memo.Decorate(func(h holder) float64 { return h.S.Area() })
	require.Equal(t, 3.0, areaH(holder{rvCircle{1}}))
	assert.Equal(t, 1.0, areaH(holder{rvSquare{1}}), "wrong hit through a struct field")

	name := memo.Decorate(func(k memo.CacheKeyer) string {
		switch k.(type) {
		case rvCircle:
			return "circle"
		}
		return "square"
	})
	require.Equal(t, "circle", name(rvCircle{1}))
	assert.Equal(t, "square", name(rvSquare{1}), "wrong hit through a CacheKeyer parameter")

	// Control: with a parameter of type any the two are apart.
	areaAny := memo.Decorate(func(s any) float64 { return s.(rvShape).Area() })
	require.Equal(t, 3.0, areaAny(rvCircle{1}))
	assert.Equal(t, 1.0, areaAny(rvSquare{1}))
}

// Func and Func2 accept a first argument of type context.Context, but
// newWrapped then treats it as a leading context (w.ctx) while the typed path
// still passes it as a keyed argument: the encoders are off by one.
func TestFuncWithContextArgument(t *testing.T) {
	// The non-context constructors refuse a leading context at decoration
	// time (it used to crash every call): FuncCtx is the one to use.
	assert.PanicsWithError(t,
		"memo: Func cannot memoize func(context.Context) int: its parameter 1 is a context.Context, which Func would make part of the key, so that no call would ever hit; use Decorate, which leaves a context.Context in any position out of the key",
		func() { memo.Func(func(ctx context.Context) int { return 1 }) })
	assert.Panics(t, func() { memo.Func2(func(ctx context.Context, x int) int { return x }) })
	assert.Panics(t, func() { memo.FuncErr(func(ctx context.Context) (int, error) { return 1, nil }) })
	assert.Panics(t, func() { memo.Func2Err(func(ctx context.Context, x int) (int, error) { return x, nil }) })
	g := memo.Func2Ctx(func(ctx context.Context, x, y int) (int, error) { return x + y, nil })
	v, err := g(context.Background(), 2, 3)
	assert.NoError(t, err)
	assert.Equal(t, 5, v)
}

// Invalidate with a single argument that fits both the variadic slice type
// and its element type is read as the slice: Invalidate(f, nil) drops f()'s
// entry instead of f(nil)'s, which stays stale.
func TestInvalidateVariadicSingleNil(t *testing.T) {
	calls := 0
	f := memo.Decorate(func(xs ...*int) int { calls++; return calls })
	require.Equal(t, 1, f(nil)) // xs = []*int{nil}
	require.Equal(t, 2, f())    // xs = nil
	assert.True(t, memo.Invalidate(f, nil))
	assert.Equal(t, 3, f(nil), "f(nil) still served its pre-Invalidate result")
}

// TestNamespacesApart: Cache.Get/Set keys (namespace 0) never meet a
// decorated or typed function's keys on a shared cache, for every basic key
// path (appendDynamicBasic, appendKind, appendBasic).
func TestNamespacesApart(t *testing.T) {
	c := memo.MustNew(memo.WithMaxSize(100))
	d := memo.Decorate(func(i int) string { return "decorated" }, memo.WithCache(c))
	ty := memo.Func(func(i int) string { return "typed" }, memo.WithCache(c))
	assert.Equal(t, "decorated", d(5))
	assert.Equal(t, "typed", ty(5))
	_, err := c.Get(5)
	require.ErrorIs(t, err, memo.ErrNotFound)
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

// TestKeyFuncIsWrapper checks that MakeHashable keys funcs by identity
// through a HashableWrapper.
func TestKeyFuncIsWrapper(t *testing.T) {
	t.Parallel()
	f := func() {}
	h := memo.MakeHashable(f)
	require.IsType(t, memo.HashableWrapper{}, h)
	assert.True(t, h == memo.MakeHashable(f))
	assert.Equal(t, reflect.ValueOf(f).Pointer(), reflect.ValueOf(h.(memo.HashableWrapper).Value()).Pointer())
}

// bdB is a byte-kind CacheKeyer: B('a') and B('A') are one key.
type bdB byte

func (b bdB) CacheKey() any { return strings.ToLower(string(rune(b))) }

// Containers of CacheKeyer elements use CacheKey, as B and [1]B do: a
// []B was keyed by its raw bytes.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestContainersOfCacheKeyers(t *testing.T) {
	assert.Equal(t, memo.MakeHashable(bdB('a')), memo.MakeHashable(bdB('A')))
	assert.Equal(t, memo.MakeHashable([1]bdB{'a'}), memo.MakeHashable([1]bdB{'A'}))
	assert.Equal(t, memo.MakeHashable([]bdB{'a', 'b'}), memo.MakeHashable([]bdB{'A', 'B'}))
	assert.NotEqual(t, memo.MakeHashable([]bdB{'a', 'b'}), memo.MakeHashable([]bdB{'a', 'c'}))
	assert.Equal(t, memo.MakeHashable(map[int][]bdB{1: {'x'}}), memo.MakeHashable(map[int][]bdB{1: {'X'}}))
	type s struct{ Bs []bdB }
	assert.Equal(t, memo.MakeHashable(s{[]bdB{'q'}}), memo.MakeHashable(s{[]bdB{'Q'}}))
	var calls int
	f := memo.Func(func(bs []bdB) int { calls++; return len(bs) })
	assert.Equal(t, 2, f([]bdB{'a', 'b'}))
	assert.Equal(t, 2, f([]bdB{'A', 'B'}))
	assert.Equal(t, 1, calls)
}

// A string argument past the limit is never stored on any path, the basic
// fast paths too: they key as the reflective encoder does.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyLongStringNotStored(t *testing.T) {
	long := strings.Repeat("y", memo.ExportMaxKeyLen+1)
	fits := long[:memo.ExportMaxKeyLen-100]
	var calls int
	f := memo.Func(func(s string) int { calls++; return len(s) })
	d := memo.Decorate(func(s string, i int) int { calls++; return len(s) + i })
	for range 2 {
		assert.Equal(t, len(long), f(long))
		assert.Equal(t, len(long)+1, d(long, 1))
		assert.Equal(t, len(fits), f(fits))
	}
	assert.Equal(t, 5, calls, "the fitting key is stored and hits")
	assert.Equal(t, uint64(2), memo.CacheOf(f).Stats().Uncacheable)
	assert.Equal(t, uint64(2), memo.CacheOf(d).Stats().Uncacheable)
	assert.Equal(t, 1, memo.CacheOf(f).Len())
	assert.Equal(t, 0, memo.CacheOf(d).Len())
}

// bdOpaqueXs is bdOpaque with only its slice.
type bdOpaqueXs struct {
	p  *int
	xs []int8
}

// Right at the limit, the flat and the reflective encoders agree: a slice
// of int8 whose key just fits is stored and hits on both, one element more
// is stored on neither.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyPerElementLimitExact(t *testing.T) {
	// Before the elements, the flat key has 8 bytes of function number, a
	// tag and a 3-byte length (12 bytes); the reflective one has the nil
	// pointer's tag too (13). Each element takes 8 bytes.
	fits := (memo.ExportMaxKeyLen - 13) / 8
	require.Equal(t, fits, (memo.ExportMaxKeyLen-12)/8, "the same length fits both")
	for _, tc := range []struct {
		name string
		n    int
		kept bool
	}{{"fits", fits, true}, {"one more", fits + 1, false}} {
		var calls int
		flat := memo.Func(func(xs []int8) int { calls++; return len(xs) })
		refl := memo.Decorate(func(o bdOpaqueXs) int {
			calls++
			if o.p != nil {
				return *o.p
			}
			return len(o.xs)
		})
		xs := make([]int8, tc.n)
		for range 2 {
			assert.Equal(t, tc.n, flat(xs))
			assert.Equal(t, tc.n, refl(bdOpaqueXs{xs: xs}))
		}
		if tc.kept {
			assert.Equal(t, 2, calls, "%s: the second calls hit", tc.name)
			assert.Equal(t, 1, memo.CacheOf(flat).Len())
			assert.Equal(t, 1, memo.CacheOf(refl).Len())
		} else {
			assert.Equal(t, 4, calls, "%s: never stored", tc.name)
			assert.Equal(t, uint64(2), memo.CacheOf(flat).Stats().Uncacheable)
			assert.Equal(t, uint64(2), memo.CacheOf(refl).Stats().Uncacheable)
		}
	}
}

// Every key hits once stored, whatever its encoded length: among them the
// one as long as the tag that marks a key kept outside its entry (255
// bytes, a Cache key of a 244-byte string), which was never found again
// and was stored once more by every Set (and every miss of a function of
// a string). A string key of each length from 0 to 300 goes through
// Cache.Set and Get, and through a Func, each twice.
func TestEveryKeyLengthHits(t *testing.T) {
	c := memo.MustNew(memo.WithMaxSize(1000))
	calls := 0
	f := memo.Func(func(s string) int { calls++; return len(s) }, memo.WithCache(memo.MustNew(memo.WithMaxSize(1000))))
	const n = 301
	for l := range n {
		k := strings.Repeat("k", l)
		for range 2 {
			c.Set(k, l)
			v, err := c.Get(k)
			require.NoError(t, err, "a key of %d bytes", l)
			assert.Equal(t, l, v, "a key of %d bytes", l)
			assert.Equal(t, l, f(k))
		}
	}
	assert.Equal(t, n, c.Len(), "each key stored once")
	assert.Equal(t, n, calls, "one execution per key")
	assert.Equal(t, n, memo.CacheOf(f).Len())
}
