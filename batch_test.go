package memo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hangAfter bounds every wait of the batch tests that run outside a
// synctest bubble: a call that has not returned by then is a hang (a
// waiter never woken), reported as a failure rather than a test binary
// killed by -timeout. It is a liveness bound, not a speed bound.
const hangAfter = 2 * time.Minute

// live returns a context that ends after hangAfter, for the calls of a
// test outside a bubble.
func live(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
	t.Cleanup(cancel)
	return ctx
}

// loads records the calls of a batch function: the keys of each call, in
// order of the calls' start.
type loads struct {
	mu    sync.Mutex
	calls [][]int
}

func (l *loads) add(keys []int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, slices.Sorted(slices.Values(keys)))
}

// snapshot returns the calls so far.
func (l *loads) snapshot() [][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// perKey counts how many times fn was asked for each key.
func (l *loads) perKey() map[int]int {
	n := map[int]int{}
	for _, c := range l.snapshot() {
		for _, k := range c {
			n[k]++
		}
	}
	return n
}

// value is what the test batch functions load for key k.
func value(k int) string { return fmt.Sprintf("v%d", k) }

// values returns the loaded map for keys.
func values(keys ...int) map[int]string {
	m := make(map[int]string, len(keys))
	for _, k := range keys {
		m[k] = value(k)
	}
	return m
}

// span returns the keys lo..hi-1.
func span(lo, hi int) []int {
	ks := make([]int, 0, hi-lo)
	for k := lo; k < hi; k++ {
		ks = append(ks, k)
	}
	return ks
}

// recording returns a batch function that records its calls in l and
// loads every key it is asked.
func recording(l *loads) func(context.Context, []int) (map[int]string, error) {
	return func(_ context.Context, keys []int) (map[int]string, error) {
		l.add(keys)
		return values(keys...), nil
	}
}

// The acceptance scenario of issue 21: 64 goroutines call overlapping
// batches of 100 keys drawn from 1,000, all at once, on a cold cache. Each
// key is loaded by fn exactly once in all (cached keys are served, keys in
// flight are joined), every caller gets every one of its keys' values, and
// fn is never given a key twice in one call.
func TestBatchRunsEachKeyOnce(t *testing.T) {
	var l loads
	f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
		time.Sleep(time.Millisecond) // a slow source widens the overlap
		return recording(&l)(ctx, keys)
	}, memo.WithMaxSize(2000))
	ctx := live(t)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			keys := make([]int, 100)
			for i := range keys {
				keys[i] = (g*37 + i*7) % 1000 // overlapping windows of the 1,000 keys
			}
			<-start
			got, err := f(ctx, keys)
			if !assert.NoError(t, err) {
				return
			}
			assert.Equal(t, values(keys...), got, "goroutine %d", g)
		})
	}
	close(start)
	wg.Wait()
	asked := l.perKey()
	for k, n := range asked {
		assert.Equal(t, 1, n, "key %d loaded %d times", k, n)
	}
	for _, c := range l.snapshot() {
		assert.Equal(t, slices.Compact(slices.Clone(c)), c, "fn was given a key twice in one call: %v", c)
	}
}

// Batch and Single share their entries: keys a batch loaded are hits for
// Single, and a key Single loaded is a hit for the batch, in both
// directions without calling fn again.
func TestBatchAndSingleShareEntries(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l))
	one := memo.Single(f)
	ctx := live(t)

	got, err := f(ctx, []int{1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, values(1, 2, 3), got)
	v, err := one(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, value(2), v)
	assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 1}, l.perKey(), "Single hits the batch's entry")

	v, err = one(ctx, 7)
	require.NoError(t, err)
	assert.Equal(t, value(7), v)
	got, err = f(ctx, []int{3, 7})
	require.NoError(t, err)
	assert.Equal(t, values(3, 7), got)
	assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 1, 7: 1}, l.perKey(), "the batch hits Single's entry")

	s := memo.CacheOf(f).Stats()
	assert.EqualValues(t, 3, s.Hits, "2 by Single, 3 and 7 by the batch")
	assert.Same(t, memo.CacheOf(f), memo.CacheOf(one), "one cache behind both forms")
}

// A call calls fn once for the keys it misses, and only those: cached
// keys are served without asking fn again.
func TestBatchCallsFnOnceForTheMisses(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l))
	ctx := live(t)
	_, err := f(ctx, span(0, 10))
	require.NoError(t, err)
	got, err := f(ctx, span(0, 20))
	require.NoError(t, err)
	assert.Equal(t, values(span(0, 20)...), got)
	assert.Equal(t, [][]int{span(0, 10), span(10, 20)}, l.snapshot(), "one call of fn per batch call, for its misses")
}

// WithBatchWindow merges the misses of concurrent callers: while one call
// of fn runs, eight Single calls of eight other keys are gathered and go
// to fn in one call once the window's wait has passed (2 calls of fn in
// all, not 9).
func TestBatchWindowMergesConcurrentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		gate := make(chan struct{})
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if slices.Contains(keys, 0) {
				<-gate
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(5*time.Millisecond, 0))
		one := memo.Single(f)
		ctx := context.Background()
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := one(ctx, 0)
			assert.NoError(t, err)
		})
		synctest.Wait() // fn runs for key 0 and blocks
		for k := 1; k <= 8; k++ {
			wg.Go(func() {
				v, err := one(ctx, k)
				assert.NoError(t, err)
				assert.Equal(t, value(k), v)
			})
		}
		synctest.Wait()
		time.Sleep(5 * time.Millisecond) // the window's wait, on the bubble's clock
		synctest.Wait()
		close(gate)
		wg.Wait()
		assert.Equal(t, [][]int{{0}, span(1, 9)}, l.snapshot(), "the eight single calls are one call of fn")
	})
}

// WithBatchWindow never delays a call when no other call of fn is
// pending: a lone Single call and a lone batch call return at once on the
// bubble's clock, although the window's wait is an hour.
func TestBatchWindowNeverDelaysALoneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		f := memo.Batch(recording(&l), memo.WithBatchWindow(time.Hour, 100))
		start := time.Now()
		v, err := memo.Single(f)(context.Background(), 1)
		require.NoError(t, err)
		assert.Equal(t, value(1), v)
		got, err := f(context.Background(), []int{2, 3})
		require.NoError(t, err)
		assert.Equal(t, values(2, 3), got)
		assert.Zero(t, time.Since(start), "no call waited for the window")
	})
}

// A caller with a 10 ms deadline leaves at its deadline with
// context.DeadlineExceeded, while the execution goes on for a caller
// without one, which gets every value once fn returns.
func TestBatchCallerLeavesOnItsOwnDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var l loads
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			<-release // deaf to its context
			return values(keys...), nil
		})
		type result struct {
			got map[int]string
			err error
			at  time.Duration
		}
		start := time.Now()
		short, long := make(chan result, 1), make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			got, err := f(ctx, []int{1, 2, 3})
			short <- result{got, err, time.Since(start)}
		}()
		synctest.Wait()
		go func() {
			got, err := f(context.Background(), []int{1, 2, 3})
			long <- result{got, err, time.Since(start)}
		}()
		r := <-short
		assert.Nil(t, r.got)
		assert.ErrorIs(t, r.err, context.DeadlineExceeded)
		assert.Equal(t, 10*time.Millisecond, r.at, "the short caller left at its deadline")
		select {
		case r := <-long:
			t.Fatalf("the long caller returned before fn did: %v %v", r.got, r.err)
		default:
		}
		close(release)
		r = <-long
		require.NoError(t, r.err)
		assert.Equal(t, values(1, 2, 3), r.got)
		assert.Equal(t, 3, len(l.perKey()), "each key loaded once")
		for k, n := range l.perKey() {
			assert.Equal(t, 1, n, "key %d", k)
		}
	})
}

var errSource = errors.New("source down")

// An error from fn fails the keys that call of fn was asked for, and only
// those: keys served from the cache in the same call still have their
// values, and the error reaches the caller as a memo.KeyErrors holding it
// for each failed key.
func TestBatchErrorFailsOnlyItsKeys(t *testing.T) {
	down := false
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		if down {
			return nil, errSource
		}
		return values(keys...), nil
	})
	ctx := live(t)
	_, err := f(ctx, []int{1, 2})
	require.NoError(t, err)
	down = true
	got, err := f(ctx, []int{1, 2, 3, 4})
	assert.Equal(t, values(1, 2), got, "the cached keys still succeed")
	require.ErrorIs(t, err, errSource)
	var ke memo.KeyErrors[int]
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, memo.KeyErrors[int]{3: errSource, 4: errSource}, ke)
	assert.Contains(t, err.Error(), "memo:")

	_, err = memo.Single(f)(ctx, 3)
	assert.Equal(t, errSource, err, "Single returns the key's own error")
	down = false
	got, err = f(ctx, []int{3, 4})
	require.NoError(t, err, "errors are not stored")
	assert.Equal(t, values(3, 4), got)
}

// fn fails some keys only by returning its partial map with a
// memo.KeyErrors: the keys in the map succeed, each key in the KeyErrors
// fails with its own error (not stored: the next call asks fn again for
// those only), and a key in both has failed.
func TestBatchKeyErrorsFailSomeKeys(t *testing.T) {
	var l loads
	errOdd := errors.New("odd key")
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		l.add(keys)
		m, ke := values(keys...), memo.KeyErrors[int]{}
		for _, k := range keys {
			if k%2 == 1 {
				ke[k] = fmt.Errorf("key %d: %w", k, errOdd)
			}
		}
		return m, fmt.Errorf("loading: %w", ke) // wrapped: found with errors.As
	})
	ctx := live(t)
	got, err := f(ctx, []int{1, 2, 3, 4})
	assert.Equal(t, values(2, 4), got)
	var ke memo.KeyErrors[int]
	require.ErrorAs(t, err, &ke)
	assert.ElementsMatch(t, []int{1, 3}, keysOf(ke))
	assert.EqualError(t, ke[1], "key 1: odd key")
	assert.ErrorIs(t, err, errOdd)

	_, err = memo.Single(f)(ctx, 3)
	assert.EqualError(t, err, "key 3: odd key")
	before := len(l.perKey())
	_, _ = f(ctx, []int{1, 2, 3, 4})
	asked := l.perKey()
	assert.Equal(t, before, len(asked))
	assert.Equal(t, 1, asked[2], "the keys that succeeded were stored")
	assert.Equal(t, 3, asked[3], "the failed keys were asked again each time")
}

func keysOf[K comparable, V any](m map[K]V) []K {
	var ks []K
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A panic in fn fails every key of that call of fn with a
// *memo.PanicError, for every caller waiting on any of them (the caller
// that started the call and a caller that joined two of its keys), with
// no hang; the batch function stays usable.
func TestBatchPanicFailsEveryWaitingKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		panicking := true
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			<-gate
			if panicking {
				panic("boom")
			}
			return values(keys...), nil
		})
		errs := make([]error, 2)
		got := make([]map[int]string, 2)
		var wg sync.WaitGroup
		wg.Go(func() { got[0], errs[0] = f(context.Background(), []int{1, 2, 3}) })
		synctest.Wait()
		wg.Go(func() { got[1], errs[1] = f(context.Background(), []int{2, 3, 4}) })
		synctest.Wait()
		close(gate)
		wg.Wait()
		for i, want := range [][]int{{1, 2, 3}, {2, 3, 4}} {
			assert.Empty(t, got[i])
			var ke memo.KeyErrors[int]
			require.ErrorAs(t, errs[i], &ke, "caller %d", i)
			assert.ElementsMatch(t, want, keysOf(ke), "caller %d", i)
			for k, err := range ke {
				var pe *memo.PanicError
				if assert.ErrorAs(t, err, &pe, "caller %d key %d", i, k) {
					assert.Equal(t, "boom", pe.Value)
				}
			}
		}
		panicking = false
		m, err := f(context.Background(), []int{1, 4})
		require.NoError(t, err, "nothing was stored, and the function is usable")
		assert.Equal(t, values(1, 4), m)
	})
}

// WithMaxBatch(n) splits: fn is never given more than n keys, and a call
// missing 95 keys with n = 10 calls fn ⌈95/10⌉ = 10 times.
func TestBatchMaxBatchSplits(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l), memo.WithMaxBatch(10))
	got, err := f(live(t), span(0, 95))
	require.NoError(t, err)
	assert.Equal(t, values(span(0, 95)...), got)
	calls := l.snapshot()
	for _, c := range calls {
		assert.LessOrEqual(t, len(c), 10, "fn given %d keys", len(c))
	}
	for k, n := range l.perKey() {
		assert.Equal(t, 1, n, "key %d", k)
	}
	assert.Len(t, calls, 10)
}

// Duplicate keys in a call collapse: fn sees each key once, and the
// result holds it once.
func TestBatchDuplicatesCollapse(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l))
	got, err := f(live(t), []int{5, 1, 5, 1, 1, 2})
	require.NoError(t, err)
	assert.Equal(t, values(1, 2, 5), got)
	assert.Equal(t, map[int]int{1: 1, 2: 1, 5: 1}, l.perKey(), "fn is asked for each key once")
}

// A key fn leaves out of its map is absent: not in the batch's result,
// memo.ErrNotFound from Single, and not stored (the next call asks fn
// again), unless WithErrorTTL asks for negative entries: then the absence
// is remembered for the error TTL.
func TestBatchAbsentKeys(t *testing.T) {
	evens := func(l *loads) func(context.Context, []int) (map[int]string, error) {
		return func(_ context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			m := map[int]string{}
			for _, k := range keys {
				if k%2 == 0 {
					m[k] = value(k)
				}
			}
			for _, k := range keys {
				if k > 0 {
					m[-k] = "never asked" // ignored: fn was not asked for -k
				}
			}
			return m, nil
		}
	}
	t.Run("not stored", func(t *testing.T) {
		var l loads
		f := memo.Batch(evens(&l))
		got, err := f(context.Background(), []int{1, 2, 3})
		require.NoError(t, err, "absent is not an error")
		assert.Equal(t, values(2), got)
		_, err = memo.Single(f)(context.Background(), 3)
		assert.ErrorIs(t, err, memo.ErrNotFound)
		_, err = memo.Single(f)(context.Background(), -1)
		assert.ErrorIs(t, err, memo.ErrNotFound, "the value fn was not asked for was not stored")
		asked := l.perKey()
		assert.Equal(t, 1, asked[2])
		assert.Equal(t, 2, asked[3], "asked again")
	})
	t.Run("negative entries", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var l loads
			f := memo.Batch(evens(&l), memo.WithErrorTTL(time.Minute))
			_, err := f(context.Background(), []int{1, 2, 3})
			require.NoError(t, err)
			got, err := f(context.Background(), []int{1, 2, 3})
			require.NoError(t, err)
			assert.Equal(t, values(2), got)
			_, err = memo.Single(f)(context.Background(), 3)
			assert.ErrorIs(t, err, memo.ErrNotFound)
			assert.Equal(t, map[int]int{1: 1, 2: 1, 3: 1}, l.perKey(), "the absence was stored")
			time.Sleep(time.Minute + time.Millisecond)
			_, err = f(context.Background(), []int{1})
			require.NoError(t, err)
			assert.Equal(t, 2, l.perKey()[1], "for the error TTL only")
		})
	})
}

// Invalidate(batchFn, key) drops that key's entry only (and so does
// Invalidate on the Single form): the next call asks fn for that key
// alone.
func TestBatchInvalidateDropsOneKey(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l))
	one := memo.Single(f)
	ctx := live(t)
	_, err := f(ctx, []int{1, 2, 3})
	require.NoError(t, err)
	assert.True(t, memo.Invalidate(f, 2))
	assert.False(t, memo.Invalidate(f, 2), "already gone")
	assert.True(t, memo.Invalidate(one, 3))
	ok, err := memo.InvalidateContext(ctx, f, 1)
	require.NoError(t, err)
	assert.True(t, ok)
	got, err := f(ctx, []int{1, 2, 3, 4})
	require.NoError(t, err)
	assert.Equal(t, values(1, 2, 3, 4), got)
	assert.Equal(t, map[int]int{1: 2, 2: 2, 3: 2, 4: 1}, l.perKey())
}

// CacheOf, Caches, WithName, WithTTL and ClearAll work on a batch
// function as on any memoized function.
func TestBatchCacheOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		f := memo.Batch(recording(&l), memo.WithName("batch-users"), memo.WithTTL(time.Minute), memo.WithMaxSize(100))
		c := memo.CacheOf(f)
		require.NotNil(t, c)
		_, err := f(context.Background(), []int{1, 2, 3})
		require.NoError(t, err)
		assert.Equal(t, 3, c.Len(), "one entry per key")
		s := c.Stats()
		assert.Equal(t, time.Minute, s.TTL)
		assert.Equal(t, 100, s.MaxSize)
		listedAs := ""
		for name, lc := range memo.Caches() {
			if lc == c {
				listedAs = name
			}
		}
		// "#2" and on while a cache of an earlier run (-count) is live.
		assert.Regexp(t, `^batch-users(#\d+)?$`, listedAs, "Caches lists it by its name")

		time.Sleep(time.Minute + time.Millisecond)
		_, err = f(context.Background(), []int{1})
		require.NoError(t, err)
		assert.Equal(t, 2, l.perKey()[1], "the TTL ended the entry")

		memo.ClearAll()
		assert.Zero(t, c.Len())
		_, err = f(context.Background(), []int{2})
		require.NoError(t, err)
		assert.Equal(t, 2, l.perKey()[2], "ClearAll dropped the entries")
	})
}

// Without WithName, Caches names a batch function's cache by the batch
// function the user wrote, not by memo's wrapper around it.
func TestBatchCacheIsNamedByItsFunction(t *testing.T) {
	f := memo.Batch(loadUsers)
	c := memo.CacheOf(f)
	for name, lc := range memo.Caches() {
		if lc == c {
			assert.Regexp(t, `^memo_test\.loadUsers(#\d+)?$`, name)
			return
		}
	}
	t.Fatal("Caches does not list the batch function's cache")
}

func loadUsers(_ context.Context, ids []int) (map[int]string, error) { return values(ids...), nil }

type ctxKey string

// The execution runs under a context that keeps the values of every
// caller whose keys it loads and the latest of their deadlines, and that
// is cancelled only when all of them have gone: here two callers' misses,
// gathered by WithBatchWindow into one call of fn.
func TestBatchExecutionContextMergesCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		type seen struct {
			a, b     any
			deadline time.Time
		}
		merged := make(chan seen, 1)
		live := make(chan error, 1)
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			if slices.Contains(keys, 0) {
				<-gate
				return values(keys...), nil
			}
			if slices.Contains(keys, 1) {
				dl, _ := ctx.Deadline()
				merged <- seen{ctx.Value(ctxKey("a")), ctx.Value(ctxKey("b")), dl}
				time.Sleep(2 * time.Second) // past the first caller's deadline
				live <- ctx.Err()
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Millisecond, 0))
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = f(context.Background(), []int{0}) }) // holds fn, so the window opens
		synctest.Wait()
		ctxA, cancelA := context.WithDeadline(context.WithValue(context.Background(), ctxKey("a"), 1), t0.Add(time.Second))
		defer cancelA()
		ctxB, cancelB := context.WithDeadline(context.WithValue(context.Background(), ctxKey("b"), 2), t0.Add(5*time.Second))
		defer cancelB()
		wg.Go(func() {
			_, err := f(ctxA, []int{1})
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
		wg.Go(func() {
			_, err := f(ctxB, []int{2})
			assert.ErrorIs(t, err, context.Canceled)
		})
		s := <-merged
		assert.Equal(t, 1, s.a, "the first caller's value")
		assert.Equal(t, 2, s.b, "the second caller's value")
		assert.Equal(t, t0.Add(5*time.Second), s.deadline, "the latest deadline")
		assert.NoError(t, <-live, "still live after the first caller left: the second waits")
		cancelB()
		close(gate)
		wg.Wait()
	})
}

// A caller that leaves does not cancel an execution another caller still
// waits on: the call of fn holding key 2, started by a caller that then
// leaves, stays live while a second caller waits for key 2, and is
// cancelled once that caller leaves too.
func TestBatchExecutionCancelledOnlyWhenEveryCallerHasGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctxs := make(chan context.Context, 1)
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			if slices.Contains(keys, 2) {
				ctxs <- ctx
			}
			<-ctx.Done()
			return nil, ctx.Err()
		})
		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(ctxA, []int{1, 2})
			assert.ErrorIs(t, err, context.Canceled)
		})
		exec := <-ctxs
		wg.Go(func() {
			_, err := f(ctxB, []int{2})
			assert.ErrorIs(t, err, context.Canceled)
		})
		synctest.Wait()
		cancelA()
		synctest.Wait()
		assert.NoError(t, exec.Err(), "the second caller still waits for key 2")
		cancelB()
		synctest.Wait()
		assert.ErrorIs(t, exec.Err(), context.Canceled, "every caller has gone")
		wg.Wait()
	})
}

// A key whose execution ends with a deadline error that is not its
// caller's is retried for a caller with time left: the caller that
// started key 1 has a 10 ms deadline and fn honours it; a caller without a
// deadline that joined key 1 gets key 1 from a fresh call of fn, and no
// error.
func TestBatchRetriesAKeyFailedByAnotherCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if _, ok := ctx.Deadline(); ok {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return values(keys...), nil
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			_, err := f(ctx, []int{1})
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
		synctest.Wait()
		got, err := f(context.Background(), []int{1, 2})
		require.NoError(t, err, "the other caller's deadline is not this caller's failure")
		assert.Equal(t, values(1, 2), got)
		assert.Equal(t, 2, l.perKey()[1], "key 1 ran again for the caller with time left")
		wg.Wait()
	})
}

// Refresh-ahead for batches: ten keys loaded together fall due together,
// and the hits that find them due start one background call of fn for all
// ten, not ten calls; the hits return the old values at once, and later
// calls get the refreshed ones.
func TestBatchRefreshAheadIsOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			asked := l.perKey()
			m := map[int]string{}
			for _, k := range keys {
				m[k] = fmt.Sprintf("v%d.%d", k, asked[k]) // v<key>.<load of the key>
			}
			return m, nil
		}, memo.WithTTL(time.Hour), memo.WithRefreshAfter(time.Minute))
		ctx := context.Background()
		_, err := f(ctx, span(0, 10))
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		start := time.Now()
		for k := range 10 {
			v, err := memo.Single(f)(ctx, k) // ten hits on due entries
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("v%d.1", k), v, "the old value at once")
		}
		assert.Zero(t, time.Since(start))
		time.Sleep(time.Second) // any refresh window, on the bubble's clock
		synctest.Wait()
		assert.Equal(t, [][]int{span(0, 10), span(0, 10)}, l.snapshot(), "one refresh call for the ten due keys")
		got, err := f(ctx, []int{0, 9})
		require.NoError(t, err)
		assert.Equal(t, "v0.2", got[0])
		assert.Equal(t, "v9.2", got[9])
	})
}

// Bad configuration panics at Batch or Single with a memo: message, and
// the batch options are refused by the other constructors.
func TestBatchMisuse(t *testing.T) {
	ok := func(context.Context, []int) (map[int]string, error) { return nil, nil }
	for name, f := range map[string]func(){
		"nil fn": func() { memo.Batch[int, string](nil) },
		"context keys": func() {
			memo.Batch(func(context.Context, []context.Context) (map[context.Context]int, error) { return nil, nil })
		},
		"max batch 0":      func() { memo.Batch(ok, memo.WithMaxBatch(0)) },
		"window 0":         func() { memo.Batch(ok, memo.WithBatchWindow(0, 10)) },
		"window keys < 0":  func() { memo.Batch(ok, memo.WithBatchWindow(time.Millisecond, -1)) },
		"Single(nil)":      func() { memo.Single[int, string](nil) },
		"Single(plain fn)": func() { memo.Single(ok) },
		"Single(FuncCtx)":  func() { memo.Single(memo.FuncCtx(ok)) },
		"window on Decorate": func() {
			memo.Decorate(func(int) int { return 0 }, memo.WithBatchWindow(time.Millisecond, 1))
		},
		"max batch on FuncCtx": func() {
			memo.FuncCtx(func(context.Context, int) (int, error) { return 0, nil }, memo.WithMaxBatch(2))
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "no panic")
				assert.Contains(t, fmt.Sprint(r), "memo:")
			}()
			f()
		})
	}
	_, err := memo.New(memo.WithMaxSize(1), memo.WithMaxBatch(3))
	assert.ErrorContains(t, err, "memo: WithBatchWindow and WithMaxBatch apply to functions memoized by Batch")
}

// The batch statistics: batch calls, the keys per call, the keys served
// from the cache and the keys joined from another call's execution.
func TestBatchStatistics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			if slices.Contains(keys, 9) {
				<-gate
			}
			return values(keys...), nil
		})
		ctx := context.Background()
		_, err := f(ctx, span(0, 5)) // 5 keys, all missed
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = f(ctx, []int{8, 9}) }) // holds 8 and 9
		synctest.Wait()
		wg.Go(func() { _, _ = f(ctx, []int{0, 1, 8, 9, 10}) }) // 2 cached, 2 joined, 1 missed
		synctest.Wait()
		close(gate)
		wg.Wait()
		s := memo.CacheOf(f).Stats()
		assert.EqualValues(t, 3, s.BatchCalls)
		assert.EqualValues(t, 3, s.BatchKeys.Count())
		assert.EqualValues(t, 2, s.BatchCached)
		assert.EqualValues(t, 2, s.BatchJoined)
		assert.EqualValues(t, 12, s.BatchKeys.Sum, "5 + 2 + 5 keys")
		assert.EqualValues(t, 1, s.BatchKeys.Counts[1], "the call of 2 keys, in the bucket up to 2")
		assert.EqualValues(t, 2, s.BatchKeys.Counts[3], "the calls of 5 keys, in the bucket up to 8")
	})
}

// uncomparableErr is an error whose == panics when it holds a slice.
type uncomparableErr struct{ v any }

func (e uncomparableErr) Error() string { return fmt.Sprint(e.v) }

// KeyErrors lists each distinct error once through Unwrap, so that
// errors.Is finds any key's error, and never panics on errors that ==
// cannot compare; its text names the failed keys in order.
func TestKeyErrors(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	odd := uncomparableErr{[]int{1}}
	ke := memo.KeyErrors[int]{1: errA, 2: errA, 3: errB, 4: odd, 5: odd, 6: nil}
	assert.ErrorIs(t, ke, errA)
	assert.ErrorIs(t, ke, errB)
	assert.Len(t, ke.Unwrap(), 4, "errA and errB once, the two uncomparable values apart")
	assert.Equal(t, "memo: 5 keys failed; 1: a; 2: a; 3: b; and 2 more", ke.Error())
}

// Single's calls count in the batch statistics, as stats.Stats.BatchCalls
// says: each is a call of one key, a hit in BatchCached. (Found by a new
// user's trial: a Single hit and miss left every batch counter unchanged.)
func TestBatchStatisticsCountSingleCalls(t *testing.T) {
	var l loads
	f := memo.Batch(recording(&l))
	one := memo.Single(f)
	ctx := context.Background()
	_, err := one(ctx, 1) // a miss
	require.NoError(t, err)
	_, err = one(ctx, 1) // a hit
	require.NoError(t, err)
	st := memo.CacheOf(f).Stats()
	assert.Equal(t, uint64(2), st.BatchCalls)
	assert.Equal(t, uint64(1), st.BatchCached)
}

// Batch rejects WithKey at decoration: each entry is keyed by its K, and a
// WithKey that maps keys together would serve one key's value for another.
// (Found by a new user's trial: WithKey was taken silently, and
// load([2]) returned key 1's value.)
func TestBatchRejectsWithKey(t *testing.T) {
	var l loads
	defer func() {
		r := recover()
		err, ok := r.(error)
		require.True(t, ok, "Batch with WithKey must panic with an error, got %v", r)
		assert.True(t, strings.HasPrefix(err.Error(), "memo: "), err.Error())
		assert.Contains(t, err.Error(), "WithKey")
	}()
	memo.Batch(recording(&l), memo.WithKey(func([]any) any { return "same" }))
}

// A KeyErrors reads "1 key failed" for one key, and keeps a panic's stack
// out of its text (the *PanicError in it still holds the stack).
func TestKeyErrorsMessage(t *testing.T) {
	one := memo.KeyErrors[int]{7: errors.New("bad")}
	assert.Equal(t, "memo: 1 key failed; 7: bad", one.Error())
	f := memo.Batch(func(context.Context, []int) (map[int]string, error) { panic("boom") })
	_, err := f(context.Background(), []int{1, 2})
	var ke memo.KeyErrors[int]
	require.ErrorAs(t, err, &ke)
	assert.NotContains(t, err.Error(), "goroutine", "no stack in the message")
	var pe *memo.PanicError
	require.ErrorAs(t, ke[1], &pe)
	assert.NotEmpty(t, pe.Stack)
}
