package memo

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// TestDecorateCommonSignaturesTyped checks that Decorate serves the
// commonest signatures through Func's and FuncErr's typed closures, whose
// hits allocate nothing (reflect.MakeFunc's allocate their argument and
// result slices), with Decorate's behaviour: results, errors not stored,
// CacheOf and Invalidate; and that a named func type, WithKey and the
// other shapes keep the reflective path.
func TestDecorateCommonSignaturesTyped(t *testing.T) {
	var runs atomic.Int64
	fi := Decorate(func(x int) int { runs.Add(1); return 2 * x })
	fis := Decorate(func(x int) string { runs.Add(1); return strconv.Itoa(x) })
	fs := Decorate(func(s string) string { runs.Add(1); return s + "!" })
	fsi := Decorate(func(s string) int { runs.Add(1); return len(s) })
	fie := Decorate(func(x int) (int, error) {
		runs.Add(1)
		if x < 0 {
			return 0, errors.New("negative")
		}
		return x + 1, nil
	})
	fse := Decorate(func(s string) (string, error) { runs.Add(1); return s + "?", nil })
	fise := Decorate(func(x int) (string, error) { runs.Add(1); return strconv.Itoa(x), nil })
	fsie := Decorate(func(s string) (int, error) { runs.Add(1); return len(s), nil })
	assert.Equal(t, 42, fi(21))
	assert.Equal(t, "21", fis(21))
	assert.Equal(t, "a!", fs("a"))
	assert.Equal(t, 3, fsi("abc"))
	v, err := fie(1)
	assert.Equal(t, 2, v)
	assert.NoError(t, err)
	sv, err := fse("b")
	assert.Equal(t, "b?", sv)
	assert.NoError(t, err)
	sv, err = fise(7)
	assert.Equal(t, "7", sv)
	assert.NoError(t, err)
	v, err = fsie("four")
	assert.Equal(t, 4, v)
	assert.NoError(t, err)
	hits := map[string]func(){ // the calls above again: hits
		"func(int) int":                func() { benchSink += fi(21) },
		"func(int) string":             func() { benchSink += len(fis(21)) },
		"func(string) string":          func() { benchSink += len(fs("a")) },
		"func(string) int":             func() { benchSink += fsi("abc") },
		"func(int) (int, error)":       func() { v, _ := fie(1); benchSink += v },
		"func(string) (string, error)": func() { v, _ := fse("b"); benchSink += len(v) },
		"func(int) (string, error)":    func() { v, _ := fise(7); benchSink += len(v) },
		"func(string) (int, error)":    func() { v, _ := fsie("four"); benchSink += v },
	}
	before := runs.Load()
	for name, hit := range hits {
		if !raceEnabled() { // sync.Pool drops items under the race detector
			assert.Zero(t, testing.AllocsPerRun(100, hit), "a hit of Decorate(%s) allocates", name)
		}
		hit()
	}
	assert.Equal(t, before, runs.Load(), "a hit ran the function")
	for _, f := range []any{fi, fis, fs, fsi, fie, fse, fise, fsie} {
		require.NotNil(t, CacheOf(f))
	}
	// An error is returned, not stored.
	before = runs.Load()
	_, err = fie(-1)
	require.Error(t, err)
	_, err = fie(-1)
	require.Error(t, err)
	assert.Equal(t, before+2, runs.Load(), "an error result was stored")
	// Invalidate reaches the typed path's entries.
	before = runs.Load()
	assert.True(t, Invalidate(fi, 21))
	assert.Equal(t, 42, fi(21))
	assert.Equal(t, before+1, runs.Load())

	// A named func type keeps its type, through MakeFunc.
	type square func(int) int
	sq := Decorate(square(func(x int) int { return x * x }))
	assert.Equal(t, 9, sq(3))
	assert.Equal(t, 9, sq(3))
	assert.Equal(t, uint64(1), CacheOf(sq).Stats().Hits)
	// WithKey keeps the reflective path, which applies it.
	byParity := Decorate(func(x int) int { return x % 2 }, WithKey(func(args []any) any { return args[0].(int) % 2 }))
	assert.Equal(t, 1, byParity(3))
	assert.Equal(t, 1, byParity(5))
	assert.Equal(t, uint64(1), CacheOf(byParity).Stats().Hits)
}
