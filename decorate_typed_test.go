package memo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Named func types: Decorate keeps them on the reflective path
// (reflect.MakeFunc), the reference the typed closures must match.
type (
	rvIntInt       func(int) int
	rvStringString func(string) string
	rvIntIntErr    func(int) (int, error)
)

// rvOutcome returns what f() returned, or the panic it raised, as text
// (a PanicError's stack left out).
func rvOutcome(f func() any) (s string) {
	defer func() {
		if r := recover(); r != nil {
			if pe, ok := r.(*PanicError); ok {
				r = fmt.Sprintf("PanicError(%v)", pe.Value)
			}
			s = fmt.Sprintf("panic: %v", r)
		}
	}()
	return fmt.Sprint(f())
}

// TestDecorateTypedMatchesReflective runs the same calls, with
// errors, panics, Invalidate and InvalidateContext with every kind of
// argument Invalidate documents (converted numbers, wrong types, wrong
// counts, nil), Clear and ClearAll, through a signature Decorate serves
// with a typed closure and through the same function under a named type
// (reflect.MakeFunc), and compares every answer, then the statistics.
func TestDecorateTypedMatchesReflective(t *testing.T) {
	var runs [2]atomic.Int64
	mk := func(i int) func(int) (int, error) {
		return func(x int) (int, error) {
			runs[i].Add(1)
			switch {
			case x < 0:
				return 0, errors.New("negative " + strconv.Itoa(x))
			case x == 13:
				panic("thirteen")
			}
			return 2*x + 1, nil
		}
	}
	typed := Decorate(mk(0), WithMaxSize(4))
	refl := Decorate(rvIntIntErr(mk(1)), WithMaxSize(4))
	fns := []func(int) (int, error){typed, refl}
	call := func(i, x int) func() any {
		return func() any { v, err := fns[i](x); return fmt.Sprint(v, err) }
	}
	inv := func(i int, args ...any) func() any {
		return func() any { return Invalidate([]any{typed, refl}[i], args...) }
	}
	invCtx := func(i int, args ...any) func() any {
		return func() any {
			ok, err := InvalidateContext(context.Background(), []any{typed, refl}[i], args...)
			return fmt.Sprint(ok, err)
		}
	}
	steps := []struct {
		name string
		do   func(i int) func() any
	}{
		{"f(1)", func(i int) func() any { return call(i, 1) }},
		{"f(1) again", func(i int) func() any { return call(i, 1) }},
		{"f(-1)", func(i int) func() any { return call(i, -1) }},
		{"f(-1) again", func(i int) func() any { return call(i, -1) }},
		{"f(13)", func(i int) func() any { return call(i, 13) }},
		{"f(13) again", func(i int) func() any { return call(i, 13) }},
		{"Invalidate(1)", func(i int) func() any { return inv(i, 1) }},
		{"Invalidate(1) again", func(i int) func() any { return inv(i, 1) }},
		{"f(1) after", func(i int) func() any { return call(i, 1) }},
		{"Invalidate(int64(1))", func(i int) func() any { return inv(i, int64(1)) }},
		{"f(1) after int64", func(i int) func() any { return call(i, 1) }},
		{"Invalidate(uint8(1))", func(i int) func() any { return inv(i, uint8(1)) }},
		{"f(2)", func(i int) func() any { return call(i, 2) }},
		{"Invalidate(2.0)", func(i int) func() any { return inv(i, 2.0) }},
		{"Invalidate(2.5)", func(i int) func() any { return inv(i, 2.5) }},
		{"Invalidate(\"2\")", func(i int) func() any { return inv(i, "2") }},
		{"Invalidate()", func(i int) func() any { return inv(i) }},
		{"Invalidate(2, 3)", func(i int) func() any { return inv(i, 2, 3) }},
		{"Invalidate(nil)", func(i int) func() any { return inv(i, nil) }},
		{"Invalidate(uint64 max)", func(i int) func() any { return inv(i, ^uint64(0)) }},
		{"f(3)", func(i int) func() any { return call(i, 3) }},
		{"InvalidateContext(3)", func(i int) func() any { return invCtx(i, 3) }},
		{"InvalidateContext(3) again", func(i int) func() any { return invCtx(i, 3) }},
		{"InvalidateContext(\"x\")", func(i int) func() any { return invCtx(i, "x") }},
		{"f(3) after", func(i int) func() any { return call(i, 3) }},
		{"f(4..9): evictions", func(i int) func() any {
			return func() any {
				var out []string
				for x := 4; x <= 9; x++ {
					out = append(out, fmt.Sprint(call(i, x)()))
				}
				return strings.Join(out, ",")
			}
		}},
		{"Clear", func(i int) func() any {
			return func() any { CacheOf([]any{typed, refl}[i]).Clear(); return nil }
		}},
		{"f(9) after Clear", func(i int) func() any { return call(i, 9) }},
		{"f(9) again", func(i int) func() any { return call(i, 9) }},
	}
	for _, st := range steps {
		before := [2]int64{runs[0].Load(), runs[1].Load()}
		a := rvOutcome(st.do(0))
		b := strings.ReplaceAll(rvOutcome(st.do(1)), "memo.rvIntIntErr", "func(int) (int, error)")
		assert.Equal(t, b, a, "%s: typed vs reflective answer", st.name)
		assert.Equal(t, runs[1].Load()-before[1], runs[0].Load()-before[0], "%s: runs", st.name)
	}
	sa, sb := CacheOf(typed).Stats(), CacheOf(refl).Stats()
	for _, s := range []*struct {
		name string
		a, b uint64
	}{
		{"Hits", sa.Hits, sb.Hits}, {"Misses", sa.Misses, sb.Misses}, {"Led", sa.Led, sb.Led},
		{"Coalesced", sa.Coalesced, sb.Coalesced}, {"Failures", sa.Failures, sb.Failures},
		{"TotalCalls", sa.TotalCalls, sb.TotalCalls}, {"Evictions", sa.Evictions, sb.Evictions},
	} {
		assert.Equal(t, s.b, s.a, "Stats.%s", s.name)
	}
	assert.Equal(t, sb.CurrentSize, sa.CurrentSize, "Stats.CurrentSize")
}

// TestDecorateTypedPanicsAndJoiners: through a typed closure, the
// caller that started an execution that panics sees the original value,
// a caller that waited on it a *PanicError; nothing is stored.
func TestDecorateTypedPanicsAndJoiners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered, release := make(chan struct{}), make(chan struct{})
		var runs atomic.Int64
		f := Decorate(func(s string) string {
			if runs.Add(1) == 1 {
				close(entered)
				<-release
				panic("bad " + s)
			}
			return s + "!"
		})
		leader := make(chan any, 1)
		go func() {
			defer func() { leader <- recover() }()
			f("k")
		}()
		<-entered
		joiner := make(chan any, 1)
		go func() {
			defer func() { joiner <- recover() }()
			f("k")
		}()
		synctest.Wait() // the joiner waits on the execution
		close(release)
		assert.Equal(t, "bad k", <-leader, "the leader's panic")
		var pe *PanicError
		j := <-joiner
		require.IsType(t, pe, j, "the joiner's panic")
		assert.Equal(t, "bad k", j.(*PanicError).Value)
		assert.Equal(t, "k!", f("k"), "a panic was stored")
		assert.Equal(t, int64(2), runs.Load())
	})
}

// TestDecorateTypedErrorTTL: WithErrorTTL stores an error result of
// a typed closure for its TTL, and no longer.
func TestDecorateTypedErrorTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		f := Decorate(func(s string) (string, error) {
			runs.Add(1)
			return "", errors.New("no " + s)
		}, WithErrorTTL(time.Second))
		_, err := f("a")
		require.EqualError(t, err, "no a")
		_, err = f("a")
		require.EqualError(t, err, "no a")
		assert.Equal(t, int64(1), runs.Load(), "the error was not stored")
		time.Sleep(2 * time.Second)
		_, err = f("a")
		require.EqualError(t, err, "no a")
		assert.Equal(t, int64(2), runs.Load(), "the error outlived its TTL")
	})
}

// probeCounter has a method value of a signature Decorate serves typed.
type probeCounter struct {
	base int
	runs atomic.Int64
}

func (c *probeCounter) Add(x int) int { c.runs.Add(1); return c.base + x }

// TestDecorateTypedNamesAndMethodValues: a typed closure's cache is
// listed by Caches under the decorated function's own symbol, or its
// WithName; method values of two receivers have caches of their own;
// ClearAll clears typed closures' caches.
func TestDecorateTypedNamesAndMethodValues(t *testing.T) {
	plain := Decorate(func(x int) string { return strconv.Itoa(x) })
	named := Decorate(func(x string) int { return len(x) }, WithName("typed-named"))
	reflPlain := Decorate(rvIntInt(func(x int) int { return x }))
	a, b := &probeCounter{base: 100}, &probeCounter{base: 200}
	fa, fb := Decorate(a.Add), Decorate(b.Add)
	listed := map[*Cache]string{}
	for name, c := range Caches() {
		listed[c] = name
	}
	assert.Equal(t, "typed-named", listed[CacheOf(named)])
	pn, rn := listed[CacheOf(plain)], listed[CacheOf(reflPlain)]
	assert.True(t, strings.HasPrefix(pn, "memo.TestDecorateTypedNamesAndMethodValues.func"), "typed closure listed as %q", pn)
	assert.True(t, strings.HasPrefix(rn, "memo.TestDecorateTypedNamesAndMethodValues.func"), "reflective listed as %q", rn)
	na, nb := listed[CacheOf(fa)], listed[CacheOf(fb)]
	assert.True(t, strings.HasPrefix(na, "memo.(*probeCounter).Add"), "method value listed as %q", na)
	assert.NotEqual(t, na, nb, "two method values' caches under one name")
	assert.NotSame(t, CacheOf(fa), CacheOf(fb))
	assert.Equal(t, 101, fa(1))
	assert.Equal(t, 201, fb(1))
	assert.Equal(t, 101, fa(1))
	assert.Equal(t, int64(1), a.runs.Load())
	assert.Equal(t, int64(1), b.runs.Load())
	ClearAll()
	assert.Equal(t, 101, fa(1))
	assert.Equal(t, int64(2), a.runs.Load(), "ClearAll left a typed closure's entry")
	assert.Equal(t, 0, CacheOf(plain).Len())
}

// TestDecorateTypedRejectsLikeReflective: an invalid option panics
// the same way through both paths (WithErrorTTL for a function without an
// error result, WithRefreshAfter, WithTTL below its minimum).
func TestDecorateTypedRejectsLikeReflective(t *testing.T) {
	for _, opts := range [][]Option{
		{WithErrorTTL(time.Second)},
		{WithTTL(time.Nanosecond)},
		{WithMaxSize(0)},
		{nil},
	} {
		a := rvOutcome(func() any { return Decorate(func(x int) int { return x }, opts...) != nil })
		b := rvOutcome(func() any { return Decorate(rvIntInt(func(x int) int { return x }), opts...) != nil })
		b = strings.ReplaceAll(b, "memo.rvIntInt", "func(int) int") // the named type's name
		assert.Equal(t, b, a)
		assert.True(t, strings.HasPrefix(a, "panic: memo:"), "%s", a)
	}
	_ = rvStringString(nil)
}

// TestDecorateTypedKeyLengths: string arguments of every length
// class (empty, short, at the getString bound of 127 and past it, past
// the key limit) give the same answers, runs and statistics through the
// typed closure and the reflective path.
func TestDecorateTypedKeyLengths(t *testing.T) {
	var runs [2]atomic.Int64
	mk := func(i int) func(string) string {
		return func(s string) string { runs[i].Add(1); return fmt.Sprint(len(s)) }
	}
	typed := Decorate(mk(0), WithMaxSize(64))
	refl := Decorate(rvStringString(mk(1)), WithMaxSize(64))
	for _, n := range []int{0, 1, 15, 16, 23, 24, 25, 127, 128, 200, 5000, 70000, 1 << 21} {
		s := strings.Repeat("x", n)
		for range 2 {
			assert.Equal(t, refl(s), typed(s), "len %d", n)
		}
		assert.Equal(t, runs[1].Load(), runs[0].Load(), "runs after len %d", n)
		assert.Equal(t, Invalidate(refl, s), Invalidate(typed, s), "Invalidate, len %d", n)
	}
	sa, sb := CacheOf(typed).Stats(), CacheOf(refl).Stats()
	assert.Equal(t, sb.Hits, sa.Hits, "Hits")
	assert.Equal(t, sb.Misses, sa.Misses, "Misses")
	assert.Equal(t, sb.Uncacheable, sa.Uncacheable, "Uncacheable")
}

// TestDecorateTypedResultsToOptions: WithCacheIf and WithTTLFunc
// see the same results ([]any, the error included, nil when there is
// none) through the typed closure as through the reflective path, and
// decide the same.
func TestDecorateTypedResultsToOptions(t *testing.T) {
	var seen [2][]string
	opts := func(i int) []Option {
		return []Option{
			WithCacheIf(func(r []any) bool {
				seen[i] = append(seen[i], fmt.Sprintf("if %#v", r))
				return r[0] != 4
			}),
			WithTTLFunc(func(r []any) time.Duration {
				seen[i] = append(seen[i], fmt.Sprintf("ttl %#v", r))
				return time.Hour
			}),
		}
	}
	fn := func(x int) (int, error) {
		if x < 0 {
			return 0, errors.New("neg")
		}
		return 2 * x, nil
	}
	typed := Decorate(fn, opts(0)...)
	refl := Decorate(rvIntIntErr(fn), opts(1)...)
	for _, x := range []int{1, 1, 2, -1, -1} {
		va, ea := typed(x)
		vb, eb := refl(x)
		assert.Equal(t, vb, va)
		assert.Equal(t, fmt.Sprint(eb), fmt.Sprint(ea))
	}
	assert.Equal(t, seen[1], seen[0])
	sa, sb := CacheOf(typed).Stats(), CacheOf(refl).Stats()
	assert.Equal(t, sb.Rejected, sa.Rejected)
	assert.Equal(t, sb.Hits, sa.Hits)
}
