package memo_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A refresh that never ends by itself (Caffeine #373): with a 300 ms TTL
// and a 50 ms refresh interval, the refresh, started by a caller without a
// deadline, blocks until its context ends. Once the entry's TTL has passed,
// callers with 50 ms deadlines get a fresh execution's result, and a caller
// without a deadline is not held by the refresh; the refresh ends at its
// own deadline (the TTL, 300 ms, from its start), fails, and stores
// nothing.
func TestRefreshThatHangsDoesNotPinItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var refreshEnded atomic.Int64 // when the refresh's context ended, ns since start
		start := time.Now()
		f := memo.FuncCtx(func(ctx context.Context, k int) (int, error) {
			n := calls.Add(1)
			if n == 2 { // the refresh
				<-ctx.Done()
				refreshEnded.Store(int64(time.Since(start)))
				return 0, ctx.Err()
			}
			time.Sleep(5 * time.Millisecond)
			return int(n), nil
		}, memo.WithTTL(300*time.Millisecond), memo.WithRefreshAfter(50*time.Millisecond))
		v, err := f(context.Background(), 1)
		require.NoError(t, err)
		require.Equal(t, 1, v)

		time.Sleep(60 * time.Millisecond)
		v, err = f(context.Background(), 1) // a hit that starts the refresh
		require.NoError(t, err)
		require.Equal(t, 1, v)
		synctest.Wait()
		require.EqualValues(t, 2, calls.Load(), "the refresh runs")

		time.Sleep(250 * time.Millisecond) // past the TTL (310 ms since the store)
		var wg sync.WaitGroup
		errs := make([]error, 22)
		for i := range errs {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				v, err := f(ctx, 1)
				if err == nil && v < 3 {
					t.Errorf("caller %d got %d, not a fresh result", i, v)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "caller %d with a 50 ms deadline", i)
		}

		done := make(chan error, 1)
		go func() {
			_, err := f(context.Background(), 1)
			done <- err
		}()
		synctest.Wait()
		held := false
		select {
		case err := <-done:
			assert.NoError(t, err)
		default:
			held = true
			t.Error("a caller without a deadline is held by the refresh")
		}

		time.Sleep(time.Second) // the refresh's own deadline has passed
		synctest.Wait()
		st := memo.CacheOf(f).Stats()
		assert.EqualValues(t, 1, st.RefreshesStarted)
		assert.EqualValues(t, 1, st.RefreshesFailed, "the refresh ran out of time")
		if e := time.Duration(refreshEnded.Load()); assert.NotZero(t, e, "the refresh never ended") {
			assert.Equal(t, 365*time.Millisecond, e, "started at 65 ms (60 ms after the store), bounded by the 300 ms TTL")
		}
		if held {
			t.Log(<-done) // unblocked at last when the refresh ends
		}
	})
}

// A refresh whose function ignores its context and never returns holds its
// key's refresh slot only until its deadline: a later due hit starts
// another refresh, and the first one's result, when it comes, is not stored
// over what was stored since.
func TestRefreshPastItsDeadlineGivesWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		f := memo.Func(func(k int) int {
			n := calls.Add(1)
			if n == 2 {
				<-release // ignores everything
			}
			return int(n)
		}, memo.WithTTL(300*time.Millisecond), memo.WithRefreshAfter(50*time.Millisecond))
		require.Equal(t, 1, f(1))
		time.Sleep(60 * time.Millisecond)
		require.Equal(t, 1, f(1)) // starts the refresh that hangs (until 360 ms)

		time.Sleep(250 * time.Millisecond) // 310 ms: past the TTL
		done := make(chan int, 1)
		go func() { done <- f(1) }()
		synctest.Wait()
		select {
		case v := <-done:
			assert.Equal(t, 3, v, "a fresh execution")
		default:
			t.Fatal("a caller past the TTL waits for the refresh")
		}

		time.Sleep(60 * time.Millisecond) // 370 ms: the new entry is due, the first refresh's time is up
		assert.Equal(t, 3, f(1))
		synctest.Wait()
		assert.Equal(t, 4, f(1), "a second refresh ran and stored")
		assert.EqualValues(t, 2, memo.CacheOf(f).Stats().RefreshesStarted)

		close(release)
		synctest.Wait()
		assert.Equal(t, 4, f(1), "the first refresh's late result is not stored")
		st := memo.CacheOf(f).Stats()
		assert.Equal(t, st.RefreshesStarted, st.RefreshesSucceeded+st.RefreshesFailed)
		assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced)
	})
}

// A refresh that fails while its entry is still within its TTL is not a
// stale-if-error case: nothing stale is served, and the failure logged is
// the refresh's own error, not the old result's (nil) one.
func TestRefreshFailingWithinTTLIsNotStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var calls atomic.Int32
		f := memo.FuncErr(func(k int) (int, error) {
			if calls.Add(1) > 1 {
				return 0, errors.New("backend down")
			}
			return k, nil
		}, memo.WithTTL(time.Minute), memo.WithRefreshAfter(10*time.Second), memo.WithStaleIfError(time.Hour),
			memo.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		v, err := f(7)
		require.NoError(t, err)
		require.Equal(t, 7, v)
		time.Sleep(11 * time.Second)
		v, err = f(7) // a hit that starts the refresh, which fails
		require.NoError(t, err)
		require.Equal(t, 7, v)
		synctest.Wait()
		st := memo.CacheOf(f).Stats()
		assert.EqualValues(t, 1, st.RefreshesFailed)
		assert.Zero(t, st.StaleServed)
		log := buf.String()
		assert.Contains(t, log, "refresh failed")
		assert.Contains(t, log, "backend down", "the refresh's own error is logged")
		assert.NotContains(t, log, "serving the stale result", "the entry was not stale")
	})
}
