package memo_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Clear during a refresh: the same.
func TestRefreshClearedDoesNotStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		f := memo.Func(func(k int) int {
			n := calls.Add(1)
			if n == 2 {
				<-release
			}
			return int(n)
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
		f(1)
		time.Sleep(11 * time.Second)
		require.Equal(t, 1, f(1))
		synctest.Wait()
		memo.CacheOf(f).Clear()
		close(release)
		synctest.Wait()
		assert.Equal(t, 3, f(1))
	})
}

// A refresh works on its own copy of the arguments: the caller that
// started it has returned and reuses its slice while the refresh runs.
func TestRefreshCopiesArguments(t *testing.T) {
	sum := func(xs []int) int {
		s := 0
		for _, x := range xs {
			s += x
		}
		return s
	}
	type bag struct {
		xs []int
		m  map[string][]int
	}
	bagSum := func(b bag) int { return sum(b.xs) + sum(b.m["a"]) }
	type maker func(release <-chan struct{}, seen *atomic.Int64) (call func(xs []int) int)
	makers := map[string]maker{
		"Func": func(release <-chan struct{}, seen *atomic.Int64) func([]int) int {
			var calls atomic.Int32
			return memo.Func(func(xs []int) int {
				if calls.Add(1) > 1 {
					<-release
				}
				seen.Store(int64(sum(xs)))
				return sum(xs)
			}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
		},
		"FuncCtx": func(release <-chan struct{}, seen *atomic.Int64) func([]int) int {
			var calls atomic.Int32
			f := memo.FuncCtx(func(_ context.Context, xs []int) (int, error) {
				if calls.Add(1) > 1 {
					<-release
				}
				seen.Store(int64(sum(xs)))
				return sum(xs), nil
			}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
			return func(xs []int) int { v, _ := f(context.Background(), xs); return v }
		},
		"Decorate": func(release <-chan struct{}, seen *atomic.Int64) func([]int) int {
			var calls atomic.Int32
			f := memo.Decorate(func(ctx context.Context, xs ...int) int {
				if calls.Add(1) > 1 {
					<-release
				}
				seen.Store(int64(sum(xs)))
				return sum(xs)
			}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
			return func(xs []int) int { return f(context.Background(), xs...) }
		},
		"Func2Struct": func(release <-chan struct{}, seen *atomic.Int64) func([]int) int {
			var calls atomic.Int32
			f := memo.Func2(func(b bag, k string) int {
				if calls.Add(1) > 1 {
					<-release
				}
				seen.Store(int64(bagSum(b)))
				return bagSum(b)
			}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
			return func(xs []int) int { return f(bag{xs[:1], map[string][]int{"a": xs[1:]}}, "k") }
		},
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var seen atomic.Int64
				f := mk(release, &seen)
				buf := []int{1, 2, 3}
				require.Equal(t, 6, f(buf))
				time.Sleep(11 * time.Second)
				require.Equal(t, 6, f(buf)) // starts the refresh and returns
				buf[0], buf[1], buf[2] = 100, 200, 300
				close(release)
				synctest.Wait()
				assert.Equal(t, int64(6), seen.Load(), "the refresh read the caller's memory")
				assert.Equal(t, 6, f([]int{1, 2, 3}))
			})
		})
	}
}

// The refresh context keeps the caller's values and deadline but not its
// cancellation.
func TestRefreshContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		type seen struct {
			val      any
			deadline time.Time
			err      error
		}
		got := make(chan seen, 2)
		var calls atomic.Int32
		f := memo.FuncCtx(func(ctx context.Context, k int) (int, error) {
			n := calls.Add(1)
			if n > 1 {
				time.Sleep(time.Second) // past the caller's cancel below
			}
			d, _ := ctx.Deadline()
			got <- seen{ctx.Value(key{}), d, ctx.Err()}
			return int(n), nil
		}, memo.WithTTL(time.Hour), memo.WithRefreshAfter(time.Minute))
		_, err := f(context.Background(), 1)
		require.NoError(t, err)
		<-got
		time.Sleep(2 * time.Minute)
		deadline := time.Now().Add(time.Hour)
		ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "v"), deadline)
		v, err := f(ctx, 1)
		cancel()
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		s := <-got
		assert.Equal(t, "v", s.val)
		assert.True(t, s.deadline.Equal(deadline), "deadline %v", s.deadline)
		assert.NoError(t, s.err, "the caller's cancellation reached the refresh")
		synctest.Wait()
		v, _ = f(context.Background(), 1)
		assert.Equal(t, 2, v)
	})
}

// A stale entry is not a hit and does not outlive its window.
func TestStaleWindowEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := memo.Func(func(k int) int { return k }, memo.WithTTL(time.Minute), memo.WithStaleIfError(time.Minute))
		f(1)
		c := memo.CacheOf(f)
		assert.Equal(t, 1, c.Len())
		time.Sleep(90 * time.Second)
		assert.Equal(t, 1, c.Len(), "kept for its window")
		assert.False(t, memo.Invalidate(f, 2))
		time.Sleep(time.Minute)
		assert.Equal(t, 0, c.Len(), "removed when its window ends")
		assert.Equal(t, uint64(1), c.Stats().Expirations)
		f(1)
		time.Sleep(61 * time.Second)
		f(1) // a miss, and a success: no stale result
		st := c.Stats()
		assert.Equal(t, uint64(0), st.StaleServed)
		assert.Equal(t, uint64(3), st.Misses)
	})
}

// Decoration-time panics with memo: messages, and New's errors.
func TestFreshBadInput(t *testing.T) {
	fn := func(k int) (int, error) { return k, nil }
	shared := memo.MustNew(memo.WithMaxSize(4), memo.WithTTL(time.Minute))
	cases := []struct {
		name string
		opts []memo.Option
		want string
	}{
		{"refresh at TTL", []memo.Option{memo.WithTTL(time.Minute), memo.WithRefreshAfter(time.Minute)}, "below the TTL"},
		{"refresh above TTL", []memo.Option{memo.WithTTL(time.Minute), memo.WithRefreshAfter(time.Hour)}, "below the TTL"},
		{"refresh above shared TTL", []memo.Option{memo.WithCache(shared), memo.WithRefreshAfter(time.Hour)}, "below the TTL"},
		{"refresh zero", []memo.Option{memo.WithRefreshAfter(0)}, "at least a millisecond"},
		{"refresh no unit", []memo.Option{memo.WithRefreshAfter(30)}, "at least a millisecond"},
		{"stale negative", []memo.Option{memo.WithTTL(time.Minute), memo.WithStaleIfError(-time.Second)}, "at least a millisecond"},
		{"stale without TTL", []memo.Option{memo.WithStaleIfError(time.Minute)}, "needs WithTTL or WithTTLFunc"},
		{"nil TTLFunc", []memo.Option{memo.WithTTLFunc(nil)}, "WithTTLFunc(nil)"},
		{"nil CacheIf", []memo.Option{memo.WithCacheIf(nil)}, "WithCacheIf(nil)"},
		{"jitter zero", []memo.Option{memo.WithTTL(time.Minute), memo.WithTTLJitter(0)}, "above 0 and below 1"},
		{"jitter one", []memo.Option{memo.WithTTL(time.Minute), memo.WithTTLJitter(1)}, "above 0 and below 1"},
		{"jitter negative", []memo.Option{memo.WithTTL(time.Minute), memo.WithTTLJitter(-0.1)}, "above 0 and below 1"},
		{"jitter NaN", []memo.Option{memo.WithTTL(time.Minute), memo.WithTTLJitter(math.NaN())}, "above 0 and below 1"},
		{"jitter without TTL", []memo.Option{memo.WithTTLJitter(0.1)}, "needs a TTL"},
		{"jitter with WithCache", []memo.Option{memo.WithCache(shared), memo.WithTTLJitter(0.1)}, "belongs to the shared cache"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, mk := range []func(){
				func() { memo.Decorate(fn, tc.opts...) },
				func() { memo.FuncErr(fn, tc.opts...) },
			} {
				func() {
					defer func() {
						r := recover()
						require.NotNil(t, r, "no panic")
						msg := fmt.Sprint(r)
						assert.True(t, strings.HasPrefix(msg, "memo: "), msg)
						assert.Contains(t, msg, tc.want)
					}()
					mk()
				}()
			}
		})
	}
	for _, o := range []memo.Option{memo.WithRefreshAfter(time.Second), memo.WithStaleIfError(time.Second), memo.WithTTLFunc(func([]any) time.Duration { return 1 }), memo.WithCacheIf(func([]any) bool { return true })} {
		_, err := memo.New(memo.WithMaxSize(4), memo.WithTTL(time.Minute), o)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "apply to Decorate, not New")
	}
	_, err := memo.New(memo.WithMaxSize(4), memo.WithTTLJitter(2))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "memo: "), err.Error())
	_, err = memo.New(memo.WithMaxSize(4), memo.WithTTL(time.Minute), memo.WithTTLJitter(0.1))
	assert.NoError(t, err)
}

// A panic in the predicate is a rejection, and the callers still get the
// result.
func TestCacheIfPanics(t *testing.T) {
	calls := 0
	f := memo.Func(func(k int) int { calls++; return k }, memo.WithCacheIf(func([]any) bool { panic("bad predicate") }))
	assert.Equal(t, 1, f(1))
	assert.Equal(t, 1, f(1))
	assert.Equal(t, 2, calls)
	assert.Equal(t, uint64(2), memo.CacheOf(f).Stats().Rejected)
}

// A refresh whose result is rejected removes the old entry.
func TestRefreshRejectedRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		f := memo.Func(func(k int) int { return int(calls.Add(1)) },
			memo.WithTTL(time.Minute), memo.WithRefreshAfter(time.Second),
			memo.WithCacheIf(func(r []any) bool { return r[0].(int) == 1 }))
		f(1)
		time.Sleep(2 * time.Second)
		assert.Equal(t, 1, f(1))
		synctest.Wait()
		assert.Equal(t, 0, memo.CacheOf(f).Len())
		assert.Equal(t, 3, f(1))
	})
}

// Callers that arrive after an entry's TTL while its refresh runs do not
// join the refresh (which nobody waits for): they start a fresh execution,
// whose result is stored, and the refresh's result, which comes later, is
// not stored over it.
func TestRefreshNotJoinedAfterTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		f := memo.Func(func(k int) int {
			n := calls.Add(1)
			if n == 2 {
				<-release
			}
			return int(n)
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(50*time.Second))
		f(1)
		time.Sleep(55 * time.Second)
		assert.Equal(t, 1, f(1))
		time.Sleep(10 * time.Second) // past the TTL, the refresh still running
		done := make(chan int)
		go func() { done <- f(1) }()
		synctest.Wait()
		select {
		case v := <-done:
			assert.Equal(t, 3, v, "a fresh execution's result")
		default:
			t.Fatal("a caller past the TTL waits for the refresh")
		}
		close(release)
		synctest.Wait()
		assert.Equal(t, 3, f(1), "the refresh's older result is not stored over the newer one")
		st := memo.CacheOf(f).Stats()
		assert.Equal(t, int32(3), calls.Load())
		assert.Equal(t, uint64(0), st.Coalesced)
		assert.Equal(t, uint64(1), st.RefreshesSucceeded)
		assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced)
	})
}

// A refresh's context carries the refresh, as any execution's (call.start):
// a call for its own key made with it from another goroutine, once the old
// entry has expired, starts an execution of its own rather than wait on
// the refresh that waits on it; its result is newer than the refresh's,
// which is then not stored.
func TestRefreshContextCarriesTheExecution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var f func(context.Context, int) (int, error)
		f = memo.FuncCtx(func(ctx context.Context, k int) (int, error) {
			if calls.Add(1) != 2 {
				return k * 10, nil
			}
			time.Sleep(2 * time.Minute) // past the old entry's TTL
			inner := make(chan int)
			go func() {
				v, _ := f(ctx, k)
				inner <- v
			}()
			return <-inner + 100, nil
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
		v, err := f(context.Background(), 1)
		require.NoError(t, err)
		require.Equal(t, 10, v)
		time.Sleep(11 * time.Second)
		v, _ = f(context.Background(), 1) // starts the refresh
		require.Equal(t, 10, v)
		time.Sleep(2*time.Minute + time.Second)
		synctest.Wait()
		v, _ = f(context.Background(), 1)
		assert.Equal(t, 10, v, "the inner call's result, stored after the refresh started")
		assert.EqualValues(t, 3, calls.Load())
	})
}

// A refresh that ends on the deadline of the caller that started it sends
// a caller that joined it (the old entry expired) with no deadline of its
// own to a fresh execution, as any execution does, rather than handing it
// the starter's deadline error.
func TestRefreshStartersDeadlineStartsWaitersOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		f := memo.FuncCtx(func(ctx context.Context, k int) (int, error) {
			n := calls.Add(1)
			if n == 2 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return int(n), nil
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second))
		v, err := f(context.Background(), 1)
		require.NoError(t, err)
		require.Equal(t, 1, v)
		time.Sleep(11 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		v, err = f(ctx, 1) // starts the refresh, which runs until ctx's deadline
		require.NoError(t, err)
		require.Equal(t, 1, v)
		time.Sleep(time.Minute) // the old entry expires
		done := make(chan error, 1)
		go func() {
			v, err := f(context.Background(), 1) // joins the refresh
			if err == nil && v != 3 {
				err = fmt.Errorf("got %d, want 3", v)
			}
			done <- err
		}()
		synctest.Wait()
		assert.NoError(t, <-done, "the waiter got the refresh starter's deadline")
		assert.EqualValues(t, 3, calls.Load())
	})
}
