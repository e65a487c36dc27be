package redistier

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/redistier/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Faults, each on a redis-server of its own: every call returns the right
// result, the breaker opens while Redis fails and closes after, and
// nothing stale is served after recovery. How long a call takes while
// Redis fails (about two budgets + the function's time at most) is
// BenchmarkFaultStoppedCall's: no test asserts a wall-clock bound.

const (
	faultBudget = 50 * time.Millisecond
	faultFn     = 2 * time.Millisecond
)

// faultRig is two replicas of one function on s, whose results carry the
// source's version.
type faultRig struct {
	s       *redistest.Server
	a, b    *Tier
	fa, fb  func(string) string
	version atomic.Int64
	execs   atomic.Int64
	logs    safeBuffer
}

func newFaultRig(t *testing.T, args ...string) *faultRig {
	r := &faultRig{s: newServer(t, args...)}
	opts := []Option{WithBreakerFailures(3), WithBreakerTimeout(200 * time.Millisecond), WithLogger(r.logs.logger())}
	// a has the budget under test; b, the replica whose reads must still
	// work, keeps newTier's generous one, so that a slow round trip on a
	// loaded machine is not a failure there.
	r.a, r.b = newTier(t, r.s, append(opts, WithBudget(faultBudget))...), newTier(t, r.s, opts...)
	fn := func(k string) string {
		r.execs.Add(1)
		time.Sleep(faultFn)
		return k + "@" + strconv.FormatInt(r.version.Load(), 10)
	}
	r.fa = memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(r.a))
	r.fb = memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(r.b))
	return r
}

// calls makes n calls of cold keys on a, checks each result, and returns
// the longest call's time (for the log).
func (r *faultRig) calls(t *testing.T, prefix string, n int) time.Duration {
	t.Helper()
	var worst time.Duration
	for i := range n {
		k := prefix + strconv.Itoa(i)
		start := time.Now()
		got := r.fa(k)
		d := time.Since(start)
		worst = max(worst, d)
		require.Equal(t, k+"@"+strconv.FormatInt(r.version.Load(), 10), got)
	}
	return worst
}

// recovered waits until the breaker has closed again and a's calls reach
// Redis.
func (r *faultRig) recovered(t *testing.T) {
	t.Helper()
	i := 0
	require.Eventually(t, func() bool {
		i++
		r.fa("probe" + strconv.Itoa(i))
		return r.a.Stats().BreakerState == "closed" && r.a.Stats().Fills > 0
	}, hangAfter, 5*time.Millisecond, "the breaker closes after recovery")
}

func TestFaultKilledAndRestarted(t *testing.T) {
	r := newFaultRig(t)
	assert.Equal(t, "k@0", r.fa("k"))
	assert.Equal(t, "k@0", r.fb("k"))
	resubs := r.a.Stats().Resubscribes

	r.s.Kill()
	r.version.Store(1)
	_, err := memo.InvalidateContext(context.Background(), r.fb, "k")
	assert.Error(t, err, "the tier could not be reached: InvalidateContext says so")
	worst := r.calls(t, "down", 20)
	assert.NotZero(t, r.a.Stats().BreakerOpened, "the breaker opened")
	assert.NotZero(t, r.a.Stats().Skipped, "and spared the later calls the budget")
	assert.True(t, r.a.Figures().BreakerOpen, "the exporters' figures say so")
	t.Logf("redis killed: worst call %v; breaker opened %d, skipped %d", worst, r.a.Stats().BreakerOpened, r.a.Stats().Skipped)

	require.NoError(t, r.s.Restart())
	r.recovered(t)
	assert.False(t, r.a.Figures().BreakerOpen)
	require.Eventually(t, func() bool { return r.a.Stats().Resubscribes > resubs }, hangAfter, time.Millisecond)
	assert.Equal(t, "k@1", r.fa("k"), "no stale value after the restart: a flushed its L1 on resubscribing")
	assert.Contains(t, r.logs.String(), "to=open", "the breaker's opening is logged")
	assert.Contains(t, r.logs.String(), "to=closed", "and its closing")
	assert.Equal(t, "k@1", r.fb("k"))
}

func TestFaultStopped(t *testing.T) {
	r := newFaultRig(t)
	r.fa("warm")
	r.s.Stop()
	worst := r.calls(t, "stopped", 15)
	assert.NotZero(t, r.a.Stats().BreakerOpened)
	t.Logf("redis SIGSTOPed: worst call %v", worst)
	r.s.Cont()
	r.recovered(t)
}

func TestFaultDebugSleep(t *testing.T) {
	r := newFaultRig(t)
	r.fa("warm")
	slept := make(chan error, 1)
	go func() { slept <- r.s.Do("DEBUG", "SLEEP", "1") }()
	require.Eventually(t, func() bool { return redistest.Ping(r.s.Addr) != nil }, hangAfter, time.Millisecond, "the server sleeps")
	worst := r.calls(t, "slow", 8)
	t.Logf("DEBUG SLEEP: worst call %v", worst)
	require.NoError(t, <-slept)
	r.recovered(t)
}

func TestFaultClientPauseWrite(t *testing.T) {
	r := newFaultRig(t)
	assert.Equal(t, "warm@0", r.fa("warm"))
	require.NoError(t, r.s.Do("CLIENT", "PAUSE", "1500", "WRITE"))
	worst := r.calls(t, "paused", 6)
	hits := r.b.Stats().Hits
	assert.Equal(t, "warm@0", r.fb("warm"), "reads still work")
	assert.Equal(t, hits+1, r.b.Stats().Hits, "an L2 hit during the pause")
	t.Logf("CLIENT PAUSE WRITE: worst call %v", worst)
	require.NoError(t, r.s.Do("CLIENT", "UNPAUSE"))
	r.recovered(t)
}

func TestFaultMaxmemoryNoeviction(t *testing.T) {
	r := newFaultRig(t)
	assert.Equal(t, "warm@0", r.fa("warm"))
	require.NoError(t, r.s.Do("CONFIG", "SET", "maxmemory-policy", "noeviction"))
	require.NoError(t, r.s.Do("CONFIG", "SET", "maxmemory", "1"))
	worst := r.calls(t, "oom", 20)
	assert.Equal(t, "warm@0", r.fb("warm"), "reads still work")
	assert.Zero(t, r.a.Stats().BreakerOpened, "OOM replies are not outages")
	t.Logf("maxmemory noeviction: worst call %v, errors %d", worst, r.a.Stats().Errors)
	require.NoError(t, r.s.Do("CONFIG", "SET", "maxmemory", "0"))
	r.recovered(t)
}

func TestFaultMaxmemoryVolatileLRU(t *testing.T) {
	r := newFaultRig(t)
	require.NoError(t, r.s.Do("CONFIG", "SET", "maxmemory-policy", "volatile-lru"))
	require.NoError(t, r.s.Do("CONFIG", "SET", "maxmemory", "2mb"))
	// Many keys: values and leases (all with TTLs) get evicted; results
	// stay right, the evictions cost only extra executions.
	worst := r.calls(t, "lru-"+string(make([]byte, 2000)), 300)
	for i := range 300 {
		k := "lru-" + string(make([]byte, 2000)) + strconv.Itoa(i)
		require.Equal(t, k+"@0", r.fb(k))
	}
	t.Logf("maxmemory volatile-lru: worst call %v, executions %d for 600 calls on 300 keys", worst, r.execs.Load())
}

func TestFaultDownAtStart(t *testing.T) {
	s := newServer(t)
	s.Kill()
	c := s.Client()
	tier, err := New(c, WithBudget(faultBudget), WithBreakerTimeout(100*time.Millisecond))
	require.NoError(t, err, "New does not need Redis")
	t.Cleanup(func() {
		_ = tier.Close()
		_ = c.Close()
	})
	var execs atomic.Int64
	f := memo.Decorate(func(k int) int { execs.Add(1); return k * 3 }, memo.WithName(t.Name()), memo.WithTier(tier))
	assert.Equal(t, 3, f(1), "answered locally")
	require.NoError(t, s.Restart())
	select {
	case <-tier.Ready():
	case <-time.After(hangAfter):
		t.Fatal("no subscription after Redis came up")
	}
	require.Eventually(t, func() bool {
		f(int(execs.Load()) + 100) // new keys until one is filled
		return tier.Stats().Fills > 0
	}, hangAfter, 5*time.Millisecond, "the tier is used once Redis is up")
}
