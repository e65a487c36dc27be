package redistier

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	msgs := make(chan byte, 64)
	var hold atomic.Bool
	holding, unhold := make(chan struct{}), make(chan struct{})
	var unholdOnce sync.Once
	release := func() { unholdOnce.Do(func() { close(unhold) }) }
	tier, err := New(c, WithBudget(5*time.Second), withHandled(func(k byte) {
		msgs <- k
		if k == msgFill && hold.CompareAndSwap(true, false) {
			close(holding)
			<-unhold
		}
	}))
	require.NoError(t, err)
	t.Cleanup(func() {
		release()
		_ = tier.Close()
		_ = c.Close()
	})
	<-tier.Ready()
	// waitFor reads the tier's messages until it has seen each kind. On a
	// Cluster, messages published through different nodes may arrive in
	// either order.
	waitFor := func(kinds ...byte) {
		t.Helper()
		want := map[byte]bool{}
		for _, k := range kinds {
			want[k] = true
		}
		for len(want) > 0 {
			select {
			case k := <-msgs:
				delete(want, k)
			case <-time.After(hangAfter): // a liveness watchdog, not a speed bound
				t.Fatalf("no message of kinds %q after %v", kinds, hangAfter)
			}
		}
	}

	cache, err := memo.New(memo.WithMaxSize(100))
	require.NoError(t, err)
	var version atomic.Int64
	version.Store(1)
	f := memo.Decorate(func(k int) int64 { return version.Load() }, memo.WithName(t.Name()), memo.WithTier(tier), memo.WithCache(cache))
	require.Equal(t, int64(1), f(1))
	waitFor(msgClear, msgFill) // the function's first generation (published when it started) and the first fill

	// Hold the subscription: a message for no function, whose handler
	// blocks until Clear has returned.
	hold.Store(true)
	require.NoError(t, c.Publish(context.Background(), tier.channel, message(msgFill, "review", "x", nil)).Err())
	<-holding

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
	release()
	waitFor(msgClear) // this process's own Clear message has been handled

	assert.Equal(t, int64(2), f(1), "a call made after Cache.Clear returned got a result from before it")
}
