package redistier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refreshEvery is the refresh interval of the refresh tests: short, since
// the entries must get past it in real time (a real redis-server rules out
// testing/synctest). The tests wait 2×refreshEvery for that once, and order
// everything else with channels and counters.
const refreshEvery = 5 * time.Millisecond

// gatedSource is a function whose execution number gate blocks until
// release is closed, after a send on started.
type gatedSource struct {
	execs   atomic.Int64
	gate    int64
	fail    atomic.Bool
	started chan struct{}
	release chan struct{}
}

func newGated(gate int64) *gatedSource {
	return &gatedSource{gate: gate, started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gatedSource) fn(k string) (string, error) {
	n := g.execs.Add(1)
	if n == g.gate {
		g.started <- struct{}{}
		<-g.release
	}
	if g.fail.Load() {
		return "", errors.New("source down")
	}
	return fmt.Sprintf("%s-%d", k, n), nil
}

func refreshOpts(name string, tier *Tier) []memo.Option {
	return []memo.Option{memo.WithName(name), memo.WithTier(tier), memo.WithTTL(time.Hour), memo.WithRefreshAfter(refreshEvery)}
}

// pastRefresh waits until entries stored before the call are due for a
// refresh.
func pastRefresh() { time.Sleep(2 * refreshEvery) }

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangAfter):
		t.Fatalf("hung waiting for %s", what)
	}
}

func TestRefreshRunsOnceAcrossReplicas(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	src := newGated(2)
	fa := memo.FuncErr(src.fn, refreshOpts(t.Name(), a)...)
	fb := memo.FuncErr(src.fn, refreshOpts(t.Name(), b)...)
	for _, f := range []func(string) (string, error){fa, fb} {
		v, err := f("k")
		require.NoError(t, err)
		require.Equal(t, "k-1", v)
	}
	require.Equal(t, int64(1), src.execs.Load(), "b reads a's value from L2")
	pastRefresh()

	// 100 concurrent hits on each replica: every caller gets the old value
	// at once, while the one refresh is blocked in the function.
	begin := make(chan struct{})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for _, f := range []func(string) (string, error){fa, fb} {
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				if v, err := f("k"); err != nil || v != "k-1" {
					wrong.Add(1)
				}
			}()
		}
	}
	close(begin)
	callersDone := make(chan struct{})
	go func() { wg.Wait(); close(callersDone) }()
	wait(t, callersDone, "the callers (they must not wait for the refresh)")
	assert.Zero(t, wrong.Load())
	wait(t, src.started, "the refresh")
	// The other replica's refresh waits on the lease of the one that runs.
	require.Eventually(t, func() bool { return a.Stats().LeaseWaits+b.Stats().LeaseWaits == 1 }, hangAfter, time.Millisecond)
	close(src.release)
	require.Eventually(t, func() bool {
		return memo.CacheOf(fa).Stats().RefreshesSucceeded == 1 && memo.CacheOf(fb).Stats().RefreshesSucceeded == 1
	}, hangAfter, time.Millisecond)
	assert.Equal(t, int64(2), src.execs.Load(), "one refresh executed across both replicas")
	assert.Equal(t, uint64(1), a.Stats().RefreshHits+b.Stats().RefreshHits, "the other took its value from L2")
	assert.Equal(t, uint64(2), a.Stats().Fills+b.Stats().Fills)
	assert.Equal(t, uint64(1), memo.CacheOf(fa).Stats().RefreshesStarted)
	assert.Equal(t, uint64(1), memo.CacheOf(fb).Stats().RefreshesStarted)

	// A third replica reads the refreshed value from L2.
	c := newTier(t, srv)
	fc := memo.FuncErr(src.fn, refreshOpts(t.Name(), c)...)
	v, err := fc("k")
	require.NoError(t, err)
	assert.Equal(t, "k-2", v)
	assert.Equal(t, uint64(1), c.Stats().Hits)
	assert.Equal(t, int64(2), src.execs.Load())
	// And both replicas serve it from L1 (a hit may start the next
	// refresh: it is waited for, so that it does not outlive the test).
	for _, f := range []func(string) (string, error){fa, fb} {
		v, err := f("k")
		require.NoError(t, err)
		assert.Equal(t, "k-2", v)
	}
	require.Eventually(t, func() bool {
		for _, f := range []func(string) (string, error){fa, fb} {
			st := memo.CacheOf(f).Stats()
			if st.RefreshesStarted != st.RefreshesSucceeded+st.RefreshesFailed {
				return false
			}
		}
		return true
	}, hangAfter, time.Millisecond)
}

func TestRefreshInvalidatedDoesNotStore(t *testing.T) {
	for _, by := range []string{"local", "peer"} {
		t.Run(by, func(t *testing.T) {
			flushAll(t)
			invalidated := make(chan struct{}, 1)
			a := newTier(t, srv, withHandled(func(kind byte) {
				if kind == msgInvalidate {
					invalidated <- struct{}{}
				}
			}))
			b := newTier(t, srv)
			src := newGated(2)
			fa := memo.FuncErr(src.fn, refreshOpts(t.Name(), a)...)
			fb := memo.FuncErr(src.fn, refreshOpts(t.Name(), b)...)
			v, err := fa("k")
			require.NoError(t, err)
			require.Equal(t, "k-1", v)
			pastRefresh()
			v, err = fa("k") // starts the refresh
			require.NoError(t, err)
			require.Equal(t, "k-1", v)
			wait(t, src.started, "the refresh")

			inv := fa
			if by == "peer" {
				inv = fb
			}
			_, err = memo.InvalidateContext(context.Background(), inv, "k")
			require.NoError(t, err)
			wait(t, invalidated, "a's receipt of the invalidation")
			close(src.release)
			require.Eventually(t, func() bool { return memo.CacheOf(fa).Stats().RefreshesSucceeded == 1 }, hangAfter, time.Millisecond)

			assert.Equal(t, uint64(1), a.Stats().Fenced, "the refresh's fill is fenced")
			assert.Empty(t, valueKeys(t, srv), "L2 does not get the refreshed value")
			v, err = fa("k")
			require.NoError(t, err)
			assert.Equal(t, "k-3", v, "L1 does not get the refreshed value either")
			assert.Equal(t, int64(3), src.execs.Load())
		})
	}
}

func TestFailedRefreshLeavesL2(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	src := newGated(0)
	fa := memo.FuncErr(src.fn, refreshOpts(t.Name(), a)...)
	v, err := fa("k")
	require.NoError(t, err)
	require.Equal(t, "k-1", v)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	rdb := srv.Client()
	defer rdb.Close()
	before, err := rdb.Get(context.Background(), keys[0]).Bytes()
	require.NoError(t, err)

	src.fail.Store(true)
	pastRefresh()
	v, err = fa("k")
	require.NoError(t, err)
	assert.Equal(t, "k-1", v)
	require.Eventually(t, func() bool { return memo.CacheOf(fa).Stats().RefreshesFailed == 1 }, hangAfter, time.Millisecond)
	after, err := rdb.Get(context.Background(), keys[0]).Bytes()
	require.NoError(t, err)
	assert.Equal(t, before, after, "L2 keeps the old value, byte for byte")
	assert.Empty(t, keysOf(t, srv.Client(), "*:l"), "the lease is given back")
	assert.Equal(t, uint64(1), a.Stats().Fills)
}

// Stale-if-error with a tier: a replica serves its own stale L1 value when
// the execution fails; nothing stale is written to L2, and a replica with
// no stale copy gets the error.
func TestStaleIfErrorWithTier(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	src := newGated(0)
	const ttl = 20 * time.Millisecond
	opts := func(tier *Tier) []memo.Option {
		return []memo.Option{memo.WithName(t.Name()), memo.WithTier(tier), memo.WithTTL(ttl), memo.WithStaleIfError(time.Hour)}
	}
	fa := memo.FuncErr(src.fn, opts(a)...)
	fb := memo.FuncErr(src.fn, opts(b)...)
	v, err := fa("k")
	require.NoError(t, err)
	require.Equal(t, "k-1", v)
	time.Sleep(2 * ttl) // past the TTL in L1 and in L2 (real time: a real server)
	assert.Empty(t, valueKeys(t, srv), "the L2 value expired")

	src.fail.Store(true)
	v, err = fa("k")
	require.NoError(t, err)
	assert.Equal(t, "k-1", v, "a serves its stale L1 value")
	assert.Equal(t, uint64(1), memo.CacheOf(fa).Stats().StaleServed)
	_, err = fb("k")
	assert.EqualError(t, err, "source down", "b has no stale copy, and L2 holds none")
	assert.Empty(t, valueKeys(t, srv), "nothing stale is written to L2")
	assert.Equal(t, uint64(1), a.Stats().Fills)
	assert.Equal(t, int64(3), src.execs.Load())
}
