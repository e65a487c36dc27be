package memo

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type bdWithFunc struct {
	N int
	f func() int
}

// Calls whose keys can never hit again do not evict useful entries: 60 of
// them left 40 of 100 entries.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestUncacheableCallsEvictNothing(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	var calls int
	f := Decorate(func(k int, v bdWithFunc) int { calls++; return k + v.N }, WithMaxSize(100), WithLogger(logger), WithName("bd"))
	for k := range 100 {
		require.Equal(t, k, f(k, bdWithFunc{}))
	}
	odd := bdWithFunc{N: 1, f: func() int { return 1 }} // a func in an unexported field
	for range 60 {
		require.Equal(t, 1001, f(1000, odd))
	}
	assert.Equal(t, 160, calls, "each uncacheable call runs the function")
	for k := range 100 {
		require.Equal(t, k, f(k, bdWithFunc{}))
	}
	assert.Equal(t, 160, calls, "the 100 useful entries are all still there")
	st := CacheOf(f).Stats()
	assert.Equal(t, uint64(60), st.Uncacheable)
	assert.Equal(t, uint64(0), st.Evictions)
	assert.Equal(t, 100, st.CurrentSize)
	assert.Contains(t, buf.String(), "call not cached")
	assert.Contains(t, buf.String(), "cache=bd")
	assert.Equal(t, 60, strings.Count(buf.String(), "call not cached"))
}

// The typed paths and Cache.Set do the same.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestUncacheableTypedAndSet(t *testing.T) {
	var calls int
	// The typed paths can address their argument and key its func by
	// identity; a key past the limit can never hit there either.
	f := FuncErr(func(xs []string) (int, error) { calls++; return len(xs), nil })
	xs := bdShared(8)
	for range 3 {
		v, err := f(xs)
		require.NoError(t, err)
		require.Equal(t, 8, v)
	}
	assert.Equal(t, 3, calls)
	assert.Equal(t, uint64(3), CacheOf(f).Stats().Uncacheable)
	assert.Equal(t, 0, CacheOf(f).Len())

	c := MustNew(WithMaxSize(10))
	odd := bdWithFunc{N: 3, f: func() int { return 1 }}
	c.Set(odd, 1)
	_, err := c.Get(odd)
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, 0, c.Len())
	assert.Equal(t, uint64(1), c.Stats().Uncacheable)
}

// 200 calls with multi-MiB keys do not grow the heap (they kept 796 MiB).
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestUncacheableKeysNotKept(t *testing.T) {
	f := Decorate(func(xs []string) int { return len(xs) }, WithMaxSize(1000))
	grown := lkGrowth(func() {
		for i := range 200 {
			xs := []string{strings.Repeat("z", 4*lkMiB), string(rune('a' + i%26))}
			require.Equal(t, 2, f(xs))
		}
	})
	assert.Less(t, grown, int64(16*lkMiB))
	assert.Equal(t, uint64(200), CacheOf(f).Stats().Uncacheable)
}
