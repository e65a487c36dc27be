package redistier

import (
	"context"
	"errors"
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

// invGate acts on the invalidation script's runs (EVALSHA): failNext
// fails the next one without sending it, holdNext holds the next one that
// succeeded (reached closed) until release is closed.
type invGate struct {
	failNext, holdNext atomic.Bool
	reached, release   chan struct{}
}

func (g *invGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *invGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		a := c.Args()
		if !strings.EqualFold(c.Name(), "evalsha") || len(a) < 2 || a[1] != invalidateScript.Hash() {
			return next(ctx, c)
		}
		if g.failNext.CompareAndSwap(true, false) {
			c.SetErr(errors.New("review: injected failure"))
			return c.Err()
		}
		err := next(ctx, c)
		if err == nil && g.holdNext.CompareAndSwap(true, false) {
			close(g.reached)
			<-g.release
		}
		return err
	}
}
func (g *invGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// noPending reports whether none of t's functions has an invalidation or
// a Clear left to retry.
func noPending(t *Tier) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, bs := range t.funcs {
		for _, b := range bs {
			b.pendingMu.Lock()
			n := len(b.pending)
			b.pendingMu.Unlock()
			if n > 0 || b.pendingClear.Load() {
				return false
			}
		}
	}
	return true
}

// TestPendingInvalidationNotLostToRetryInFlight: an invalidation of a key
// fails and is kept for retry; its retry lands (the value is deleted); a
// replica fills the key again; a second invalidation of the key fails
// while the retry is still finishing. The retry then removed the key from
// the pending set (same key, same arguments), so the second invalidation
// was never retried: the value it was to remove stayed in Redis, and the
// replica that invalidated read it back.
func TestPendingInvalidationNotLostToRetryInFlight(t *testing.T) {
	flushAll(t)
	var version atomic.Int64
	version.Store(1)
	fn := func(k int) int64 { return version.Load() }

	c := srv.Client()
	gate := &invGate{reached: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(gate)
	var once sync.Once
	release := func() { once.Do(func() { close(gate.release) }) }
	tierA, err := New(c, WithBudget(5*time.Second))
	require.NoError(t, err)
	t.Cleanup(func() {
		release()
		_ = tierA.Close()
		_ = c.Close()
	})
	<-tierA.Ready()
	ctx := context.Background()
	require.NoError(t, invalidateScript.Load(ctx, c).Err()) // EVALSHA from the start
	a := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(tierA))
	b := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)))
	require.Equal(t, int64(1), a(1))

	gate.failNext.Store(true)
	gate.holdNext.Store(true)
	_, err = memo.InvalidateContext(ctx, a, 1)
	require.Error(t, err, "the first invalidation fails, and is kept for retry")
	<-gate.reached // its retry has deleted the value, and is finishing

	version.Store(2)
	require.Equal(t, int64(2), b(1), "replica B fills the key again")
	version.Store(3)
	gate.failNext.Store(true)
	_, err = memo.InvalidateContext(ctx, a, 1)
	require.Error(t, err, "the second invalidation fails, and is to be retried")
	release()

	watchdog := time.Now().Add(hangAfter) // a liveness watchdog, not a speed bound
	for !noPending(tierA) {
		require.True(t, time.Now().Before(watchdog), "the invalidations are still pending after %v", hangAfter)
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, int64(3), a(1), "replica A read back the value its failed invalidation was to remove")
}
