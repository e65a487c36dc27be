package memo

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRefreshInvalidatedNotStored: a refresh-ahead of a Func (whose
// misses recycle their records) is running when Invalidate removes the
// entry and a fresh miss stores a newer result; the refresh's result,
// older, must not replace it, and no statistic is lost.
func TestRefreshInvalidatedNotStored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		block := make(chan struct{})
		entered := make(chan int64, 4)
		f := Func(func(k int) int64 {
			g := gen.Add(1)
			if g == 2 { // the refresh
				entered <- g
				<-block
			}
			return int64(k)*1000 + g
		}, WithRefreshAfter(time.Minute), WithTTL(time.Hour))
		require.Equal(t, int64(7001), f(7))
		time.Sleep(2 * time.Minute) // a refresh is due
		assert.Equal(t, int64(7001), f(7), "the due hit serves the entry")
		require.Equal(t, int64(2), <-entered, "the refresh started")
		require.True(t, Invalidate(f, 7))
		assert.Equal(t, int64(7003), f(7), "after Invalidate, a fresh execution")
		close(block)
		synctest.Wait() // the refresh has ended
		assert.Equal(t, int64(7003), f(7), "the refresh's older result replaced the fresh one")
		st := CacheOf(f).Stats()
		assert.Zero(t, st.Pending())
		assert.Equal(t, uint64(1), st.RefreshesStarted)
		assert.Equal(t, st.TotalCalls, st.Led+st.AbandonedLeaders+st.RefreshesStarted)
	})
}

// TestStaleIfErrorRecycledKeys: in an outage (WithStaleIfError) of
// many keys at once, the failing executions, whose records are recycled
// (no joiner, no context), serve each key its own stale result, from
// goroutines racing over the keys; once the function answers again, each
// key gets its fresh result.
func TestStaleIfErrorRecycledKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var failing atomic.Bool
		var gen atomic.Int64
		f := FuncErr(func(k int) (int64, error) {
			if failing.Load() {
				return 0, assert.AnError
			}
			return int64(k)*1000 + gen.Load(), nil
		}, WithTTL(time.Minute), WithStaleIfError(time.Hour))
		const keys = 40
		for k := range keys {
			v, err := f(k)
			require.NoError(t, err)
			require.Equal(t, int64(k)*1000, v)
		}
		time.Sleep(2 * time.Minute) // every TTL over, the stale window open
		failing.Store(true)
		done := make(chan struct{})
		for g := range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := range 3 * keys {
					k := (i*7 + g) % keys
					v, err := f(k)
					if err == nil && v != int64(k)*1000 {
						t.Errorf("f(%d) = %d in the outage, want its stale %d", k, v, int64(k)*1000)
					}
					if err != nil && v != 0 {
						t.Errorf("f(%d) = %d, %v", k, v, err)
					}
				}
			}()
		}
		for range 4 {
			<-done
		}
		failing.Store(false)
		gen.Store(1)
		time.Sleep(2 * time.Hour) // the windows have ended
		for k := range keys {
			v, err := f(k)
			require.NoError(t, err)
			require.Equal(t, int64(k)*1000+1, v)
		}
		st := CacheOf(f).Stats()
		assert.Zero(t, st.Pending())
	})
}

// TestRefreshChurnKeysOwnValues races callers over keys that fall
// due for refresh-ahead again and again (the bubble's clock advanced
// between rounds), with Invalidate in between, in a cache small enough to
// evict: every value must be its own key's, and after a last Invalidate
// of a key its next call runs afresh, once every refresh has ended.
func TestRefreshChurnKeysOwnValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		f := Func(func(k int) int64 {
			return int64(k)<<32 | gen.Add(1)
		}, WithRefreshAfter(time.Second), WithTTL(time.Minute), WithMaxSize(12))
		const keys = 16
		done := make(chan struct{})
		for round := range 30 {
			for g := range 3 {
				go func() {
					defer func() { done <- struct{}{} }()
					for i := range 40 {
						k := (i*5 + g + round) % keys
						if (i+round)%11 == 0 {
							Invalidate(f, k)
						}
						if v := f(k); v>>32 != int64(k) {
							t.Errorf("f(%d) = key %d's value", k, v>>32)
						}
					}
				}()
			}
			for range 3 {
				<-done
			}
			time.Sleep(1500 * time.Millisecond)
		}
		synctest.Wait() // every refresh has ended
		for k := range keys {
			Invalidate(f, k)
			before := gen.Load()
			v := f(k)
			require.Equal(t, int64(k), v>>32)
			require.Greater(t, v&(1<<32-1), before, "f(%d) after Invalidate: an older result", k)
		}
		assert.Zero(t, CacheOf(f).Stats().Pending())
	})
}
