package memo

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// dtGCUntil collects garbage until cond holds, and reports whether it came
// to hold within 100 collections. Cleanups run on goroutines of their own
// after a collection: each round waits until a cleanup of its own, queued
// by that collection, has run, so that however slow the machine, the
// rounds give the cleanups their turn (there is no deadline).
func dtGCUntil(cond func() bool) bool {
	for range 100 {
		if cond() {
			return true
		}
		ran := make(chan struct{})
		func() {
			sentinel := new(dtSentinel) // holds a pointer: not from the tiny allocator
			runtime.AddCleanup(sentinel, func(ch chan struct{}) { close(ch) }, ran)
		}()
		runtime.GC()
		<-ran
	}
	return cond()
}

type dtSentinel struct {
	_ *int
	_ [2]int
}

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

// dtRegistryLen counts the decorated functions in the registry.
func dtRegistryLen() int {
	n := 0
	registry.Range(func(_, _ any) bool {
		n++
		return true
	})
	return n
}

// dtPanicMessage runs f and returns the text of what it panicked with.
func dtPanicMessage(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		require.NotNil(t, r, "no panic")
		msg = fmt.Sprint(r)
	}()
	f()
	return ""
}

func TestDecorateBadInput(t *testing.T) {
	t.Parallel()
	plain := func(x int) int { return x }
	cases := []struct {
		name string
		f    func()
		want string // a part of the message that says what to fix
	}{
		{"nil func", func() { var fn func(int) int; Decorate(fn) }, "nil"},
		{"nil any", func() { Decorate[any](nil) }, "func"},
		{"non-func", func() { Decorate(42) }, "int"},
		{"non-func any", func() { Decorate[any]("text") }, "string"},
		{"WithMaxSize(0)", func() { Decorate(plain, WithMaxSize(0)) }, "WithMaxSize(0)"},
		{"WithMaxSize(-1)", func() { Decorate(plain, WithMaxSize(-1)) }, "WithMaxSize(-1)"},
		{"WithTTL(-1)", func() { Decorate(plain, WithTTL(-1)) }, "WithTTL"},
		{"WithTTL(0)", func() { Decorate(plain, WithTTL(0)) }, "WithTTL"},
		{"WithErrorTTL(-1)", func() { Decorate(plain, WithErrorTTL(-1)) }, "WithErrorTTL"},
		{"unknown policy", func() { Decorate(plain, WithPolicy(policies.Kind(99))) }, "policy"},
		{"WithCache(nil)", func() { Decorate(plain, WithCache(nil)) }, "WithCache"},
		{"WithKey(nil)", func() { Decorate(plain, WithKey(nil)) }, "WithKey"},
		{"nil option", func() { Decorate(plain, nil) }, "nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := dtPanicMessage(t, tc.f)
			assert.True(t, strings.HasPrefix(msg, "memo:"), "message %q", msg)
			assert.Contains(t, msg, tc.want)
		})
	}
}

type dtNamedFunc func(int) int

func TestDecorateSignatures(t *testing.T) {
	t.Parallel()

	t.Run("no arguments", func(t *testing.T) {
		var execs atomic.Int32
		f := Decorate(func() int { return int(execs.Add(1)) })
		assert.Equal(t, 1, f())
		assert.Equal(t, 1, f())
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("no results", func(t *testing.T) {
		var execs atomic.Int32
		f := Decorate(func(int) { execs.Add(1) })
		f(1)
		f(1)
		f(2)
		assert.EqualValues(t, 2, execs.Load())
		assert.Equal(t, 2, CacheOf(f).Len())
	})

	t.Run("no arguments, no results", func(t *testing.T) {
		var execs atomic.Int32
		f := Decorate(func() { execs.Add(1) })
		f()
		f()
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("several results", func(t *testing.T) {
		var execs atomic.Int32
		f := Decorate(func(a int, b string) (int, string, []byte, error) {
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
		f := Decorate(func(sep string, xs ...int) string {
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
		f := Decorate(func(ctx context.Context) int { return int(execs.Add(1)) })
		assert.Equal(t, 1, f(context.Background()))
		assert.Equal(t, 1, f(context.TODO()), "the context is not part of the key")
		assert.EqualValues(t, 1, execs.Load())

		// Without an error result, a cancelled caller gets zero results.
		g := Decorate(func(ctx context.Context) int { return 5 })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.Zero(t, g(ctx))
	})

	t.Run("only an error", func(t *testing.T) {
		var execs atomic.Int32
		fail := errors.New("fail")
		f := Decorate(func(k int) error {
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
		f := Decorate(func(v any) string {
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
		f := Decorate(dtNamedFunc(func(x int) int { execs.Add(1); return -x }))
		assert.Equal(t, -3, f(3))
		assert.Equal(t, -3, f(3))
		assert.EqualValues(t, 1, execs.Load())
	})
}

func TestDecorateVariadicKeying(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	f := Decorate(func(xs ...int) int {
		execs.Add(1)
		s := 0
		for _, x := range xs {
			s += x
		}
		return s
	})
	assert.Equal(t, 3, f(1, 2))
	assert.Equal(t, 3, f([]int{1, 2}...))
	assert.EqualValues(t, 1, execs.Load(), "f(1, 2) and f([]int{1, 2}...) share an entry")

	assert.True(t, Invalidate(f, 1, 2))
	assert.False(t, Invalidate(f, 1, 2))
	assert.Equal(t, 3, f(1, 2))
	assert.True(t, Invalidate(f, []int{1, 2}))
	assert.Zero(t, CacheOf(f).Len())

	assert.Zero(t, f())
	assert.True(t, Invalidate(f), "no variadic arguments: the nil slice")
	assert.Equal(t, 1, f(1))
	assert.True(t, Invalidate(f, 1))
	assertMemoPanic(t, "(...int)", func() { Invalidate(f, "x") })
	assertMemoPanic(t, "(...int)", func() { Invalidate(f, 1, "x") })
}

type dtHolder struct{ fn func(int) int }

func TestCacheOf(t *testing.T) {
	t.Parallel()
	f := Decorate(func(x int) int { return x })
	c := CacheOf(f)
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
		assert.Same(t, c, CacheOf(tc.fn), tc.name)
	}

	other := Decorate(func(x int) int { return x })
	assert.NotSame(t, c, CacheOf(other), "each Decorate has its own cache")

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
		assert.Nil(t, CacheOf(fn), name)
	}
}

func TestDecorateSharedCache(t *testing.T) {
	t.Parallel()
	shared := MustNew(WithMaxSize(10))
	var fExecs, gExecs atomic.Int32
	f := Decorate(func(x int) int { fExecs.Add(1); return x + 1 }, WithCache(shared))
	g := Decorate(func(x int) int { gExecs.Add(1); return x * 10 }, WithCache(shared))
	// The same code decorated twice is two functions too.
	plain := func(x int) string { return fmt.Sprint("v", x) }
	p1 := Decorate(plain, WithCache(shared))
	p2 := Decorate(plain, WithCache(shared))

	assert.Same(t, shared, CacheOf(f))
	assert.Same(t, shared, CacheOf(g))
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
	assert.ErrorIs(t, err, ErrNotFound)

	assert.True(t, Invalidate(f, 1))
	assert.Equal(t, 3, shared.Len(), "g's entry stays")
	assert.Equal(t, 10, g(1))
	assert.EqualValues(t, 1, gExecs.Load())
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	f := Decorate(func(a int, s string) string { return fmt.Sprint(a, s) })
	f(1, "x")
	assert.True(t, Invalidate(f, 1, "x"), "an entry existed")
	assert.False(t, Invalidate(f, 1, "x"), "no entry any more")
	assert.Zero(t, CacheOf(f).Len())

	f(1, "x")
	plain := func(a int, s string) string { return s }
	cases := []struct {
		name string
		fn   any
		args []any
	}{
		{"never called", f, []any{2, "x"}},
		{"not decorated", plain, []any{1, "x"}},
		{"nil", nil, []any{1, "x"}},
		{"not a func", 42, []any{1, "x"}},
	}
	for _, tc := range cases {
		assert.False(t, Invalidate(tc.fn, tc.args...), tc.name)
	}
	// Arguments that fit no call are a mistake, not a missing entry.
	bad := []struct {
		name string
		args []any
		want string
	}{
		{"wrong types", []any{"x", 1}, "argument 1, string, does not convert without loss to int"},
		{"too few", []any{1}, "the arguments (int) do not fit the parameters (int, string)"},
		{"too many", []any{1, "x", 2}, "the arguments (int, string, int) do not fit the parameters (int, string)"},
		{"none", nil, "the arguments () do not fit"},
		{"nil for an int", []any{nil, "x"}, "argument 1, nil, does not convert without loss to int"},
		{"lossy conversion", []any{1.5, "x"}, "argument 1, float64(1.5), does not convert without loss to int"},
		{"bytes for a string", []any{1, []byte("x")}, "argument 2, []uint8,"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			assertMemoPanic(t, tc.want, func() { Invalidate(f, tc.args...) })
		})
	}
	assert.Equal(t, 1, CacheOf(f).Len(), "nothing else was removed")

	t.Run("numeric conversion", func(t *testing.T) {
		g := Decorate(func(n int64) int64 { return n })
		g(1)
		assertMemoPanic(t, "float64(1.5), does not convert without loss to int64", func() { Invalidate(g, 1.5) })
		assertMemoPanic(t, "uint64(9223372036854775808)", func() { Invalidate(g, uint64(1<<63)) }) // does not fit an int64
		g(-1)
		assertMemoPanic(t, "uint64(18446744073709551615)", func() { Invalidate(g, uint64(1<<64-1)) }) // MaxUint64 is not -1
		assert.True(t, Invalidate(g, int8(-1)))
		u := Decorate(func(n uint64) uint64 { return n })
		u(1<<64 - 1)
		assertMemoPanic(t, "int(-1), does not convert without loss to uint64", func() { Invalidate(u, -1) })
		assert.True(t, Invalidate(u, uint64(1<<64-1)))
		assert.True(t, Invalidate(g, 1), "int 1 for an int64 parameter")
		g(1)
		assert.True(t, Invalidate(g, int64(1)))
		g(300)
		assert.True(t, Invalidate(g, float64(300)), "a float that is an integer")
	})

	t.Run("context left out", func(t *testing.T) {
		g := Decorate(func(ctx context.Context, k string) (int, error) { return len(k), nil })
		_, err := g(context.Background(), "abc")
		require.NoError(t, err)
		assertMemoPanic(t, "the parameters (string), the context left out", func() { Invalidate(g, context.Background(), "abc") })
		assert.True(t, Invalidate(g, "abc"))
	})

	t.Run("interface and pointer parameters", func(t *testing.T) {
		g := Decorate(func(v any, p *int) int { return 1 })
		x := 5
		g(int64(3), &x)
		assert.False(t, Invalidate(g, 3, &x), "int(3) is not int64(3) for an any parameter")
		assert.False(t, Invalidate(g, int64(3), new(int)), "another pointer")
		assert.True(t, Invalidate(g, int64(3), &x))
		g(nil, nil)
		assert.True(t, Invalidate(g, nil, nil))
	})
}

func TestDecorateClearAll(t *testing.T) {
	// Not parallel: ClearAll clears every cache.
	//
	// Cache.Clear stops the cache's expiry timer, and stopping a timer
	// made in a synctest bubble from outside it is a fatal error: collect
	// the decorated functions of finished bubbled tests first.
	runtime.GC()
	f := Decorate(func(x int) int { return x })
	g := Decorate(func(s string) string { return s }, WithTTL(time.Hour))
	f(1)
	f(1)
	g("a")
	ClearAll()
	assert.Zero(t, CacheOf(f).Len())
	assert.Zero(t, CacheOf(g).Len())
	assert.Zero(t, CacheOf(f).Stats().Hits, "statistics are reset")
	assert.Zero(t, CacheOf(f).Stats().TotalCalls)
	assert.Equal(t, 1, f(1))
	assert.Equal(t, 1, CacheOf(f).Len(), "usable after")
}

func TestDecorateTimesEveryExecution(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fail := errors.New("fail")
		f := Decorate(func(d time.Duration, mode string) (int, error) {
			time.Sleep(d)
			switch mode {
			case "error":
				return 0, fail
			case "panic":
				panic("boom")
			}
			return 1, nil
		})
		_, err := f(10*time.Millisecond, "")
		require.NoError(t, err)
		_, err = f(30*time.Millisecond, "")
		require.NoError(t, err)
		_, err = f(20*time.Millisecond, "error")
		require.ErrorIs(t, err, fail)
		assert.Equal(t, "boom", dtPanicMessage(t, func() { _, _ = f(5*time.Millisecond, "panic") }))
		_, err = f(10*time.Millisecond, "") // a hit: no execution
		require.NoError(t, err)

		st := CacheOf(f).Stats()
		assert.EqualValues(t, 4, st.TotalCalls, "executions")
		assert.EqualValues(t, 2, st.Failures, "an error and a panic")
		assert.EqualValues(t, 1, st.Hits)
		assert.Equal(t, 5*time.Millisecond, st.MinTime)
		assert.Equal(t, 30*time.Millisecond, st.MaxTime)
		assert.Equal(t, 65*time.Millisecond, st.TotalTime)
		assert.Equal(t, 65*time.Millisecond/4, st.AvgTime())
		assert.LessOrEqual(t, st.MinTime, st.AvgTime())
		assert.LessOrEqual(t, st.AvgTime(), st.MaxTime)
	})
}

func TestDecorateRegistryDoesNotLeak(t *testing.T) {
	// Not parallel: it counts every decorated function.
	before := dtRegistryLen()
	func() {
		fs := make([]func(int) int, 1000)
		for i := range fs {
			fs[i] = Decorate(func(x int) int { return x + i })
			fs[i](1)
		}
		assert.GreaterOrEqual(t, dtRegistryLen(), len(fs))
		runtime.KeepAlive(fs)
	}()
	assert.True(t, dtGCUntil(func() bool { return dtRegistryLen() <= before }),
		"registry: %d entries, %d before", dtRegistryLen(), before)
}

func TestDecorateStartsNoGoroutine(t *testing.T) {
	// Not parallel: it counts goroutines.
	runtime.GC()
	before := dtGoroutines()
	fs := make([]func(int) int, 1000)
	for i := range fs {
		fs[i] = Decorate(func(x int) int { return x * i })
		assert.Equal(t, 2*i, fs[i](2))
	}
	// The runtime's cleanup goroutines may come and go meanwhile (they
	// are not counted); a goroutine per function would stay.
	assert.LessOrEqual(t, dtGoroutines(), before)
	runtime.KeepAlive(fs)
}
