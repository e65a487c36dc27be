package redistier

import (
	"context"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// A refresh whose function hangs, ignoring its context, does not keep the
// key's lease for ever: memo ends the refresh's context at its deadline
// (the longer of the TTL and twice the refresh interval), the lease's
// heartbeat stops with it, and the lease expires, so that other replicas'
// misses are not held WithMaxWait each. (The heartbeat renewed it for as
// long as the function ran.)
func TestHungRefreshGivesUpItsLease(t *testing.T) {
	flushAll(t)
	tier := newTier(t, srv, WithLease(300*time.Millisecond))
	src := newGated(2)
	defer close(src.release)
	f := memo.FuncErr(src.fn, memo.WithName(t.Name()), memo.WithTier(tier),
		memo.WithTTL(400*time.Millisecond), memo.WithRefreshAfter(50*time.Millisecond))
	_, err := f("k")
	require.NoError(t, err)
	time.Sleep(60 * time.Millisecond) // due for a refresh
	_, err = f("k")
	require.NoError(t, err)
	wait(t, src.started, "the refresh")

	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	leases := func() int {
		keys, err := c.Keys(context.Background(), "*:l").Result()
		if err != nil {
			return -1
		}
		return len(keys)
	}
	require.Equal(t, 1, leases(), "the refresh holds the key's lease")
	// The refresh's deadline is 400 ms after it started; the lease, renewed
	// every 100 ms until then, lapses 300 ms later at most.
	require.Eventually(t, func() bool { return leases() == 0 }, hangAfter, 20*time.Millisecond,
		"the hung refresh's lease is still renewed")
}
