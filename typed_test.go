package memo_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
		g := memo.Func(func(s string) string { return "r:" + s })
		ctx := memo.FuncCtx(func(_ context.Context, s string) (string, error) { return "c:" + s, nil })
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
			require.True(t, memo.Invalidate(g, a))
			assert.Equal(t, "r:"+b, g(b), "b's entry stays")
			assert.Equal(t, 1, memo.CacheOf(g).Len())
		}
	})
}

// Func over a function returning only an error stored non-nil errors,
// and did not count them as failures.
func TestTypedErrorResultNotStored(t *testing.T) {
	t.Parallel()
	calls := 0
	fail := errors.New("boom")
	f := memo.Func(func(x int) error {
		calls++
		if x < 0 {
			return fail
		}
		return nil
	})
	for range 2 {
		assert.ErrorIs(t, f(-1), fail)
		assert.NoError(t, f(1))
	}
	assert.Equal(t, 3, calls, "the error is returned, not stored; nil is stored")
	st := memo.CacheOf(f).Stats()
	assert.Equal(t, uint64(2), st.Failures)
	assert.Equal(t, 1, st.CurrentSize)
}

func TestTypedWithKey(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	byLen := memo.WithKey(func(args []any) any {
		return len(args[0].(string))
	})
	f := memo.Func(func(s string) string { execs.Add(1); return s }, byLen)
	assert.Equal(t, "ab", f("ab"))
	assert.Equal(t, "ab", f("cd"), "same length, same key")
	assert.Equal(t, "abc", f("abc"))
	assert.EqualValues(t, 2, execs.Load())
	assert.True(t, memo.Invalidate(f, "zz"))
	assert.Equal(t, 1, memo.CacheOf(f).Len())

	// The context is left out of the key function's arguments.
	var gotArgs []any
	g := memo.FuncCtx(func(_ context.Context, s string) (int, error) { return len(s), nil },
		memo.WithKey(func(args []any) any { gotArgs = args; return args[0].(string)[:1] }))
	n, err := g(context.Background(), "hello")
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	n, err = g(context.Background(), "hi")
	require.NoError(t, err)
	assert.Equal(t, 5, n, "keyed by the first letter")
	assert.Equal(t, []any{"hi"}, gotArgs)

	h := memo.Func2(func(a, b int) int { return a + b },
		memo.WithKey(func(args []any) any { return args[0].(int) * args[1].(int) }))
	assert.Equal(t, 5, h(2, 3))
	assert.Equal(t, 5, h(3, 2), "same product")
	assert.Equal(t, 8, h(1, 7), "another product")
	assert.True(t, memo.Invalidate(h, 6, 1))
}

func TestTypedWithDeref(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	f := memo.Func(func(p *int) int { execs.Add(1); return *p }, memo.WithDeref())
	x, y, z := 1, 1, 2
	assert.Equal(t, 1, f(&x))
	assert.Equal(t, 1, f(&y), "keyed by the pointee")
	assert.Equal(t, 2, f(&z))
	assert.EqualValues(t, 2, execs.Load())
	one := 1
	assert.True(t, memo.Invalidate(f, &one))

	// Without WithDeref pointers are keyed by identity.
	execs.Store(0)
	g := memo.Func(func(p *int) int { execs.Add(1); return *p })
	g(&x)
	g(&y)
	g(&x)
	assert.EqualValues(t, 2, execs.Load())
	assert.False(t, memo.Invalidate(g, &one))
	assert.True(t, memo.Invalidate(g, &x))
}

func TestTypedWithCacheSharedWithDecorate(t *testing.T) {
	t.Parallel()
	c := memo.MustNew(memo.WithMaxSize(100))
	var tExecs, dExecs atomic.Int32
	tf := memo.Func(func(x int) int { tExecs.Add(1); return x + 1 }, memo.WithCache(c))
	df := memo.Decorate(func(x int) int { dExecs.Add(1); return x + 2 }, memo.WithCache(c))
	tf2 := memo.Func(func(x int) int { return x + 3 }, memo.WithCache(c))
	assert.Same(t, c, memo.CacheOf(tf))
	assert.Same(t, c, memo.CacheOf(df))
	for range 2 {
		assert.Equal(t, 2, tf(1))
		assert.Equal(t, 3, df(1))
		assert.Equal(t, 4, tf2(1))
	}
	assert.EqualValues(t, 1, tExecs.Load())
	assert.EqualValues(t, 1, dExecs.Load())
	assert.Equal(t, 3, c.Len(), "the entries stay apart")
	assert.True(t, memo.Invalidate(tf, 1))
	assert.False(t, memo.Invalidate(tf, 1))
	assert.Equal(t, 3, df(1))
	assert.EqualValues(t, 1, dExecs.Load(), "the decorated func's entry is still there")
	assert.True(t, memo.Invalidate(df, 1))
	assert.True(t, memo.Invalidate(tf2, 1))
	assert.Zero(t, c.Len())
}
