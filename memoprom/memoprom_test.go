package memoprom_test

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memoprom"
	"github.com/memokit/memo/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// histogram returns the text exposition of one cache's execution-time
// histogram holding n executions of d each.
func histogram(cache string, n int, d time.Duration) string {
	var b strings.Builder
	for i := range stats.HistogramBuckets - 1 {
		le := stats.UpperBound(i)
		cum := 0
		if d <= le {
			cum = n
		}
		fmt.Fprintf(&b, "memo_cache_execution_duration_seconds_bucket{cache=%q,le=%q} %d\n",
			cache, strconv.FormatFloat(le.Seconds(), 'g', -1, 64), cum)
	}
	fmt.Fprintf(&b, "memo_cache_execution_duration_seconds_bucket{cache=%q,le=\"+Inf\"} %d\n", cache, n)
	fmt.Fprintf(&b, "memo_cache_execution_duration_seconds_sum{cache=%q} %g\n", cache, (time.Duration(n) * d).Seconds())
	fmt.Fprintf(&b, "memo_cache_execution_duration_seconds_count{cache=%q} %d\n", cache, n)
	return b.String()
}

// family returns the text exposition of a counter family with one value
// per cache: fresh, sessions, shared, users.
func family(name, help string, fresh, sessions, shared, users uint64) string {
	return expo(name, help, "counter", fresh, sessions, shared, users)
}

func gaugeFamily(name, help string, fresh, sessions, shared, users uint64) string {
	return expo(name, help, "gauge", fresh, sessions, shared, users)
}

func expo(name, help, typ string, values ...uint64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	for i, cache := range []string{"fresh", "sessions", "shared", "users"} {
		fmt.Fprintf(&b, "%s{cache=%q} %d\n", name, cache, values[i])
	}
	return b.String()
}

// freshDemo returns the cache of a function with every freshness option
// (TTL 10s, refresh after 5s), after calls that count each freshness
// figure: at 0s and 1s two misses (the second's result rejected by
// WithCacheIf), at 8s a hit whose refresh succeeds, at 15s a hit whose
// refresh fails, at 26s (past the TTL, within the stale window) a miss
// whose execution fails and serves the stale result. Each execution takes
// 2ms; each call is followed by a second for what it started to finish.
// It must run in a synctest bubble.
func freshDemo(t *testing.T) *memo.Cache {
	t.Helper()
	var failing atomic.Bool
	f := memo.FuncErr(func(id int) (string, error) {
		time.Sleep(2 * time.Millisecond)
		if failing.Load() {
			return "", errors.New("down")
		}
		if id == 0 {
			return "", nil
		}
		return "v", nil
	}, memo.WithName("fresh"), memo.WithMaxSize(10), memo.WithTTL(10*time.Second),
		memo.WithRefreshAfter(5*time.Second), memo.WithStaleIfError(time.Minute),
		memo.WithCacheIf(func(r []any) bool { return r[0] != "" }))
	call := func(id int) {
		t.Helper()
		v, err := f(id)
		require.NoError(t, err)
		if id != 0 {
			require.Equal(t, "v", v)
		}
		time.Sleep(time.Second)
		synctest.Wait() // a refresh it started has finished
	}
	call(1)
	call(0)
	time.Sleep(6 * time.Second)
	call(1)
	failing.Store(true)
	time.Sleep(6 * time.Second)
	call(1)
	time.Sleep(10 * time.Second)
	call(1)
	s := memo.CacheOf(f).Stats()
	require.Equal(t, s.Misses, s.TotalCalls-s.RefreshesStarted+s.Coalesced, "the Stats invariant")
	require.Zero(t, s.Pending(), "every miss ended")
	return memo.CacheOf(f)
}

// counters returns the number of uint64 counters in stats.Stats.
func counters() int {
	n := 0
	for f := range reflect.TypeFor[stats.Stats]().Fields() {
		if f.Type.Kind() == reflect.Uint64 {
			n++
		}
	}
	return n
}

// TestCollector compares a scrape of two named caches and a cache shared
// by two functions with the expected exposition. It runs in a synctest
// bubble, where the functions' sleeps take exact (fake) times.
func TestCollector(t *testing.T) {
	// Caches of tests that ran before (-count) must be collected first.
	require.True(t, gcUntil(func() bool {
		for range memo.Caches() {
			return false
		}
		return true
	}), "caches of earlier tests are still listed")
	synctest.Test(t, func(t *testing.T) {
		users := memo.MustNew(memo.WithMaxSize(100), memo.WithName("users"))
		for i := range 3 {
			users.Set(i, i)
		}
		_, _ = users.Get(0)
		_, _ = users.Get(1)
		_, _ = users.Get(7)
		users.UpdateProfiling(3 * time.Millisecond)

		sessions := memo.Func(func(id int) string {
			time.Sleep(5 * time.Millisecond)
			return strconv.Itoa(id)
		}, memo.WithName("sessions"), memo.WithMaxSize(2))
		for _, id := range []int{1, 2, 1, 3} { // miss, miss, hit, miss evicting 2
			sessions(id)
		}

		shared := memo.MustNew(memo.WithMaxSize(10), memo.WithName("shared"))
		f := memo.Decorate(func(x int) int { time.Sleep(time.Millisecond); return x }, memo.WithCache(shared))
		g := memo.Func(func(x string) string { time.Sleep(time.Millisecond); return x }, memo.WithCache(shared))
		f(1)
		f(1)
		g("a")

		fresh := freshDemo(t)

		c := memoprom.NewCollector(memoprom.WithTier("redis", func() stats.Tier {
			return stats.Tier{Hits: 5, Misses: 2, Errors: 1, DecodeErrors: 1, LeaseWaits: 3, BreakerOpens: 2, BreakerOpen: true,
				Fills: 4, LocalRuns: 6, Invalidations: 7, Resubscribes: 8, GenerationFlushes: 9}
		}))
		// Per cache, in the scrape's order: fresh, sessions, shared, users.
		want := family("memo_cache_hits_total", "Lookups that found a live entry.", 2, 1, 1, 2) +
			family("memo_cache_misses_total", "Lookups that found no live entry; callers that waited for an execution in flight included.", 3, 3, 2, 1) +
			family("memo_cache_led_total", "Misses whose caller ran the function, or started the execution it got its result from.", 3, 3, 2, 0) +
			family("memo_cache_coalesced_total", "Misses served by another caller's execution.", 0, 0, 0, 0) +
			family("memo_cache_evictions_total", "Entries removed to make room.", 0, 1, 0, 0) +
			family("memo_cache_expirations_total", "Entries removed because their TTL ran out.", 0, 0, 0, 0) +
			family("memo_cache_failures_total", "Executions that returned an error or panicked.", 2, 0, 0, 0) +
			family("memo_cache_abandoned_total", "Misses whose caller stopped waiting before a result.", 0, 0, 0, 0) +
			family("memo_cache_abandoned_leaders_total", "Abandoned misses whose caller had started the execution it left (the execution went on, and counts in the execution histogram).", 0, 0, 0, 0) +
			family("memo_cache_get_misses_total", "Misses of Cache.Get, lookups after which nothing runs.", 0, 0, 0, 1) +
			family("memo_cache_uncacheable_total", "Calls not stored because their key could not be kept.", 0, 0, 0, 0) +
			family("memo_cache_refreshes_started_total", "Background refreshes started (WithRefreshAfter).", 2, 0, 0, 0) +
			family("memo_cache_refreshes_succeeded_total", "Background refreshes whose function returned without an error.", 1, 0, 0, 0) +
			family("memo_cache_refreshes_failed_total", "Background refreshes whose function returned an error or panicked.", 1, 0, 0, 0) +
			family("memo_cache_stale_served_total", "Callers given a stale result because the execution that would replace it failed (WithStaleIfError).", 1, 0, 0, 0) +
			family("memo_cache_stale_retries_total", "Executions started in an outage of WithStaleIfError, by one caller at a time under a doubling back-off, while the others get the stale result.", 0, 0, 0, 0) +
			family("memo_cache_rejected_total", "Results not stored because WithCacheIf or WithTTLFunc rejected them.", 1, 0, 0, 0) +
			family("memo_cache_tier_hits_total", "Executions a shared tier answered without running the function (counted in the execution histogram too).", 0, 0, 0, 0) +
			gaugeFamily("memo_cache_entries", "Live entries.", 1, 2, 2, 3) +
			gaugeFamily("memo_cache_max_entries", "The cache's capacity in entries.", 10, 2, 10, 100) + `
# HELP memo_cache_execution_duration_seconds Execution times of the cached function.
# TYPE memo_cache_execution_duration_seconds histogram
` + histogram("fresh", 5, 2*time.Millisecond) +
			histogram("sessions", 3, 5*time.Millisecond) +
			histogram("shared", 2, time.Millisecond) +
			histogram("users", 1, 3*time.Millisecond) + `
# HELP memo_tier_hits_total Lookups found in the shared tier.
# TYPE memo_tier_hits_total counter
memo_tier_hits_total{tier="redis"} 5
# HELP memo_tier_misses_total Lookups not found in the shared tier, undecodable values included.
# TYPE memo_tier_misses_total counter
memo_tier_misses_total{tier="redis"} 2
# HELP memo_tier_errors_total Shared-tier operations that failed or ran out of time.
# TYPE memo_tier_errors_total counter
memo_tier_errors_total{tier="redis"} 1
# HELP memo_tier_decode_errors_total Values found in the shared tier that could not be decoded.
# TYPE memo_tier_decode_errors_total counter
memo_tier_decode_errors_total{tier="redis"} 1
# HELP memo_tier_lease_waits_total Callers that waited for another process's execution.
# TYPE memo_tier_lease_waits_total counter
memo_tier_lease_waits_total{tier="redis"} 3
# HELP memo_tier_breaker_opens_total Times the shared tier's circuit breaker opened.
# TYPE memo_tier_breaker_opens_total counter
memo_tier_breaker_opens_total{tier="redis"} 2
# HELP memo_tier_breaker_open 1 while the shared tier's circuit breaker is open, else 0.
# TYPE memo_tier_breaker_open gauge
memo_tier_breaker_open{tier="redis"} 1
# HELP memo_tier_fills_total Values this process wrote to the shared tier after running the function.
# TYPE memo_tier_fills_total counter
memo_tier_fills_total{tier="redis"} 4
# HELP memo_tier_local_runs_total Loads that ran the function without the shared tier (the tier failing, its breaker open, a wait too long).
# TYPE memo_tier_local_runs_total counter
memo_tier_local_runs_total{tier="redis"} 6
# HELP memo_tier_invalidations_total Invalidations that reached the shared tier.
# TYPE memo_tier_invalidations_total counter
memo_tier_invalidations_total{tier="redis"} 7
# HELP memo_tier_resubscribes_total Times the shared tier's feed of invalidations was restored after a break; each flushed the local entries.
# TYPE memo_tier_resubscribes_total counter
memo_tier_resubscribes_total{tier="redis"} 8
# HELP memo_tier_generation_flushes_total Flushes of the local entries of the shared tier's functions on a generation this process did not know (another replica's Clear, a lost generation key).
# TYPE memo_tier_generation_flushes_total counter
memo_tier_generation_flushes_total{tier="redis"} 9
`
		names := []string{
			"memo_cache_hits_total", "memo_cache_misses_total", "memo_cache_led_total", "memo_cache_coalesced_total",
			"memo_cache_evictions_total", "memo_cache_expirations_total", "memo_cache_failures_total",
			"memo_cache_abandoned_total", "memo_cache_abandoned_leaders_total", "memo_cache_get_misses_total", "memo_cache_uncacheable_total",
			"memo_cache_refreshes_started_total", "memo_cache_refreshes_succeeded_total", "memo_cache_refreshes_failed_total",
			"memo_cache_stale_served_total", "memo_cache_stale_retries_total", "memo_cache_rejected_total", "memo_cache_tier_hits_total",
			"memo_cache_entries", "memo_cache_max_entries", "memo_cache_execution_duration_seconds",
			"memo_tier_hits_total", "memo_tier_misses_total", "memo_tier_errors_total",
			"memo_tier_decode_errors_total", "memo_tier_lease_waits_total",
			"memo_tier_breaker_opens_total", "memo_tier_breaker_open", "memo_tier_fills_total", "memo_tier_local_runs_total",
			"memo_tier_invalidations_total", "memo_tier_resubscribes_total", "memo_tier_generation_flushes_total",
		}
		require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), names...))

		// Every metric named, and no other: 33 families, 21 per cache: a
		// counter per uint64 counter of stats.Stats but TotalCalls (the
		// histogram's _count), the histogram, the two gauges; 12 per tier.
		require.Len(t, names, 33)
		require.Equal(t, 21, counters()-1-3+1+2, "a Stats counter is missing from the collector (and from this test); the three batch counters are TestCollectorBatch's")
		assert.Equal(t, 4*21+12, testutil.CollectAndCount(c))

		// The histograms count every execution: _count == TotalCalls.
		for _, mc := range []*memo.Cache{users, memo.CacheOf(sessions), shared, fresh} {
			s := mc.Stats()
			assert.Equal(t, s.TotalCalls, s.ExecTimes.Count(), mc.Name())
		}

		problems, err := testutil.CollectAndLint(c)
		require.NoError(t, err)
		assert.Empty(t, problems, "promlint")
		runtime.KeepAlive(users)
	})
}

func TestRegistry(t *testing.T) {
	keep := memo.MustNew(memo.WithMaxSize(1), memo.WithName("registry-test"))
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(memoprom.NewCollector()))
	mfs, err := reg.Gather()
	require.NoError(t, err, "the pedantic registry checks every metric against Describe")
	require.NotEmpty(t, mfs)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
	runtime.KeepAlive(keep)
}

// TestCollectedCacheLeavesScrape: a cache that becomes unreachable is no
// longer scraped once collected.
func TestCollectedCacheLeavesScrape(t *testing.T) {
	c := memoprom.NewCollector()
	count := func() int {
		n := 0
		for name := range memo.Caches() {
			if strings.HasPrefix(name, "gc-test") {
				n++
			}
		}
		return n
	}
	func() {
		a := memo.MustNew(memo.WithMaxSize(1), memo.WithName("gc-test/a"))
		f := memo.Func(func(x int) int { return x }, memo.WithName("gc-test/f"))
		f(1)
		a.Set(1, 1)
		require.Equal(t, 2, count())
		require.Contains(t, scrape(t, c), `cache="gc-test/a"`)
		require.Contains(t, scrape(t, c), `cache="gc-test/f"`)
		runtime.KeepAlive(a)
		runtime.KeepAlive(f)
	}()
	gcUntil(func() bool { return count() == 0 })
	require.Zero(t, count(), "collected caches are still listed")
	text := scrape(t, c)
	assert.NotContains(t, text, "gc-test")
}

// scrape returns the caches' and tiers' names in one scrape of c.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				fmt.Fprintf(&b, "%s{%s=%q}\n", mf.GetName(), l.GetName(), l.GetValue())
			}
		}
	}
	return b.String()
}

func TestNewCollectorOptions(t *testing.T) {
	t.Parallel()
	fig := func() stats.Tier { return stats.Tier{} }
	assert.PanicsWithValue(t, "memoprom: nil Option", func() { memoprom.NewCollector(nil) })
	assert.Panics(t, func() { memoprom.NewCollector(memoprom.WithTier("", fig)) })
	assert.Panics(t, func() { memoprom.NewCollector(memoprom.WithTier("x", nil)) })
	assert.Panics(t, func() { memoprom.NewCollector(memoprom.WithTier("x", fig), memoprom.WithTier("x", fig)) })
}

// gcUntil collects garbage until cond holds, and reports whether it came
// to hold within 100 collections. Cleanups (the registry's among them)
// run on goroutines of their own after a collection: each round waits
// until a cleanup of its own, queued by that collection, has run, so that
// however slow the machine, the rounds give the cleanups their turn
// (there is no deadline).
func gcUntil(cond func() bool) bool {
	for range 100 {
		if cond() {
			return true
		}
		ran := make(chan struct{})
		func() {
			sentinel := new(struct {
				_ *int // not from the tiny allocator
				_ [2]int
			})
			runtime.AddCleanup(sentinel, func(ch chan struct{}) { close(ch) }, ran)
		}()
		runtime.GC()
		<-ran
	}
	return cond()
}
