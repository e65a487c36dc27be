package memo

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/engine"
)

// A FuncCtx miss whose context can never end (context.Background()) runs
// inline and, once its execution has ended and nobody joined it, reuses
// its in-flight record: the context the function got lets go of it
// (engine.Call.EndInline). Before, such a record (352 bytes) was allocated
// for every miss; now a miss allocates the entry and a 24-byte context.
func TestInlineContextMissReusesItsCall(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	const size = 1000
	fc := FuncCtx(func(_ context.Context, x int) (int, error) { return x * 2, nil }, WithMaxSize(size))
	next := 1 << 20
	for range 4 * size {
		next++
		_, _ = fc(context.Background(), next)
	}
	var before, after runtime.MemStats
	const misses = 2000
	runtime.ReadMemStats(&before)
	for range misses {
		next++
		r, _ := fc(context.Background(), next)
		benchSink += r
	}
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc) / misses
	t.Logf("a FuncCtx miss with context.Background(): %.0f bytes", per)
	assert.Less(t, per, 200.0, "the entry (96 bytes) and the context (24); not the in-flight record (352)")
}

// The context an inline execution's function got may outlive the
// execution (a goroutine the function started keeps it). Once the
// execution has ended, that context carries no execution: calls made with
// it are inside nothing (they join and coalesce as any call), and its
// record, reused for other keys meanwhile, is never reached through it.
// While the execution runs, the same context makes a call for its own key
// re-entrant (it runs on its own rather than wait on itself).
func TestInlineContextKeptAfterItsExecution(t *testing.T) {
	var kept []context.Context
	var mu sync.Mutex
	var self func(context.Context, int) (int, error)
	var reentrant atomic.Int64
	var deep atomic.Bool // one re-entrant call deep
	self = FuncCtx(func(ctx context.Context, x int) (int, error) {
		require.NotNil(t, ctx.Value(engine.FlightKey{}), "inside its execution, the context carries it")
		if x%10 == 0 && deep.CompareAndSwap(false, true) {
			// re-entrant: its own key, from inside; must not deadlock
			r, err := self(ctx, x)
			deep.Store(false)
			require.NoError(t, err)
			require.Equal(t, 3*x, r)
			reentrant.Add(1)
		}
		mu.Lock()
		kept = append(kept, ctx)
		mu.Unlock()
		return 3 * x, nil
	}, WithMaxSize(64))
	for x := range 100 {
		r, err := self(context.Background(), x)
		require.NoError(t, err)
		require.Equal(t, 3*x, r)
	}
	assert.Equal(t, int64(10), reentrant.Load())
	other := FuncCtx(func(_ context.Context, x int) (int, error) { return x + 1, nil })
	for i, ctx := range kept {
		if cl, ok := ctx.Value(engine.FlightKey{}).(*engine.Call); ok && cl != nil {
			t.Fatalf("context %d still carries an execution after it ended", i)
		}
		// Calls made with a kept context work as any: the right results,
		// for its own function's keys and another's.
		r, err := self(ctx, 1000+i)
		require.NoError(t, err)
		assert.Equal(t, 3*(1000+i), r)
		r, err = other(ctx, i)
		require.NoError(t, err)
		assert.Equal(t, i+1, r)
	}
}

// Goroutines that an inline execution starts with its context, and that
// outlive it, call memoized functions with that context while the record
// is detached and reused for other keys, racing with EndInline and
// Recycle: every result must be its own key's, no call may deadlock, and
// the race detector must see no use of a reused record. A context handed
// out while the execution ran (Value) pins the record, so that an
// execution it started as outer never sees it reused.
func TestInlineContextRacesItsRecycling(t *testing.T) {
	const workers, rounds, keys = 6, 400, 40
	var wrong atomic.Int64
	var bg sync.WaitGroup
	inner := FuncCtx(func(_ context.Context, x int) (int, error) { return 5*x + 2, nil }, WithMaxSize(8))
	var outer func(context.Context, int) (int, error)
	outer = FuncCtx(func(ctx context.Context, x int) (int, error) {
		switch x % 4 {
		case 0: // a goroutine that outlives the execution, with its context
			bg.Go(func() {
				for j := range 3 {
					if r, _ := inner(ctx, x+j); r != 5*(x+j)+2 {
						wrong.Add(1)
					}
					if r, _ := outer(ctx, (x+j+1)%keys); r != 7*((x+j+1)%keys) {
						wrong.Add(1)
					}
				}
			})
		case 1: // a nested call, its context carrying this execution
			if r, _ := inner(ctx, x); r != 5*x+2 {
				wrong.Add(1)
			}
		}
		return 7 * x, nil
	}, WithMaxSize(8))
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := range rounds {
				k := (g*131 + i*17) % keys
				if r, err := outer(context.Background(), k); err != nil || r != 7*k {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	bg.Wait()
	assert.Zero(t, wrong.Load(), "results of another key")
	st := CacheOf(outer).Stats()
	assert.Equal(t, st.Misses, st.Led+st.Coalesced+st.Abandoned, "every miss counted once: "+strconv.FormatUint(st.Misses, 10))
}

// The context of an inline execution that has ended is still inside the
// executions it was started inside: here o(1) calls in(1), whose function
// leaves a goroutine with its context and returns; o(1) then waits for
// that goroutine, which calls o(1) with in(1)'s context. That call is made
// from inside o(1)'s execution (the context derives from o(1)'s), so it
// must run on its own rather than wait on o(1), which waits on it. Once
// in(1)'s context let go of its ended execution it carried nothing, and
// the call joined o(1): a deadlock (which the bubble reports).
func TestInlineContextKeptIsInsideItsOuter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var o, in func(context.Context, int) (int, error)
		after, ready := make(chan struct{}), make(chan int)
		var nested atomic.Bool
		in = FuncCtx(func(ctx context.Context, k int) (int, error) {
			go func() {
				<-after // in(k) has returned: its execution has ended
				r, _ := o(ctx, k)
				ready <- r
			}()
			return k, nil
		})
		o = FuncCtx(func(ctx context.Context, k int) (int, error) {
			if !nested.CompareAndSwap(false, true) {
				return 100, nil // the re-entrant call, run on its own
			}
			_, _ = in(ctx, k)
			close(after)
			return <-ready + 1, nil
		})
		r, err := o(context.Background(), 1)
		assert.NoError(t, err)
		assert.Equal(t, 101, r)
	})
}
