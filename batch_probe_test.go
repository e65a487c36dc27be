package memo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Adversarial probes of Batch and Single: each fails if the bug it names
// is there (a wrong value, a hang, a leak or a race).

// A caller that leaves while its key waits in the window, so that nothing
// holds the gathered call any more, must not cancel a later caller's key
// gathered into the same window: the later caller gets its value, and fn
// is not run under a cancelled context.
func TestBatchProbeWindowLeaverDoesNotCancelLaterCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var cancelled atomic.Bool
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			if slices.Contains(keys, 0) {
				<-gate // keeps one call of fn running: the window opens for the others
			}
			if ctx.Err() != nil {
				cancelled.Store(true)
				return nil, ctx.Err()
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Second, 0))
		one := memo.Single(f)
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := one(context.Background(), 0)
			assert.NoError(t, err)
		})
		synctest.Wait() // fn runs for key 0 and blocks
		ctxA, cancelA := context.WithCancel(context.Background())
		wg.Go(func() {
			_, err := one(ctxA, 1)
			assert.ErrorIs(t, err, context.Canceled)
		})
		synctest.Wait() // key 1 waits in the window
		cancelA()
		synctest.Wait() // A has left: the window's group has no live key
		var got string
		var err error
		wg.Go(func() { got, err = one(context.Background(), 2) })
		synctest.Wait() // key 2 joins the same window
		time.Sleep(time.Second)
		synctest.Wait()
		close(gate)
		wg.Wait()
		require.NoError(t, err, "key 2's caller is live: another caller's leaving must not fail it")
		assert.Equal(t, value(2), got)
		assert.False(t, cancelled.Load(), "fn ran under a cancelled context for a live caller")
	})
}

// runtime.Goexit in fn fails every key with a *PanicError (Batch's doc),
// also for a caller whose context can never be cancelled (which runs fn
// on its own goroutine): that caller returns, rather than have its
// goroutine unwound.
func TestBatchProbeGoexitInlineCallerReturns(t *testing.T) {
	for name, ctx := range map[string]context.Context{
		"background": context.Background(),
		"cancellable": func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			f := memo.Batch(func(context.Context, []int) (map[int]string, error) {
				runtime.Goexit()
				return nil, nil
			})
			done := make(chan struct{})
			returned := false
			var err error
			go func() {
				defer close(done)
				_, err = f(ctx, []int{1, 2})
				returned = true
			}()
			<-done
			var pe *memo.PanicError
			if name == "background" {
				// A caller whose context can never end calls fn on its own
				// goroutine, as a FuncCtx caller does: fn's runtime.Goexit
				// unwinds it (the keys' other callers get a *PanicError).
				require.False(t, returned, "the caller that ran fn itself is unwound by its runtime.Goexit")
				return
			}
			require.True(t, returned, "the caller's goroutine was unwound by fn's runtime.Goexit")
			assert.ErrorAs(t, err, &pe)

			// Single's form too.
			done = make(chan struct{})
			returned = false
			go func() {
				defer close(done)
				_, err = memo.Single(f)(ctx, 3)
				returned = true
			}()
			<-done
			require.True(t, returned, "Single's caller was unwound by fn's runtime.Goexit")
			assert.ErrorAs(t, err, &pe)
		})
	}
}

// A call made from inside fn, on a goroutine fn starts, with fn's
// context, for a key of that very execution other than its first, must
// not wait on the execution (that would deadlock, as it would for the
// first key, which FuncCtx and Batch both detect): it runs on its own.
func TestBatchProbeNestedCallForSecondKeyDoesNotDeadlock(t *testing.T) {
	for name, mk := range map[string]func() (context.Context, context.CancelFunc){
		"background":  func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		"cancellable": func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var one func(context.Context, int) (string, error)
				var inner error
				f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
					if len(keys) == 2 {
						ch := make(chan error, 1)
						go func() {
							// A hang is bounded by the bubble's clock.
							ictx, cancel := context.WithTimeout(ctx, time.Hour)
							defer cancel()
							_, err := one(ictx, keys[1])
							ch <- err
						}()
						inner = <-ch
					}
					return values(keys...), nil
				})
				one = memo.Single(f)
				ctx, cancel := mk()
				defer cancel()
				got, err := f(ctx, []int{1, 2})
				require.NoError(t, err)
				assert.Equal(t, values(1, 2), got)
				assert.NoError(t, inner, "the nested call for key 2 waited on its own execution")
			})
		})
	}
}

// Invalidate while a batch is in flight: the execution's result is not
// stored, so the next call runs fn again (for a caller that runs fn on its
// own goroutine and for one whose execution runs on another).
func TestBatchProbeInvalidateDuringFlight(t *testing.T) {
	for name, mk := range map[string]func() (context.Context, context.CancelFunc){
		"background":  func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		"cancellable": func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		"window": func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var gen atomic.Int64
				gen.Store(1)
				started := make(chan struct{}, 1)
				gate := make(chan struct{})
				opts := []memo.Option{}
				if name == "window" {
					opts = append(opts, memo.WithBatchWindow(time.Millisecond, 0))
				}
				var first atomic.Bool
				first.Store(true)
				f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
					g := gen.Load()
					if first.CompareAndSwap(true, false) {
						started <- struct{}{}
						<-gate
					}
					m := map[int]string{}
					for _, k := range keys {
						m[k] = fmt.Sprintf("v%d.%d", k, g)
					}
					return m, nil
				}, opts...)
				ctx, cancel := mk()
				defer cancel()
				var wg sync.WaitGroup
				wg.Go(func() {
					got, err := f(ctx, []int{1, 2})
					assert.NoError(t, err)
					assert.Len(t, got, 2)
				})
				<-started
				gen.Store(2) // the data changes, and the key is invalidated
				memo.Invalidate(f, 1)
				close(gate)
				wg.Wait()
				got, err := f(context.Background(), []int{1, 2})
				require.NoError(t, err)
				assert.Equal(t, "v1.2", got[1], "a result computed before Invalidate was stored")
				assert.Equal(t, "v2.1", got[2])
			})
		})
	}
}

// ClearAll while a batch is in flight: nothing the execution computed
// before the clear is stored.
func TestBatchProbeClearDuringFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		gen.Store(1)
		started := make(chan struct{}, 1)
		gate := make(chan struct{})
		var first atomic.Bool
		first.Store(true)
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			g := gen.Load()
			if first.CompareAndSwap(true, false) {
				started <- struct{}{}
				<-gate
			}
			m := map[int]string{}
			for _, k := range keys {
				m[k] = fmt.Sprintf("v%d.%d", k, g)
			}
			return m, nil
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(context.Background(), []int{1, 2})
			assert.NoError(t, err)
		})
		<-started
		gen.Store(2)
		memo.CacheOf(f).Clear()
		close(gate)
		wg.Wait()
		got, err := f(context.Background(), []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "v1.2", 2: "v2.2"}, got, "a result computed before the clear was stored")
	})
}

// fn's map may hold keys it was not asked: they are ignored, never
// stored, and a later call for them asks fn.
func TestBatchProbeUnaskedKeysAreNotStored(t *testing.T) {
	var l loads
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		l.add(keys)
		m := values(keys...)
		m[100] = "bogus"
		return m, nil
	})
	got, err := f(live(t), []int{1, 2})
	require.NoError(t, err)
	assert.Equal(t, values(1, 2), got, "the result holds only the keys asked")
	v, err := memo.Single(f)(live(t), 100)
	require.NoError(t, err)
	assert.Equal(t, "bogus", v) // fn's own answer for 100 when asked
	assert.Equal(t, [][]int{{1, 2}, {100}}, l.snapshot(), "key 100 was served from fn's unasked answer")
}

// fn owns its input slice: it may sort it, overwrite it, and keep writing
// it after it returned, and every key still gets its own value.
func TestBatchProbeFnMutatesItsKeys(t *testing.T) {
	var kept [][]int
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		m := values(keys...)
		slices.Reverse(keys)
		for i := range keys {
			keys[i] = -1
		}
		mu.Lock()
		kept = append(kept, keys)
		mu.Unlock()
		wg.Go(func() { // keeps writing the slice after fn returned
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range keys {
					keys[i]++
				}
				runtime.Gosched()
			}
		})
		return m, nil
	}, memo.WithMaxBatch(3))
	for range 3 {
		got, err := f(live(t), []int{5, 3, 9, 1, 7, 3, 5})
		require.NoError(t, err)
		assert.Equal(t, values(5, 3, 9, 1, 7), got)
		memo.ClearAll()
	}
	close(stop)
	wg.Wait()
}

// Two batch functions over one cache (WithCache) with the same keys keep
// their entries apart: each, and its Single form, gets its own values.
func TestBatchProbeSharedCacheKeepsFunctionsApart(t *testing.T) {
	cache, err := memo.New(memo.WithMaxSize(100))
	require.NoError(t, err)
	a := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		m := map[int]string{}
		for _, k := range keys {
			m[k] = fmt.Sprintf("a%d", k)
		}
		return m, nil
	}, memo.WithCache(cache))
	b := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		m := map[int]string{}
		for _, k := range keys {
			m[k] = fmt.Sprintf("b%d", k)
		}
		return m, nil
	}, memo.WithCache(cache))
	sa, sb := memo.Single(a), memo.Single(b)
	for range 2 {
		got, err := a(live(t), []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "a1", 2: "a2"}, got)
		got, err = b(live(t), []int{1, 2, 3})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "b1", 2: "b2", 3: "b3"}, got)
		v, err := sa(live(t), 3)
		require.NoError(t, err)
		assert.Equal(t, "a3", v)
		v, err = sb(live(t), 1)
		require.NoError(t, err)
		assert.Equal(t, "b1", v)
	}
	// Same for string keys (the short-string fast path).
	sfn := func(p string) func(context.Context, []string) (map[string]int, error) {
		return func(_ context.Context, keys []string) (map[string]int, error) {
			m := map[string]int{}
			for _, k := range keys {
				m[k] = len(k) + len(p)
			}
			return m, nil
		}
	}
	s1 := memo.Batch(sfn("x"), memo.WithCache(cache))
	s2 := memo.Batch(sfn("xyz"), memo.WithCache(cache))
	for range 2 {
		got, err := s1(live(t), []string{"k"})
		require.NoError(t, err)
		assert.Equal(t, 2, got["k"])
		got, err = s2(live(t), []string{"k"})
		require.NoError(t, err)
		assert.Equal(t, 4, got["k"])
	}
}

// WithMaxBatch splits a call; a panic in one chunk fails its keys only,
// for every caller waiting on them, and nobody hangs.
func TestBatchProbeMaxBatchPanicInOneChunk(t *testing.T) {
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		if slices.Contains(keys, 3) {
			panic("boom")
		}
		return values(keys...), nil
	}, memo.WithMaxBatch(2))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := f(live(t), []int{1, 2, 3, 4, 5, 6})
			var ke memo.KeyErrors[int]
			require.ErrorAs(t, err, &ke)
			var pe *memo.PanicError
			assert.ErrorAs(t, ke[3], &pe)
			for k, v := range got {
				assert.Equal(t, value(k), v)
				assert.NotContains(t, ke, k, "a key both failed and served")
			}
			assert.Len(t, got, 6-len(ke))
		})
	}
	wg.Wait()
	v, err := memo.Single(f)(live(t), 1)
	require.NoError(t, err)
	assert.Equal(t, value(1), v)
}

// fn returning a nil map and no error: every key is absent, for Batch and
// Single, and duplicate keys collapse.
func TestBatchProbeNilMapAbsent(t *testing.T) {
	var l loads
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		l.add(keys)
		return nil, nil
	})
	got, err := f(live(t), []int{1, 1, 2, 2, 1})
	require.NoError(t, err)
	assert.NotNil(t, got)
	assert.Empty(t, got)
	_, err = memo.Single(f)(live(t), 1)
	assert.ErrorIs(t, err, memo.ErrNotFound)
	assert.Equal(t, [][]int{{1, 2}, {1}}, l.snapshot())
}

// With WithErrorTTL, a key whose execution was cancelled because every
// caller left is not stored as a negative entry: the next caller gets a
// value from fn.
func TestBatchProbeErrorTTLDoesNotStoreCancellation(t *testing.T) {
	for _, window := range []bool{false, true} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int64
				gate := make(chan struct{})
				opts := []memo.Option{memo.WithErrorTTL(time.Hour)}
				if window {
					opts = append(opts, memo.WithBatchWindow(time.Second, 0))
				}
				f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
					if calls.Add(1) == 1 {
						if slices.Contains(keys, 0) && window {
							<-gate // keeps a call running: the window opens for key 1
							return values(keys...), nil
						}
						<-ctx.Done()
						return nil, fmt.Errorf("wrapped: %w", ctx.Err())
					}
					return values(keys...), nil
				}, opts...)
				var wg sync.WaitGroup
				if window {
					wg.Go(func() {
						_, err := f(context.Background(), []int{0})
						assert.NoError(t, err)
					})
					synctest.Wait()
				}
				ctx, cancel := context.WithCancel(context.Background())
				wg.Go(func() {
					_, err := f(ctx, []int{1})
					assert.ErrorIs(t, err, context.Canceled)
				})
				synctest.Wait()
				cancel()
				synctest.Wait()
				time.Sleep(2 * time.Second) // past the window
				synctest.Wait()
				close(gate)
				wg.Wait()
				got, err := f(context.Background(), []int{1})
				require.NoError(t, err, "a cancellation was stored as key 1's negative entry")
				assert.Equal(t, values(1), got)
			})
		})
	}
}

// A deadline error that is not the caller's: caller A (10 ms deadline)
// leads key 1 through the window, which dispatches it alone; caller B,
// without a deadline, then joins key 1 with a batch call of its own that
// leads key 2; fn honours A's deadline. B gets key 1
// from a fresh execution, with no error.
func TestBatchProbeWindowRetriesAnotherCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		gate := make(chan struct{})
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if slices.Contains(keys, 0) {
				<-gate
				return values(keys...), nil
			}
			if _, ok := ctx.Deadline(); ok {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Millisecond, 0))
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(context.Background(), []int{0})
			assert.NoError(t, err)
		})
		synctest.Wait()
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			_, err := f(ctx, []int{1})
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		})
		synctest.Wait()
		time.Sleep(2 * time.Millisecond) // the window dispatches key 1 alone, under A's deadline
		synctest.Wait()
		bctx, bcancel := context.WithCancel(context.Background())
		defer bcancel()
		var got map[int]string
		var err error
		wg.Go(func() { got, err = f(bctx, []int{1, 2}) })
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		close(gate)
		wg.Wait()
		require.NoError(t, err, "another caller's deadline failed this caller")
		assert.Equal(t, values(1, 2), got)
	})
}

// A Background (inline) leader and a cancellable joiner of the same key:
// the joiner makes the done channel while the leader runs fn; both get the
// value (run with -race).
func TestBatchProbeInlineLeaderWithJoiners(t *testing.T) {
	for range 50 {
		started := make(chan struct{})
		gate := make(chan struct{})
		var once sync.Once
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			once.Do(func() { close(started) })
			<-gate
			return values(keys...), nil
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			got, err := f(context.Background(), []int{1, 2, 3})
			assert.NoError(t, err)
			assert.Equal(t, values(1, 2, 3), got)
		})
		<-started
		for i := range 4 {
			wg.Go(func() {
				ctx := live(t)
				if i%2 == 0 {
					ctx = context.Background()
				}
				got, err := f(ctx, []int{3, 2})
				assert.NoError(t, err)
				assert.Equal(t, values(2, 3), got)
				v, err := memo.Single(f)(ctx, 1)
				assert.NoError(t, err)
				assert.Equal(t, value(1), v)
			})
		}
		runtime.Gosched()
		close(gate)
		wg.Wait()
	}
}

// Interface-typed keys: int(1) and int64(1) are different keys (fn is
// asked for both, each gets its own value), and Invalidate drops the one
// it names only.
func TestBatchProbeInterfaceKeys(t *testing.T) {
	var calls atomic.Int64
	f := memo.Batch(func(_ context.Context, keys []any) (map[any]string, error) {
		calls.Add(1)
		m := map[any]string{}
		for _, k := range keys {
			m[k] = fmt.Sprintf("%T:%v", k, k)
		}
		return m, nil
	})
	got, err := f(live(t), []any{1, int64(1), "1", 1})
	require.NoError(t, err)
	assert.Equal(t, map[any]string{1: "int:1", int64(1): "int64:1", "1": "string:1"}, got)
	v, err := memo.Single(f)(live(t), any(int64(1)))
	require.NoError(t, err)
	assert.Equal(t, "int64:1", v)
	assert.EqualValues(t, 1, calls.Load())
	assert.True(t, memo.Invalidate(f, any(int64(1))))
	got, err = f(live(t), []any{1, int64(1)})
	require.NoError(t, err)
	assert.Equal(t, map[any]string{1: "int:1", int64(1): "int64:1"}, got)
	assert.EqualValues(t, 2, calls.Load())
}

// Key types through Batch, Single and Invalidate: struct keys, string keys
// longer than 127 bytes, float keys. Each key's value is its own, a second
// call hits, and Invalidate by the key drops exactly that entry.
func TestBatchProbeKeyTypes(t *testing.T) {
	type sk struct {
		A int
		B string
		C *int
	}
	x, y := new(int), new(int)
	long := func(c byte) string { return string(slices.Repeat([]byte{c}, 200)) }
	t.Run("struct", func(t *testing.T) {
		probeKeys(t, []sk{{1, "a", x}, {1, "a", y}, {2, "a", x}, {1, "b", nil}})
	})
	t.Run("long strings", func(t *testing.T) {
		probeKeys(t, []string{long('a'), long('b'), long('a')[:127], long('a')[:128], "", "short"})
	})
	t.Run("floats", func(t *testing.T) {
		probeKeys(t, []float64{1.5, 0, 2, -3.25})
	})
	t.Run("pointers", func(t *testing.T) {
		probeKeys(t, []*int{x, y, nil})
	})
}

func probeKeys[K comparable](t *testing.T, ks []K) {
	var mu sync.Mutex
	asked := map[K]int{}
	f := memo.Batch(func(_ context.Context, keys []K) (map[K]string, error) {
		mu.Lock()
		defer mu.Unlock()
		m := map[K]string{}
		for _, k := range keys {
			asked[k]++
			m[k] = fmt.Sprintf("%v#%d", k, asked[k])
		}
		return m, nil
	})
	count := func(k K) int {
		mu.Lock()
		defer mu.Unlock()
		return asked[k]
	}
	got, err := f(live(t), ks)
	require.NoError(t, err)
	require.Len(t, got, len(ks))
	for _, k := range ks {
		assert.Equal(t, fmt.Sprintf("%v#1", k), got[k])
		v, err := memo.Single(f)(live(t), k)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("%v#1", k), v, "Single missed Batch's entry")
	}
	for i, k := range ks {
		assert.True(t, memo.Invalidate(f, k), "Invalidate found no entry for key %d", i)
		got, err := f(live(t), ks)
		require.NoError(t, err)
		for j, o := range ks {
			want := 1
			if j <= i {
				want = 2
			}
			assert.Equal(t, fmt.Sprintf("%v#%d", o, want), got[o], "key %d after invalidating key %d", j, i)
		}
		assert.Equal(t, 2, count(k))
	}
}

// WithRefreshAfter with WithStaleIfError: a due key's background refresh
// fails, and the old value is served until its TTL; past the TTL the
// failing execution serves the stale value (never another key's), and a
// later success replaces it.
func TestBatchProbeRefreshAndStaleIfError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		var failing atomic.Bool
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			if failing.Load() {
				return nil, errors.New("down")
			}
			g := gen.Add(1)
			m := map[int]string{}
			for _, k := range keys {
				m[k] = fmt.Sprintf("v%d.%d", k, g)
			}
			return m, nil
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(30*time.Second), memo.WithStaleIfError(time.Hour))
		ctx := context.Background()
		got, err := f(ctx, []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "v1.1", 2: "v2.1"}, got)
		failing.Store(true)
		time.Sleep(40 * time.Second) // due
		got, err = f(ctx, []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "v1.1", 2: "v2.1"}, got)
		time.Sleep(time.Second)
		synctest.Wait() // the refresh failed
		got, err = f(ctx, []int{2, 1})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "v1.1", 2: "v2.1"}, got)
		time.Sleep(time.Minute) // past the TTL, in the stale window
		got, err = f(ctx, []int{1, 2, 3})
		var ke memo.KeyErrors[int]
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, []int{3}, keysOf(ke), "only key 3 (never loaded) fails")
		assert.Equal(t, map[int]string{1: "v1.1", 2: "v2.1"}, got, "the stale values")
		v, err := memo.Single(f)(ctx, 2)
		require.NoError(t, err)
		assert.Equal(t, "v2.1", v)
		failing.Store(false)
		time.Sleep(2 * time.Minute) // past any retry back-off
		got, err = f(ctx, []int{1, 2})
		require.NoError(t, err)
		got2, err := f(ctx, []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, got, got2)
		assert.NotEqual(t, "v1.1", got2[1], "the stale value outlived a success")
		synctest.Wait()
	})
}

// A negative entry (WithErrorTTL) for an absent key is served for its
// TTL without asking fn, in both forms, and Invalidate drops it.
func TestBatchProbeNegativeEntry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		have := map[int]bool{1: true}
		var mu sync.Mutex
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			mu.Lock()
			defer mu.Unlock()
			m := map[int]string{}
			for _, k := range keys {
				if have[k] {
					m[k] = value(k)
				}
			}
			return m, nil
		}, memo.WithErrorTTL(time.Minute))
		ctx := context.Background()
		got, err := f(ctx, []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, values(1), got)
		mu.Lock()
		have[2] = true
		mu.Unlock()
		_, err = memo.Single(f)(ctx, 2)
		assert.ErrorIs(t, err, memo.ErrNotFound, "the negative entry")
		memo.Invalidate(f, 2)
		v, err := memo.Single(f)(ctx, 2)
		require.NoError(t, err)
		assert.Equal(t, value(2), v)
		assert.Equal(t, [][]int{{1, 2}, {2}}, l.snapshot())
	})
}

// A context cancelled between the join and the dispatch of the window (the
// sole caller of its keys) returns ctx.Err() at once; the keys are not
// stored, and a later caller gets values from a fresh call of fn.
func TestBatchProbeCancelledInWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		gate := make(chan struct{})
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if slices.Contains(keys, 0) {
				<-gate
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Second, 0))
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(context.Background(), []int{0})
			assert.NoError(t, err)
		})
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan error, 1)
		wg.Go(func() {
			_, err := f(ctx, []int{1, 2})
			returned <- err
		})
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case err := <-returned:
			assert.ErrorIs(t, err, context.Canceled)
		default:
			t.Fatal("the caller did not leave at once")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		close(gate)
		wg.Wait()
		got, err := f(context.Background(), []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, values(1, 2), got)
	})
}

// An execution that outlives a caller never reads memory that caller owns
// once its call has returned (SPEC: it works on its own copy of what the
// key encoded by value). With WithDeref a *int key is keyed by its
// pointee: caller A leaves, then changes *p from 1 to 2; the execution
// goes on for caller B, who asked for another pointer to 1. Neither B nor
// a later hit for 1 may get the value computed for 2.
func TestBatchProbeDerefKeyChangedByLeaver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		started := make(chan struct{})
		var once sync.Once
		f := memo.Batch(func(_ context.Context, keys []*int) (map[*int]string, error) {
			once.Do(func() { close(started) })
			<-gate
			m := map[*int]string{}
			for _, k := range keys {
				m[k] = fmt.Sprint("v", *k)
			}
			return m, nil
		}, memo.WithDeref())
		p, q := new(int), new(int)
		*p, *q = 1, 1
		ctxA, cancelA := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(ctxA, []*int{p})
			assert.ErrorIs(t, err, context.Canceled)
		})
		<-started
		var got map[*int]string
		var err error
		wg.Go(func() { got, err = f(context.Background(), []*int{q}) })
		synctest.Wait() // B joins the execution for the key 1
		cancelA()
		synctest.Wait() // A has returned
		*p = 2          // A's memory, A's to change now
		close(gate)
		wg.Wait()
		require.NoError(t, err)
		assert.Equal(t, "v1", got[q], "B got the value computed from memory A changed after it returned")
		r := new(int)
		*r = 1
		v, err := memo.Single(f)(context.Background(), r)
		require.NoError(t, err)
		assert.Equal(t, "v1", v, "the value for 2 was stored as 1's")
	})
}

// WithMaxBatch(n) with WithBatchWindow: a window that gathers n keys calls
// fn at once (WithMaxBatch's doc), without waiting for the window's wait.
func TestBatchProbeWindowDispatchesAtMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		gate := make(chan struct{})
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if slices.Contains(keys, 0) {
				<-gate
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Hour, 0), memo.WithMaxBatch(2))
		one := memo.Single(f)
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := one(context.Background(), 0)
			assert.NoError(t, err)
		})
		synctest.Wait()
		start := time.Now()
		for k := 1; k <= 2; k++ {
			wg.Go(func() {
				v, err := one(context.Background(), k)
				assert.NoError(t, err)
				assert.Equal(t, value(k), v)
			})
		}
		synctest.Wait()
		calls := l.snapshot()
		close(gate)
		wg.Wait()
		assert.Equal(t, [][]int{{0}, {1, 2}}, calls, "two gathered keys (n = 2) did not go to fn at once")
		assert.Zero(t, time.Since(start))
	})
}

// Invalidate while a batch refresh is in flight: the refresh's result
// (computed before the invalidation) is not stored over it.
func TestBatchProbeInvalidateDuringRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		gen.Store(1)
		started := make(chan struct{}, 1)
		gate := make(chan struct{})
		var refreshing atomic.Bool
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			g := gen.Load()
			if refreshing.CompareAndSwap(true, false) {
				started <- struct{}{}
				<-gate
			}
			m := map[int]string{}
			for _, k := range keys {
				m[k] = fmt.Sprintf("v%d.%d", k, g)
			}
			return m, nil
		}, memo.WithTTL(time.Hour), memo.WithRefreshAfter(time.Minute))
		ctx := context.Background()
		_, err := f(ctx, []int{1})
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		refreshing.Store(true)
		got, err := f(ctx, []int{1}) // due: the old value, and a refresh
		require.NoError(t, err)
		assert.Equal(t, "v1.1", got[1])
		<-started
		gen.Store(2)
		memo.Invalidate(f, 1)
		close(gate)
		synctest.Wait()
		got, err = f(ctx, []int{1})
		require.NoError(t, err)
		assert.Equal(t, "v1.2", got[1], "the refresh stored a value computed before Invalidate")
	})
}

// Keys that can never be stored (past the key limit) go with the others
// to fn, alone: each gets its own value, nothing hangs when the caller
// leaves while they compute, and nothing leaks.
func TestBatchProbeUncacheableKeys(t *testing.T) {
	huge := func(c byte) string { return string(slices.Repeat([]byte{c}, 5<<20)) }
	a, b := huge('a'), huge('b')
	var l atomic.Int64
	gate := make(chan struct{})
	f := memo.Batch(func(ctx context.Context, keys []string) (map[string]int, error) {
		if l.Add(1) == 1 {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		m := map[string]int{}
		for _, k := range keys {
			m[k] = len(k) + int(k[0])
		}
		return m, nil
	}, memo.WithMaxBatch(2))
	ctx, cancel := context.WithCancel(live(t))
	done := make(chan error, 1)
	go func() {
		_, err := f(ctx, []string{a, "x", b, "y"})
		done <- err
	}()
	cancel()
	err := <-done
	if err != nil {
		assert.ErrorIs(t, err, context.Canceled)
	}
	close(gate)
	got, err := f(live(t), []string{a, "x", b, "y", a})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{a: len(a) + 'a', b: len(b) + 'b', "x": 1 + 'x', "y": 1 + 'y'}, got)
}

// The control of TestBatchProbeDerefKeyChangedByLeaver: FuncCtx with
// WithDeref in the same scenario gives its execution a copy of the
// pointee, so B and later hits get the value for 1.
func TestBatchProbeDerefKeyChangedByLeaverFuncCtxControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		started := make(chan struct{})
		var once sync.Once
		f := memo.FuncCtx(func(_ context.Context, k *int) (string, error) {
			once.Do(func() { close(started) })
			<-gate
			return fmt.Sprint("v", *k), nil
		}, memo.WithDeref())
		p, q := new(int), new(int)
		*p, *q = 1, 1
		ctxA, cancelA := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(ctxA, p)
			assert.ErrorIs(t, err, context.Canceled)
		})
		<-started
		var got string
		var err error
		wg.Go(func() { got, err = f(context.Background(), q) })
		synctest.Wait()
		cancelA()
		synctest.Wait()
		*p = 2
		close(gate)
		wg.Wait()
		require.NoError(t, err)
		assert.Equal(t, "v1", got)
		r := new(int)
		*r = 1
		v, err := f(context.Background(), r)
		require.NoError(t, err)
		assert.Equal(t, "v1", v)
	})
}

// Invalidate while a key waits in the window, then another caller asks for
// that key and is gathered into the same window: fn never sees a key twice
// in one call (Batch's doc), and the later caller gets a value computed
// after the invalidation.
func TestBatchProbeInvalidateInWindowNoDuplicateKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l loads
		gate := make(chan struct{})
		f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
			l.add(keys)
			if slices.Contains(keys, 0) {
				<-gate
			}
			return values(keys...), nil
		}, memo.WithBatchWindow(time.Second, 0))
		one := memo.Single(f)
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := one(context.Background(), 0)
			assert.NoError(t, err)
		})
		synctest.Wait()
		for range 2 {
			wg.Go(func() {
				v, err := one(context.Background(), 1)
				assert.NoError(t, err)
				assert.Equal(t, value(1), v)
			})
			synctest.Wait() // waits in the window
			memo.Invalidate(f, 1)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		close(gate)
		wg.Wait()
		for _, c := range l.snapshot() {
			assert.Equal(t, slices.Compact(slices.Clone(c)), c, "fn was given a key twice in one call")
		}
	})
}

// runtime.Goexit in one WithMaxBatch chunk fails that chunk's keys with a
// *PanicError for every caller (cancellable contexts, so fn runs on
// goroutines of its own), the other chunks' keys get values, and nobody
// hangs.
func TestBatchProbeMaxBatchGoexitInOneChunk(t *testing.T) {
	f := memo.Batch(func(_ context.Context, keys []int) (map[int]string, error) {
		if slices.Contains(keys, 3) {
			runtime.Goexit()
		}
		return values(keys...), nil
	}, memo.WithMaxBatch(2))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := f(live(t), []int{1, 2, 3, 4, 5, 6})
			var ke memo.KeyErrors[int]
			require.ErrorAs(t, err, &ke)
			var pe *memo.PanicError
			assert.ErrorAs(t, ke[3], &pe)
			for k, v := range got {
				assert.Equal(t, value(k), v)
			}
			assert.Len(t, got, 6-len(ke))
		})
	}
	wg.Wait()
}

// A seeded mix of Batch and Single calls over 40 keys from 16 goroutines,
// some with contexts that end early, with Invalidate of keys whose data
// changed: no call returns another key's value, a value older than an
// invalidation that returned before the call started, or an error other
// than its own context's; nobody hangs; nothing races or leaks.
func TestBatchProbeMixedStress(t *testing.T) {
	configs := map[string][]memo.Option{
		"plain":    nil,
		"window":   {memo.WithBatchWindow(50*time.Microsecond, 8)},
		"maxbatch": {memo.WithMaxBatch(3)},
		"both":     {memo.WithBatchWindow(50*time.Microsecond, 0), memo.WithMaxBatch(4)},
	}
	for name, opts := range configs {
		t.Run(name, func(t *testing.T) {
			const nkeys = 40
			var ver, published [nkeys]atomic.Int64
			f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
				m := map[int]string{}
				for _, k := range keys {
					m[k] = fmt.Sprintf("%d@%d", k, ver[k].Load())
				}
				runtime.Gosched()
				return m, nil
			}, opts...)
			one := memo.Single(f)
			check := func(k int, v string, floor int64) {
				var gk int
				var gv int64
				_, err := fmt.Sscanf(v, "%d@%d", &gk, &gv)
				if assert.NoError(t, err) {
					assert.Equal(t, k, gk, "another key's value")
					assert.GreaterOrEqual(t, gv, floor, "key %d: a value from before an invalidation", k)
				}
			}
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Go(func() {
					seed := uint64(g)*0x9e3779b97f4a7c15 + 1
					rnd := func(n int) int {
						seed ^= seed << 13
						seed ^= seed >> 7
						seed ^= seed << 17
						return int(seed % uint64(n))
					}
					for range 150 {
						ctx := live(t)
						var cancel context.CancelFunc
						short := rnd(5) == 0
						if short {
							ctx, cancel = context.WithCancel(ctx)
						}
						switch op := rnd(10); {
						case op == 0: // the data of a key changes
							k := rnd(nkeys)
							n := ver[k].Add(1)
							memo.Invalidate(f, k)
							for {
								p := published[k].Load()
								if p >= n || published[k].CompareAndSwap(p, n) {
									break
								}
							}
						case op < 5:
							k := rnd(nkeys)
							floor := published[k].Load()
							if short {
								go cancel()
							}
							v, err := one(ctx, k)
							if err != nil {
								assert.True(t, short && errors.Is(err, context.Canceled), "key %d: %v", k, err)
								break
							}
							check(k, v, floor)
						default:
							ks := make([]int, 1+rnd(10))
							floors := map[int]int64{}
							for i := range ks {
								ks[i] = rnd(nkeys)
								floors[ks[i]] = published[ks[i]].Load()
							}
							if short {
								go cancel()
							}
							got, err := f(ctx, ks)
							if err != nil {
								assert.True(t, short && errors.Is(err, context.Canceled), "%v: %v", ks, err)
								break
							}
							for _, k := range ks {
								if assert.Contains(t, got, k) {
									check(k, got[k], floors[k])
								}
							}
							assert.Len(t, got, len(floors))
						}
						if cancel != nil {
							cancel()
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// refKey is a key whose CacheKey reads through a pointer: memo keys it by
// the pointee's current value.
type refKey struct{ p *int }

func (k refKey) CacheKey() any { return *k.p }

// TestBatchProbeDerefKeyChangedByLeaver with a CacheKeyer key that reads
// through a pointer: the execution's result must not be stored, nor given
// to B, when a caller that left changed what the key was made from.
func TestBatchProbeCacheKeyerChangedByLeaver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		started := make(chan struct{})
		var once sync.Once
		f := memo.Batch(func(_ context.Context, keys []refKey) (map[refKey]string, error) {
			once.Do(func() { close(started) })
			<-gate
			m := map[refKey]string{}
			for _, k := range keys {
				m[k] = fmt.Sprint("v", *k.p)
			}
			return m, nil
		})
		p, q := new(int), new(int)
		*p, *q = 1, 1
		ctxA, cancelA := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(ctxA, []refKey{{p}})
			assert.ErrorIs(t, err, context.Canceled)
		})
		<-started
		var got map[refKey]string
		var err error
		wg.Go(func() { got, err = f(context.Background(), []refKey{{q}}) })
		synctest.Wait()
		cancelA()
		synctest.Wait()
		*p = 2
		close(gate)
		wg.Wait()
		require.NoError(t, err)
		assert.Equal(t, "v1", got[refKey{q}], "B got the value computed from memory A changed after it returned")
		r := new(int)
		*r = 1
		v, err := memo.Single(f)(context.Background(), refKey{r})
		require.NoError(t, err)
		assert.Equal(t, "v1", v, "the value for 2 was stored as 1's")
	})
}

// A caller whose goroutine fn's runtime.Goexit unwinds (see
// TestBatchProbeGoexitInlineCallerReturns) must not keep holding the keys
// it joined: caller B leads key 2 and fn waits on its context; caller A,
// with context.Background(), asks for keys 1 and 2 (leading 1, joining 2),
// and fn calls runtime.Goexit for key 1. When B then leaves, nobody waits
// on key 2 any more, so its execution's context must be cancelled.
func TestBatchProbeGoexitInlineCallerReleasesJoinedKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		unstick := make(chan struct{})
		var sawCancel atomic.Bool
		f := memo.Batch(func(ctx context.Context, keys []int) (map[int]string, error) {
			if slices.Contains(keys, 1) {
				runtime.Goexit()
			}
			select {
			case <-ctx.Done():
				sawCancel.Store(true)
				return nil, ctx.Err()
			case <-unstick:
				return values(keys...), nil
			}
		})
		ctxB, cancelB := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := f(ctxB, []int{2})
			assert.ErrorIs(t, err, context.Canceled)
		})
		synctest.Wait() // fn runs for key 2
		wg.Go(func() { _, _ = f(context.Background(), []int{1, 2}) })
		synctest.Wait() // A joined key 2, and fn unwound it (or it returned)
		cancelB()
		synctest.Wait()
		cancelled := sawCancel.Load()
		close(unstick)
		wg.Wait()
		assert.True(t, cancelled, "key 2's execution outlived every live caller: the unwound caller still counts as its waiter")
	})
}
