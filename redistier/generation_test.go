package redistier

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// genReadGate holds back, once armed, the reply of a GET of a generation
// key: the GET has read Redis when reached is closed, and its reply goes
// back to the tier when release is closed.
type genReadGate struct {
	armed            atomic.Bool
	reached, release chan struct{}
}

func (g *genReadGate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *genReadGate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		err := next(ctx, c)
		if a := c.Args(); strings.EqualFold(c.Name(), "get") && len(a) > 1 && strings.HasSuffix(a[1].(string), ":gen") && g.armed.CompareAndSwap(true, false) {
			close(g.reached)
			<-g.release
		}
		return err
	}
}
func (g *genReadGate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestClearNotUndoneByGenerationReadInFlight: a replica's first call of a
// function reads the generation (G0) while the replica's Cache.Clear moves
// the function to G1. The read's reply, arriving after Clear returned and
// before the Clear's own message is handled, made G0 current again
// (setGeneration), so calls made after Clear returned read the values of
// G0, from before the Clear, until the message arrived. The subscription
// is held (in the handler of a message of no function) to keep the
// message back.
func TestClearNotUndoneByGenerationReadInFlight(t *testing.T) {
	flushAll(t)
	var version atomic.Int64
	version.Store(1)
	fn := func(k int) int64 { return version.Load() }

	// Replica A: its generation reads can be held, and its subscription.
	c := srv.Client()
	gate := &genReadGate{reached: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(gate)
	var releaseOnce sync.Once
	releaseGet := func() { releaseOnce.Do(func() { close(gate.release) }) }
	tierA := newTappedTier(t, c)
	t.Cleanup(releaseGet) // before the tier's cleanup

	// Replica B computes the value under G0.
	b := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)))
	require.Equal(t, int64(1), b(1))
	tierA.waitFor(t, msgClear, msgFill) // the function's first generation (published when it started) and the first fill

	tierA.hold(t, c)

	cache, err := memo.New(memo.WithMaxSize(100))
	require.NoError(t, err)
	a := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(tierA), memo.WithCache(cache))
	gate.armed.Store(true)
	first := make(chan int64)
	go func() { first <- a(1) }() // A's first call: it reads the generation (G0)
	<-gate.reached

	version.Store(2) // the data changed: Clear drops every result
	cache.Clear()
	releaseGet()
	<-first // concurrent with Clear: either value is fine for it

	assert.Equal(t, int64(2), a(1), "a call made after Cache.Clear returned got a result from before it")
	tierA.release()
}
