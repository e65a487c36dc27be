package memo

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// During an outage (the function fails inside the stale window of
// WithStaleIfError), the function runs again at most once per key at a
// time and no more often than the back-off (1 s without WithRefreshAfter,
// doubling at each retry), and every other caller gets the stale result at
// once; a retry that succeeds ends the outage.
func TestStaleOutageRetriesWithBackoff(t *testing.T) {
	for _, sh := range shapes {
		if !sh.errs {
			continue
		}
		t.Run(sh.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				var fail atomic.Bool
				gate := make(chan struct{}) // a retry waits here while held
				close(gate)
				var gmu sync.Mutex
				f, fn := sh.make(func(_ context.Context, k int) (int, error) {
					n := calls.Add(1)
					gmu.Lock()
					g := gate
					gmu.Unlock()
					<-g
					if fail.Load() {
						return 0, errBoom
					}
					return int(n), nil
				}, WithTTL(time.Minute), WithStaleIfError(time.Hour))
				c := CacheOf(fn)
				v, err := f(1)
				require.NoError(t, err)
				require.Equal(t, 1, v)

				time.Sleep(61 * time.Second)
				fail.Store(true)
				v, err = f(1) // the first failure: served stale, the outage starts
				require.NoError(t, err)
				require.Equal(t, 1, v)
				require.EqualValues(t, 2, calls.Load())

				// Within the back-off: stale at once, nothing runs.
				for range 50 {
					v, err = f(1)
					require.NoError(t, err)
					require.Equal(t, 1, v)
					time.Sleep(10 * time.Millisecond)
				}
				assert.EqualValues(t, 2, calls.Load(), "no run within the first second")
				st := c.Stats()
				assert.EqualValues(t, 51, st.StaleServed)
				assert.EqualValues(t, 0, st.StaleRetries)

				// After 1 s: one retry, held in the function; the others
				// do not wait for it.
				time.Sleep(time.Second)
				gmu.Lock()
				gate = make(chan struct{})
				gmu.Unlock()
				retried := make(chan error, 1)
				go func() {
					_, err := f(1)
					retried <- err
				}()
				synctest.Wait()
				require.EqualValues(t, 3, calls.Load(), "one retry")
				for range 20 {
					v, err = f(1)
					require.NoError(t, err, "served at once while the retry runs")
					require.Equal(t, 1, v)
				}
				assert.EqualValues(t, 3, calls.Load(), "one retry at a time")
				gmu.Lock()
				close(gate)
				gmu.Unlock()
				require.NoError(t, <-retried, "the retry's caller is served stale too")
				st = c.Stats()
				assert.EqualValues(t, 1, st.StaleRetries)
				assert.EqualValues(t, 72, st.StaleServed)

				// The back-off is now 2 s, from that failure.
				time.Sleep(1500 * time.Millisecond)
				_, _ = f(1)
				assert.EqualValues(t, 3, calls.Load(), "1.5 s after a retry: within the doubled back-off")
				time.Sleep(600 * time.Millisecond)
				_, _ = f(1)
				assert.EqualValues(t, 4, calls.Load(), "2.1 s after: the second retry")
				assert.EqualValues(t, 2, c.Stats().StaleRetries)

				// The function recovers: the next retry (4 s later) stores
				// its result, and the key hits again.
				fail.Store(false)
				time.Sleep(3 * time.Second)
				v, _ = f(1)
				assert.Equal(t, 1, v, "3 s: within the back-off of 4 s")
				time.Sleep(1100 * time.Millisecond)
				v, err = f(1)
				require.NoError(t, err)
				assert.Equal(t, 5, v, "the retry that succeeded")
				v, _ = f(1)
				assert.Equal(t, 5, v, "a hit")
				st = c.Stats()
				assert.EqualValues(t, 5, calls.Load())
				assert.EqualValues(t, 3, st.StaleRetries)
				assert.Equal(t, st.Misses, st.Led+st.Coalesced+st.Abandoned+st.GetMisses)
				assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced)
			})
		})
	}
}

// The outage's back-off starts at the refresh interval when there is one,
// and never exceeds the stale window.
func TestStaleOutageBackoffBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var fail atomic.Bool
		f := FuncErr(func(k int) (int, error) {
			n := calls.Add(1)
			if fail.Load() {
				return 0, errBoom
			}
			return int(n), nil
		}, WithTTL(time.Minute), WithRefreshAfter(10*time.Second), WithStaleIfError(25*time.Second))
		_, err := f(1)
		require.NoError(t, err)
		fail.Store(true)
		time.Sleep(15 * time.Second)
		_, _ = f(1) // a hit that starts a refresh, which fails: no outage before the TTL
		synctest.Wait()
		require.EqualValues(t, 2, calls.Load())

		time.Sleep(46 * time.Second) // 61 s: past the TTL
		v, err := f(1)
		require.NoError(t, err)
		require.Equal(t, 1, v)
		require.EqualValues(t, 3, calls.Load(), "the first failure")
		time.Sleep(9 * time.Second)
		_, _ = f(1)
		require.EqualValues(t, 3, calls.Load(), "9 s: within the back-off of 10 s (the refresh interval)")
		time.Sleep(2 * time.Second)
		_, _ = f(1)
		require.EqualValues(t, 4, calls.Load(), "11 s: a retry; the back-off doubles to 20 s")
		time.Sleep(13 * time.Second) // 85 s: the window (25 s) ends at 85 s
		_, err = f(1)
		assert.ErrorIs(t, err, errBoom, "past the window: the failure")
		assert.EqualValues(t, 5, calls.Load())
		st := CacheOf(f).Stats()
		assert.EqualValues(t, 1, st.StaleRetries)
		assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced)
	})
}

// A retry whose result is not stored (WithCacheIf rejects it) ends the
// outage: the function answers, so the stale entry goes and the next call
// runs the function.
func TestStaleOutageEndsOnRejectedSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var fail atomic.Bool
		f := FuncErr(func(k int) (int, error) {
			n := calls.Add(1)
			if fail.Load() {
				return 0, errBoom
			}
			return int(n), nil
		}, WithTTL(time.Minute), WithStaleIfError(time.Hour),
			WithCacheIf(func(r []any) bool { return r[0].(int) == 1 }))
		_, err := f(1)
		require.NoError(t, err)
		time.Sleep(61 * time.Second)
		fail.Store(true)
		v, _ := f(1)
		require.Equal(t, 1, v, "stale")
		fail.Store(false)
		time.Sleep(2 * time.Second)
		v, err = f(1)
		require.NoError(t, err)
		assert.Equal(t, 3, v, "the retry's result, not stored")
		v, _ = f(1)
		assert.Equal(t, 4, v, "the stale entry is gone: the function runs")
		assert.Equal(t, 0, CacheOf(f).Len())
	})
}
