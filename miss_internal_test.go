package memo

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
)

// TestMissAllocs guards the cost of a miss in a full cache, the steady
// state of a memoizer: a Func(int) int miss allocates the entry, which
// holds the result too (see engine.Hold), and nothing else: no boxed
// result, no in-flight record (recycled when nobody joined it), no request
// or closure. Func2's and FuncErr's misses have the same bound; FuncCtx's,
// with a context that can never end, one more; Decorate of a func(int) int
// takes Func's path. Each run calls with a key never seen, so every run is
// a miss that stores and evicts. (Before the in-flight record was recycled
// and the request stopped making func values: 4, 5, 4, 6 and 11
// allocations; before results were held in their entries: 2, 2, 2, 3.)
func TestMissAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	const size = 1000
	fi := Func(func(x int) int { return x * 2 }, WithMaxSize(size))
	f2 := Func2(func(x, y int) int { return x + y }, WithMaxSize(size))
	fe := FuncErr(func(x int) (int, error) { return x * 2, nil }, WithMaxSize(size))
	fc := FuncCtx(func(_ context.Context, x int) (int, error) { return x * 2, nil }, WithMaxSize(size))
	fs := Func(func(x int) string { return "s" }, WithMaxSize(size))
	next := 1 << 20
	for range 4 * size { // full, and past the policy's first decisions
		next++
		benchSink += fi(next) + f2(next, 1) + len(fs(next))
		r, _ := fe(next)
		benchSink += r
		r, _ = fc(context.Background(), next)
		benchSink += r
	}
	atMost := func(want float64, what string, call func(k int)) {
		t.Helper()
		n := testing.AllocsPerRun(1000, func() {
			next++
			call(next)
		})
		t.Logf("%s: %v allocations", what, n)
		assert.LessOrEqual(t, n, want, what)
	}
	atMost(1.0, "a Func(int) int miss", func(k int) { benchSink += fi(k) })
	atMost(1.0, "a Func(int) string miss", func(k int) { benchSink += len(fs(k)) })
	atMost(1.0, "a Func2(int, int) int miss", func(k int) { benchSink += f2(k, 1) })
	atMost(1.0, "a FuncErr(int) (int, error) miss", func(k int) { r, _ := fe(k); benchSink += r })
	// A context that can never end: its leader runs the execution itself,
	// with Done made only for a joiner, under a context of its own that
	// lets go of the Call when the execution ends (so that it is
	// recycled): that context, and the entry holding the outcome.
	atMost(2.0, "a FuncCtx miss with context.Background()", func(k int) { r, _ := fc(context.Background(), k); benchSink += r })
	// Decorate of a func(int) int takes Func's path (decorateTyped).
	fd := Decorate(func(x int) int { return x * 2 }, WithMaxSize(size))
	for range 4 * size {
		next++
		benchSink += fd(next)
	}
	atMost(1.0, "a Decorate(func(int) int) miss", func(k int) { benchSink += fd(k) })
	st := CacheOf(fi).Stats()
	assert.Equal(t, uint64(size), uint64(CacheOf(fi).Len()))
	assert.Zero(t, st.Hits)
}

// Misses that recycle their in-flight record (nobody joined) interleave
// with misses that others join, on few keys and many goroutines, with
// evictions: every caller gets its own key's result. A record reused while
// a joiner still read it would hand that joiner another key's result (and
// the race detector would see the reuse).
func TestMissRecycledCallsConcurrent(t *testing.T) {
	const goroutines, calls, keys = 8, 2000, 24
	var runs atomic.Int64
	f := Func(func(x int) int {
		runs.Add(1)
		if x%3 == 0 {
			runtime.Gosched() // longer executions, which others join
		}
		return 1000 + 7*x
	}, WithMaxSize(keys/2), WithPolicy(policies.LRU))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				x := (i*(g+1) + g) % keys
				if got := f(x); got != 1000+7*x {
					t.Errorf("f(%d) = %d, want %d", x, got, 1000+7*x)
					return
				}
			}
		})
	}
	wg.Wait()
	st := CacheOf(f).Stats()
	assert.Equal(t, uint64(goroutines*calls), st.Hits+st.Misses)
	assert.Equal(t, st.Misses, st.Led+st.Coalesced)
	assert.Equal(t, uint64(runs.Load()), st.Led)
	t.Logf("%d misses, %d coalesced", st.Misses, st.Coalesced)
}
