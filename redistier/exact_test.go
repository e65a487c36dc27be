package redistier

import (
	"context"
	"math"
	"runtime"
	"strconv"
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

// Exactness across replicas (issue 18): invalidations that are not lost
// or undone, TTLs that cross the tiers, and the tier's load and lifecycle.

// TestEvictedGenerationIsNotZero guards against a lost generation key:
// under allkeys-lru the key is evicted, and the old tier read its absence
// as generation "0", so InvalidateContext deleted nothing, returned nil,
// and replica b kept reading the old value from Redis. Now a missing key
// starts a fresh generation, published as a Clear: everything misses.
func TestEvictedGenerationIsNotZero(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var version atomic.Int64
	fn := func(k int) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	memo.CacheOf(fa).Clear() // a generation key is written
	require.Equal(t, int64(0), fa(1))
	require.Equal(t, int64(0), fb(1))
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	gens, err := rdb.Keys(ctx, "*"+t.Name()+"*:gen").Result()
	require.NoError(t, err)
	require.Len(t, gens, 1)
	require.NoError(t, rdb.Del(ctx, gens[0]).Err()) // as allkeys-lru would

	version.Store(1)
	_, err = memo.InvalidateContext(ctx, fa, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), fa(1))
	// b learns the new generation from the channel; its next read misses.
	require.Eventually(t, func() bool { return fb(1) == 1 }, hangAfter, time.Millisecond, "b reads the new value")
	memo.CacheOf(fb).Clear()
	for range 10 {
		memo.Invalidate(fb, 1) // local only: b rereads Redis
		assert.Equal(t, int64(1), fb(1), "no stale read from the lost generation")
	}
}

// TestFailedInvalidationIsRetried guards a failed InvalidateContext: it
// returns its error, the tier retries it until it lands, the writing
// replica never serves the old value meanwhile (the key stays local-only),
// and the other replica drops its copy once the retry lands. The old tier
// retried nothing: b served the old value until its L1 bound, and a read
// the old value back from Redis once it reconnected.
func TestFailedInvalidationIsRetried(t *testing.T) {
	s := newServer(t)
	opts := []Option{WithBudget(50 * time.Millisecond), WithBreakerFailures(3), WithBreakerTimeout(100 * time.Millisecond)}
	a, b := newTier(t, s, opts...), newTier(t, s, opts...)
	var version atomic.Int64
	fn := func(k int) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	require.Equal(t, int64(0), fa(1))
	require.Equal(t, int64(0), fb(1))

	s.Stop() // SIGSTOP: Redis cannot be reached
	version.Store(1)
	_, err := memo.InvalidateContext(context.Background(), fa, 1)
	require.Error(t, err, "the failed invalidation returns its error")
	assert.Equal(t, uint64(1), a.Stats().InvalidationsPending)
	for range 5 {
		assert.Equal(t, int64(1), fa(1), "the writer does not serve the old value")
		memo.Invalidate(fa, 1)
	}
	s.Cont()
	resumed := time.Now()
	for range 20 { // Redis is back, the retry has not landed yet maybe: still never the old value
		memo.Invalidate(fa, 1)
		assert.Equal(t, int64(1), fa(1), "the writer does not read the old value back")
	}
	require.Eventually(t, func() bool { return a.Stats().InvalidationsRetried == 1 }, hangAfter, time.Millisecond, "the retry lands")
	require.Eventually(t, func() bool { return fb(1) == 1 }, hangAfter, time.Millisecond, "and b drops its copy")
	t.Logf("Redis back: b served the new value %v later (the retry's backoff and the message)", time.Since(resumed))
	memo.Invalidate(fa, 1)
	assert.Equal(t, int64(1), fa(1))
}

// TestTTLFuncReachesRedis guards the TTL of a result in Redis: the old
// tier wrote every value with the function's WithTTL or its own default
// (1 h), so a result WithTTLFunc gave 200 ms lived an hour in Redis.
func TestTTLFuncReachesRedis(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	f := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()), memo.WithTier(a),
		memo.WithTTLFunc(func([]any) time.Duration { return 200 * time.Millisecond }))
	f(1)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	rdb := srv.Client()
	defer rdb.Close()
	left, err := rdb.PTTL(context.Background(), keys[0]).Result()
	require.NoError(t, err)
	assert.Positive(t, left)
	assert.LessOrEqual(t, left, 200*time.Millisecond, "the Redis copy keeps the TTL the result was given")
}

// TestL1CopyExpiresWithRedisCopy guards the age of a value read from
// Redis: the old tier gave the local copy a full fresh TTL, so a value
// whose TTL had nearly run out in Redis was served from b's L1 long after.
// Now the copy expires when the value does in Redis.
func TestL1CopyExpiresWithRedisCopy(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var version atomic.Int64
	fn := func(k int) int64 { return version.Load() }
	const ttl = 2 * time.Second
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a), memo.WithTTL(ttl))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b), memo.WithTTL(ttl))
	fa(1)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	require.Eventually(t, func() bool { return rdb.PTTL(ctx, keys[0]).Val() < ttl/2 }, hangAfter, time.Millisecond)
	require.Equal(t, int64(0), fb(1), "b reads the value from Redis, half its TTL gone")
	require.Equal(t, uint64(1), b.Stats().Hits)
	version.Store(1)
	require.Eventually(t, func() bool { return rdb.Exists(ctx, keys[0]).Val() == 0 }, hangAfter, time.Millisecond, "the value expires in Redis")
	assert.Equal(t, int64(1), fb(1), "b's copy expired with it")
}

// TestCacheIfRunsOncePerExecution guards WithCacheIf and WithTTLFunc with
// a tier: the old tier ran each twice per execution (once for Redis, once
// for the local cache), and a predicate that answered differently put in
// Redis a result the local cache had refused.
func TestCacheIfRunsOncePerExecution(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	var ifs, ttls atomic.Int64
	f := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()), memo.WithTier(a),
		memo.WithCacheIf(func([]any) bool { return ifs.Add(1) == 2 }), // refuses, then would accept
		memo.WithTTLFunc(func([]any) time.Duration { ttls.Add(1); return time.Minute }))
	f(1)
	assert.Equal(t, int64(1), ifs.Load(), "WithCacheIf runs once")
	assert.Zero(t, ttls.Load(), "WithTTLFunc does not run on a refused result")
	assert.Empty(t, valueKeys(t, srv), "nothing refused reaches Redis")
	assert.Zero(t, memo.CacheOf(f).Len())
	f(2)
	assert.Equal(t, int64(2), ifs.Load())
	assert.Equal(t, int64(1), ttls.Load(), "WithTTLFunc runs once")
	assert.Len(t, valueKeys(t, srv), 1)
	assert.Equal(t, 1, memo.CacheOf(f).Len())
}

// TestFailureReleasesEveryWaiter guards a failing function across
// replicas: the old tier released the lease, and the waiters took it one
// after another, each running the failing function in turn (8 replicas
// and a 500 ms failure: the last caller failed after 4 s). Now a failure
// wakes every waiter to run on its own at once: all of them are running
// together before any returns.
func TestFailureReleasesEveryWaiter(t *testing.T) {
	flushAll(t)
	const replicas = 8
	var running atomic.Int64
	release, together := make(chan struct{}), make(chan struct{})
	fn := func(k int) (int, error) {
		switch running.Add(1) {
		case 1: // the lease holder
			<-release
		case replicas:
			close(together)
		default:
			select { // a waiter's own run: until all are running (or give up)
			case <-together:
			case <-time.After(hangAfter): // liveness only: the test below fails first
			}
		}
		return 0, assert.AnError
	}
	fs := make([]func(int) (int, error), replicas)
	tiers := make([]*Tier, replicas)
	for i := range fs {
		tiers[i] = newTier(t, srv)
		fs[i] = memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(tiers[i]))
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _, _ = fs[0](1) })
	require.Eventually(t, func() bool { return running.Load() == 1 }, hangAfter, time.Millisecond)
	for i := 1; i < replicas; i++ {
		wg.Go(func() {
			_, err := fs[i](1)
			assert.Error(t, err)
		})
		require.Eventually(t, func() bool { return tiers[i].Stats().LeaseWaits == 1 }, hangAfter, time.Millisecond)
	}
	close(release) // the holder fails: every waiter starts its own run at once
	select {
	case <-together:
	case <-time.After(hangAfter): // a waiter runs until all run: one after another, the first never ends
		t.Fatalf("%d of %d waiters ran after the holder failed: they take the lease one after another", running.Load()-1, replicas-1)
	}
	wg.Wait()
	var woken uint64
	for _, tr := range tiers {
		woken += tr.Stats().FailedWakes
	}
	assert.Equal(t, uint64(replicas-1), woken)
}

// TestNoBusyLoopAfterClose guards a load waiting on another process's
// lease when its tier closes: the old tier's wait channel was closed for
// ever, and the load ran the acquire script in a loop until its maximum
// wait (thousands of scripts a second). Now it runs locally at once.
func TestNoBusyLoopAfterClose(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv, WithMaxWait(3*time.Second))
	holder := newTier(t, srv)
	hold := make(chan struct{})
	fn := func(k int) int {
		<-hold
		return k
	}
	fh := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(holder))
	fa := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()), memo.WithTier(a))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(hold)
	wg.Go(func() { fh(1) })
	require.Eventually(t, func() bool { return holder.Stats().Misses == 1 }, hangAfter, time.Millisecond)
	done := make(chan int)
	go func() { done <- fa(1) }()
	require.Eventually(t, func() bool { return a.Stats().LeaseWaits == 1 }, hangAfter, time.Millisecond)
	before := evalCalls(t)
	require.NoError(t, a.Close())
	assert.Equal(t, 1, <-done)
	assert.Less(t, evalCalls(t)-before, int64(10), "no script loop after Close")
}

// evalCalls returns how many scripts srv has run.
func evalCalls(t *testing.T) int64 {
	rdb := srv.Client()
	defer rdb.Close()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	var n int64
	for _, l := range strings.Split(info, "\n") {
		if strings.HasPrefix(l, "cmdstat_evalsha:") || strings.HasPrefix(l, "cmdstat_eval:") {
			c := strings.TrimPrefix(strings.SplitN(l, ",", 2)[0], l[:strings.Index(l, ":")+1])
			v, _ := strconv.ParseInt(strings.TrimPrefix(c, "calls="), 10, 64)
			n += v
		}
	}
	return n
}

// TestCollectedFunctionsUnbind guards the bindings of collected
// functions: the old tier kept each for ever (440 B), and a shared cache's
// Clear went on clearing every dropped function's generation in Redis
// (2,000 dropped functions: 850 ms per Clear).
func TestCollectedFunctionsUnbind(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	shared := memo.MustNew(memo.WithMaxSize(100))
	const n = 2000
	// dropRound decorates n functions, drops them, and waits until every
	// one is unbound (no deadline: go test -timeout reports a hang).
	round := 0
	dropRound := func() {
		for i := range n {
			f := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()+strconv.Itoa(round*n+i)), memo.WithTier(a), memo.WithCache(shared))
			_ = f
		}
		round++
		for {
			runtime.GC()
			a.mu.Lock()
			left := len(a.funcs)
			a.mu.Unlock()
			if left == 0 {
				return
			}
			time.Sleep(time.Millisecond) // cleanups run on their own goroutine
		}
	}
	// A first round grows what grows once (the tier's and the cache's maps
	// keep their buckets); the second is measured.
	dropRound()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	dropRound()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap after GC: %+d B for %d dropped functions (%.0f B each)", grown, n, float64(grown)/n)
	assert.Less(t, grown, int64(n*100), "a dropped function leaves under 100 B")
	clears := a.Stats().Clears
	shared.Clear()
	assert.Equal(t, clears, a.Stats().Clears, "Clear no longer reaches dropped functions")
}

// TestDurationsSaturate guards duration options at their extremes: the
// old tier's WithMaxLocalAge(math.MaxInt64) crashed the process in
// time.NewTicker (its period overflowed to a negative one for most of the
// random spreads it drew: twenty tiers all but surely draw one).
func TestDurationsSaturate(t *testing.T) {
	flushAll(t)
	opts := []Option{WithMaxLocalAge(math.MaxInt64), WithLease(math.MaxInt64), WithMaxWait(math.MaxInt64), WithTTL(math.MaxInt64)}
	for range 19 {
		newTier(t, srv, opts...)
	}
	a := newTier(t, srv, opts...)
	f := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()), memo.WithTier(a))
	assert.Equal(t, 1, f(1))
	assert.Equal(t, uint64(1), a.Stats().Fills)
	assert.Zero(t, a.Stats().Errors)
}

// TestBracesInNamesAreRefused guards Redis Cluster's hash tags: a name
// with a brace gave a value and its lease different slots (every call ran
// locally, and InvalidateContext failed with CROSSSLOT).
func TestBracesInNamesAreRefused(t *testing.T) {
	needRedis(t)
	a := newTier(t, srv)
	for _, name := range []string{"users{x}", "a{", "b}"} {
		assert.PanicsWithError(t, `memo: WithTier("`+name+`"): redistier: the name "`+name+`" holds a brace, which Redis Cluster reads as a hash tag: a value and its lease would land in different slots; use a name without { and }`,
			func() { memo.Decorate(func(k int) int { return k }, memo.WithName(name), memo.WithTier(a)) })
	}
}

// TestHungRefreshLeaseRunsOut guards issue 17's hung refresh: the lease
// heartbeat renewed the key's lease for as long as the execution ran,
// even after its context ended, so a hung refresh held the key for
// ever. Now the heartbeat stops with the context, and the lease runs out.
func TestHungRefreshLeaseRunsOut(t *testing.T) {
	flushAll(t)
	const lease = 300 * time.Millisecond
	a := newTier(t, srv, WithLease(lease))
	bi, err := a.Bind(memo.TierFunc{Name: t.Name(), Results: nil})
	require.NoError(t, err)
	b := bi.(*binding)
	ctx, cancel := context.WithCancel(context.Background())
	hung, leased := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Refresh(ctx, memo.TierKey{Args: []byte{1}}, time.Now(), func(context.Context) ([]any, time.Duration, bool) {
			close(leased)
			<-hung
			return []any{}, 0, true
		})
	}()
	<-leased
	rdb := srv.Client()
	defer rdb.Close()
	leases, err := rdb.Keys(context.Background(), "*:l").Result()
	require.NoError(t, err)
	require.Len(t, leases, 1)
	cancel() // the refresh's deadline passes; the function hangs on
	require.Eventually(t, func() bool { return rdb.Exists(context.Background(), leases[0]).Val() == 0 },
		hangAfter, time.Millisecond, "the lease runs out once the refresh's context ended")
	close(hung)
	<-done
	assert.Equal(t, uint64(1), a.Stats().Fenced, "the hung refresh's late fill is fenced")
}

var _ = redis.Nil
