package memo

import (
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Entry expiry (the TTL timer and the expiry time computed in store).

// A dropped function with a TTL must not keep its cache until its last
// entry expires: 25 functions with 4 MiB results and a one-hour TTL kept
// 100 MiB.
//
// Guards the reported leaks of issue 8 (item 2: memory that must be freed).
func TestLeakTTLTimer(t *testing.T) {
	grown := lkGrowth(func() {
		for i := range 25 {
			f := Func(func(k int) []byte { return make([]byte, 4*lkMiB) }, WithTTL(time.Hour), WithMaxSize(10))
			require.Len(t, f(i), 4*lkMiB)
		}
	})
	assert.Less(t, grown, int64(12*lkMiB), "a pending expiry timer must not keep a dropped cache")
}

// The timer still expires entries of a live cache, with no caller. In a
// synctest bubble, so that the TTL passes on the bubble's clock rather
// than by polling the wall clock.
//
// Guards the reported leaks of issue 8 (item 2: memory that must be freed).
func TestTTLTimerStillExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := MustNew(WithMaxSize(10), WithTTL(time.Millisecond))
		c.Set(1, 1)
		c.Set(2, 2)
		size := func() int {
			c.e.Mu.Lock()
			defer c.e.Mu.Unlock()
			return c.e.Size()
		}
		require.Equal(t, 2, size())
		time.Sleep(time.Millisecond - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 2, size(), "not expired before the TTL")
		time.Sleep(time.Nanosecond)
		synctest.Wait() // the timer has fired and removed them
		assert.Equal(t, 0, size(), "the timer expires entries with no caller")
		assert.Equal(t, uint64(2), c.e.Rec.Snapshot().Expirations)
		runtime.KeepAlive(c)
	})
}
