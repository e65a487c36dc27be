package redistier

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clearGate holds back the pipeline that sets a generation key (a Clear's
// SET and PUBLISH) once armed: reached is closed when it arrives, and it
// goes on to Redis when release is closed.
type clearGate struct {
	armed            atomic.Bool
	reached, release chan struct{}
}

func (g *clearGate) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (g *clearGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (g *clearGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if a := c.Args(); strings.EqualFold(c.Name(), "set") && len(a) > 1 && strings.HasSuffix(a[1].(string), ":gen") && g.armed.CompareAndSwap(true, false) {
				close(g.reached)
				<-g.release
			}
		}
		return next(ctx, cmds)
	}
}

// TestClearLeavesNoOldValueLocally: Cache.Clear clears the local entries
// first and the tier's afterwards. A call made in between misses locally,
// reads the value of the old generation from Redis and stores it in L1;
// the tier's Clear then moves this process to the new generation without a
// flush, and its own Clear message, when handled after that (it names the
// generation this process now knows), flushes nothing either, so calls
// made after Clear returned keep getting the value from before the Clear.
// The subscription is held (in the handler of a message of no function)
// until Clear has returned, so that its message is handled after it.
func TestClearLeavesNoOldValueLocally(t *testing.T) {
	flushAll(t)
	c := srv.Client()
	gate := &clearGate{reached: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(gate)
	tier := newTappedTier(t, c)

	cache, err := memo.New(memo.WithMaxSize(100))
	require.NoError(t, err)
	var version atomic.Int64
	version.Store(1)
	f := memo.Decorate(func(k int) int64 { return version.Load() }, memo.WithName(t.Name()), memo.WithTier(tier), memo.WithCache(cache))
	require.Equal(t, int64(1), f(1))
	tier.waitFor(t, msgClear, msgFill) // the function's first generation (published when it started) and the first fill

	// Hold the subscription until Clear has returned.
	tier.hold(t, c)

	version.Store(2) // the data changed: Clear drops every result
	gate.armed.Store(true)
	cleared := make(chan struct{})
	go func() {
		cache.Clear()
		close(cleared)
	}()
	<-gate.reached // the local entries are cleared; the tier's Clear is on its way
	f(1)           // a call concurrent with Clear: either value is fine for it
	close(gate.release)
	<-cleared
	tier.release()
	tier.waitFor(t, msgClear) // this process's own Clear message has been handled

	assert.Equal(t, int64(2), f(1), "a call made after Cache.Clear returned got a result from before it")
}
