package redistier

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatedReplica is a replica (a tier with a client of its own) whose
// subscription starts when gate closes, and which reports its loads'
// waits on waits and the messages it handled on msgs.
type gatedReplica struct {
	tier  *Tier
	gate  chan struct{}
	waits chan string
	msgs  chan byte
}

func newGatedReplica(t *testing.T, opts ...Option) *gatedReplica {
	t.Helper()
	needRedis(t)
	r := &gatedReplica{gate: make(chan struct{}), waits: make(chan string, 16), msgs: make(chan byte, 16)}
	c := srv.Client()
	// Generous durations, as newTier's: the loads wait for the gated
	// subscription and for each other's leases as long as the test takes.
	tier, err := New(c, append([]Option{WithBudget(hangAfter), WithMaxWait(hangAfter), withSubscribeGate(r.gate),
		withWaiting(func(w string) { r.waits <- w }), withHandled(func(k byte) { r.msgs <- k })}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = tier.Close()
		_ = c.Close()
	})
	r.tier = tier
	return r
}

// next returns the kind of the next message r handled, other than a new
// generation's (the first load of a function starts its generation, and
// publishes it as a Clear: see generationScript).
func (r *gatedReplica) next(t *testing.T) byte {
	t.Helper()
	for {
		select {
		case k := <-r.msgs:
			if k != msgClear {
				return k
			}
		case <-time.After(hangAfter):
			t.Fatal("hung waiting for a message")
			return 0
		}
	}
}

// TestConcurrentColdFetchKeepsL1: two replicas that start together and
// fetch one cold key at once (one computes, one waits on its lease) both
// keep the value in L1 (a value read from Redis is stored in L1), and the
// fill message drops nothing. It used to leave both empty: the first
// subscription flushed the tiered caches, detaching the loads in flight,
// so neither stored its result. A real invalidation still drops the
// entry in both.
func TestConcurrentColdFetchKeepsL1(t *testing.T) {
	flushAll(t)
	ctx := context.Background()
	a, b := newGatedReplica(t), newGatedReplica(t)
	var execs atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	fn := func(ctx context.Context, sku string) (int, error) {
		if execs.Add(1) == 1 {
			close(started)
		}
		<-release
		return 42, nil
	}
	fa := memo.FuncCtx(fn, memo.WithName(t.Name()), memo.WithTier(a.tier), memo.WithTTL(time.Minute))
	fb := memo.FuncCtx(fn, memo.WithName(t.Name()), memo.WithTier(b.tier), memo.WithTTL(time.Minute))
	call := func(f func(context.Context, string) (int, error)) chan int {
		out := make(chan int, 1)
		go func() {
			v, err := f(ctx, "k")
			assert.NoError(t, err)
			out <- v
		}()
		return out
	}

	// A's load starts before A's subscription is in place: it waits for it.
	resA := call(fa)
	require.Equal(t, "subscription", <-a.waits)
	close(a.gate)
	<-started // A holds the lease and runs the function
	resB := call(fb)
	require.Equal(t, "subscription", <-b.waits)
	close(b.gate)
	require.Equal(t, "lease", <-b.waits, "B waits for A's fill")
	close(release)
	assert.Equal(t, 42, <-resA)
	assert.Equal(t, 42, <-resB)
	// Both handle the fill message (A its own); it drops nothing.
	assert.Equal(t, byte(msgFill), a.next(t))
	assert.Equal(t, byte(msgFill), b.next(t))

	assert.Equal(t, int64(1), execs.Load())
	assert.Equal(t, uint64(1), a.tier.Stats().Fills)
	assert.Equal(t, uint64(1), b.tier.Stats().LeaseWaits)
	assert.Equal(t, uint64(1), b.tier.Stats().Hits)
	assert.Equal(t, 1, memo.CacheOf(fa).Len(), "the holder keeps its value in L1")
	assert.Equal(t, 1, memo.CacheOf(fb).Len(), "the waiter keeps the value it read from Redis in L1")
	// And hits there, without Redis.
	before := b.tier.Stats()
	v, err := fb(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.Equal(t, before.Hits+before.Misses, b.tier.Stats().Hits+b.tier.Stats().Misses)

	// A real invalidation drops the entry in both replicas.
	_, err = memo.InvalidateContext(ctx, fa, "k")
	require.NoError(t, err)
	assert.Equal(t, 0, memo.CacheOf(fa).Len())
	assert.Equal(t, byte(msgInvalidate), b.next(t))
	assert.Equal(t, 0, memo.CacheOf(fb).Len(), "the peer drops its L1 copy on the broadcast")
	assert.Equal(t, byte(msgInvalidate), a.next(t))
}

// TestLoadBeforeSubscriptionIsFlushed: a load that could not wait for the
// first subscription (it took longer than the budget) runs locally, and
// the first subscription then flushes what it stored, since an
// invalidation may have been missed meanwhile.
func TestLoadBeforeSubscriptionIsFlushed(t *testing.T) {
	flushAll(t)
	ctx := context.Background()
	r := newGatedReplica(t, WithBudget(time.Millisecond))
	var execs atomic.Int64
	f := memo.FuncCtx(func(ctx context.Context, k string) (int, error) { execs.Add(1); return 7, nil },
		memo.WithName(t.Name()), memo.WithTier(r.tier))
	v, err := f(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, 7, v)
	assert.Equal(t, "subscription", <-r.waits)
	assert.Equal(t, uint64(1), r.tier.Stats().LocalRuns)
	assert.Equal(t, 1, memo.CacheOf(f).Len())
	close(r.gate)
	<-r.tier.Ready()
	assert.Equal(t, 0, memo.CacheOf(f).Len(), "the first subscription flushes what was stored before it")
	assert.Empty(t, valueKeys(t, srv), "a local run writes nothing to Redis")
}
