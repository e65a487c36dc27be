package memo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dtGoroutines counts the goroutines but the runtime's own, whose
// finalizer and cleanup goroutines count while they run user code, and so
// come and go with the collector.
func dtGoroutines() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "\ncreated by runtime.") {
			n++
		}
	}
	return n
}

type dtNamedFunc func(int) int

func TestDecorateSignatures(t *testing.T) {
	t.Parallel()

	t.Run("no arguments", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func() int { return int(execs.Add(1)) })
		assert.Equal(t, 1, f())
		assert.Equal(t, 1, f())
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("no results", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func(int) { execs.Add(1) })
		f(1)
		f(1)
		f(2)
		assert.EqualValues(t, 2, execs.Load())
		assert.Equal(t, 2, memo.CacheOf(f).Len())
	})

	t.Run("no arguments, no results", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func() { execs.Add(1) })
		f()
		f()
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("several results", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func(a int, b string) (int, string, []byte, error) {
			execs.Add(1)
			return a * 2, b + b, []byte(b), nil
		})
		for range 2 {
			n, s, bs, err := f(2, "ab")
			assert.Equal(t, 4, n)
			assert.Equal(t, "abab", s)
			assert.Equal(t, []byte("ab"), bs)
			assert.NoError(t, err)
		}
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("variadic", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func(sep string, xs ...int) string {
			execs.Add(1)
			return fmt.Sprint(sep, xs)
		})
		assert.Equal(t, "-[1 2]", f("-", 1, 2))
		assert.Equal(t, "-[1 2]", f("-", []int{1, 2}...))
		assert.Equal(t, "+[1 2]", f("+", 1, 2))
		assert.Equal(t, "-[]", f("-"))
		assert.Equal(t, "-[]", f("-", []int{}...), "an empty slice, not nil: its own key")
		assert.EqualValues(t, 4, execs.Load())
	})

	t.Run("context only", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func(ctx context.Context) int { return int(execs.Add(1)) })
		assert.Equal(t, 1, f(context.Background()))
		assert.Equal(t, 1, f(context.TODO()), "the context is not part of the key")
		assert.EqualValues(t, 1, execs.Load())

		// Without an error result, a cancelled caller gets zero results.
		g := memo.Decorate(func(ctx context.Context) int { return 5 })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.Zero(t, g(ctx))
	})

	t.Run("only an error", func(t *testing.T) {
		var execs atomic.Int32
		fail := errors.New("fail")
		f := memo.Decorate(func(k int) error {
			execs.Add(1)
			if k < 0 {
				return fail
			}
			return nil
		})
		assert.NoError(t, f(1))
		assert.NoError(t, f(1))
		assert.ErrorIs(t, f(-1), fail)
		assert.ErrorIs(t, f(-1), fail)
		assert.EqualValues(t, 3, execs.Load(), "a nil error is stored, a non-nil one is not")
	})

	t.Run("any keeps the dynamic type", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(func(v any) string {
			execs.Add(1)
			return fmt.Sprintf("%T", v)
		})
		assert.Equal(t, "int", f(int(1)))
		assert.Equal(t, "int64", f(int64(1)))
		assert.Equal(t, "int", f(int(1)))
		assert.Equal(t, "<nil>", f(nil))
		assert.EqualValues(t, 3, execs.Load())
	})

	t.Run("named func type", func(t *testing.T) {
		var execs atomic.Int32
		f := memo.Decorate(dtNamedFunc(func(x int) int { execs.Add(1); return -x }))
		assert.Equal(t, -3, f(3))
		assert.Equal(t, -3, f(3))
		assert.EqualValues(t, 1, execs.Load())
	})
}

type dtHolder struct{ fn func(int) int }

func TestCacheOf(t *testing.T) {
	t.Parallel()
	f := memo.Decorate(func(x int) int { return x })
	c := memo.CacheOf(f)
	require.NotNil(t, c)

	g := f
	var asAny any = f
	h := dtHolder{fn: f}
	n := dtNamedFunc(f)
	pf := &f
	cases := []struct {
		name string
		fn   any
	}{
		{"variable copy", g},
		{"interface", asAny},
		{"struct field", h.fn},
		{"named func type", n},
		{"through a pointer", *pf},
		{"closure field", dtHolder{fn: f}.fn},
	}
	for _, tc := range cases {
		assert.Same(t, c, memo.CacheOf(tc.fn), tc.name)
	}

	other := memo.Decorate(func(x int) int { return x })
	assert.NotSame(t, c, memo.CacheOf(other), "each Decorate has its own cache")

	plain := func(x int) int { return x }
	var nilFunc func(int) int
	for name, fn := range map[string]any{
		"plain func":         plain,
		"plain closure":      func() int { return len(t.Name()) },
		"nil":                nil,
		"nil func":           nilFunc,
		"42":                 42,
		"a pointer to f":     &f,
		"a struct holding f": h,
	} {
		assert.Nil(t, memo.CacheOf(fn), name)
	}
}

func TestDecorateSharedCache(t *testing.T) {
	t.Parallel()
	shared := memo.MustNew(memo.WithMaxSize(10))
	var fExecs, gExecs atomic.Int32
	f := memo.Decorate(func(x int) int { fExecs.Add(1); return x + 1 }, memo.WithCache(shared))
	g := memo.Decorate(func(x int) int { gExecs.Add(1); return x * 10 }, memo.WithCache(shared))
	// The same code decorated twice is two functions too.
	plain := func(x int) string { return fmt.Sprint("v", x) }
	p1 := memo.Decorate(plain, memo.WithCache(shared))
	p2 := memo.Decorate(plain, memo.WithCache(shared))

	assert.Same(t, shared, memo.CacheOf(f))
	assert.Same(t, shared, memo.CacheOf(g))
	for range 2 {
		assert.Equal(t, 2, f(1))
		assert.Equal(t, 10, g(1))
	}
	assert.EqualValues(t, 1, fExecs.Load())
	assert.EqualValues(t, 1, gExecs.Load())
	assert.Equal(t, "v1", p1(1))
	assert.Equal(t, "v1", p2(1))
	assert.Equal(t, 4, shared.Len())

	st := shared.Stats()
	assert.EqualValues(t, 2, st.Hits)
	assert.EqualValues(t, 4, st.Misses)
	assert.EqualValues(t, 4, st.TotalCalls)

	// A key given to the cache directly is apart from both functions'.
	_, err := shared.Get(1)
	assert.ErrorIs(t, err, memo.ErrNotFound)

	assert.True(t, memo.Invalidate(f, 1))
	assert.Equal(t, 3, shared.Len(), "g's entry stays")
	assert.Equal(t, 10, g(1))
	assert.EqualValues(t, 1, gExecs.Load())
}

func TestDecorateClearAll(t *testing.T) {
	// Not parallel: ClearAll clears every cache.
	//
	// Cache.Clear stops the cache's expiry timer, and stopping a timer
	// made in a synctest bubble from outside it is a fatal error: collect
	// the decorated functions of finished bubbled tests first.
	runtime.GC()
	f := memo.Decorate(func(x int) int { return x })
	g := memo.Decorate(func(s string) string { return s }, memo.WithTTL(time.Hour))
	f(1)
	f(1)
	g("a")
	memo.ClearAll()
	assert.Zero(t, memo.CacheOf(f).Len())
	assert.Zero(t, memo.CacheOf(g).Len())
	assert.Zero(t, memo.CacheOf(f).Stats().Hits, "statistics are reset")
	assert.Zero(t, memo.CacheOf(f).Stats().TotalCalls)
	assert.Equal(t, 1, f(1))
	assert.Equal(t, 1, memo.CacheOf(f).Len(), "usable after")
}

func TestDecorateStartsNoGoroutine(t *testing.T) {
	// Not parallel: it counts goroutines.
	runtime.GC()
	before := dtGoroutines()
	fs := make([]func(int) int, 1000)
	for i := range fs {
		fs[i] = memo.Decorate(func(x int) int { return x * i })
		assert.Equal(t, 2*i, fs[i](2))
	}
	// The runtime's cleanup goroutines may come and go meanwhile (they
	// are not counted); a goroutine per function would stay.
	assert.LessOrEqual(t, dtGoroutines(), before)
	runtime.KeepAlive(fs)
}

// A copy of a decorated function keeps it, and its registry entry, alive.
//
// Guards the reported leaks of issue 8 (item 2: memory that must be freed).
func TestRegistryCopyKeepsFunction(t *testing.T) {
	var calls int
	f := memo.Decorate(func(k int) int { calls++; return k })
	var held any = f
	f = nil
	runtime.GC()
	runtime.GC()
	g := held.(func(int) int)
	require.NotNil(t, memo.CacheOf(g))
	assert.Equal(t, 1, g(1))
	assert.Equal(t, 1, g(1))
	assert.Equal(t, 1, calls)
	assert.True(t, memo.Invalidate(g, 1))
	memo.ClearAll()
}
