package memootel_test

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memootel"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collected is one collection, by instrument name.
type collected map[string]metricdata.Metrics

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, memootel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// int64Of returns the value of instrument name for attribute kv, and
// whether there was one.
func (c collected) int64Of(t *testing.T, name string, kv attribute.KeyValue) (int64, bool) {
	t.Helper()
	m, ok := c[name]
	if !ok {
		return 0, false // no data points at all
	}
	var points []metricdata.DataPoint[int64]
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s: unexpected data %T", name, m.Data)
	}
	for _, p := range points {
		if v, ok := p.Attributes.Value(kv.Key); ok && v == kv.Value {
			require.Equal(t, 1, p.Attributes.Len(), "one attribute only")
			return p.Value, true
		}
	}
	return 0, false
}

func (c collected) histogramOf(t *testing.T, cache string) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := c["memo.cache.execution.duration"]
	require.True(t, ok)
	assert.Equal(t, "s", m.Unit)
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%T", m.Data)
	assert.Equal(t, metricdata.CumulativeTemporality, h.Temporality)
	for _, p := range h.DataPoints {
		if v, _ := p.Attributes.Value(memootel.CacheKey); v.AsString() == cache {
			return p
		}
	}
	t.Fatalf("no histogram for %s", cache)
	return metricdata.HistogramDataPoint[float64]{}
}

// check asserts that the collection shows c's statistics exactly.
func (c collected) check(t *testing.T, mc *memo.Cache) {
	t.Helper()
	s := mc.Stats()
	kv := memootel.CacheKey.String(mc.Name())
	figures := map[string]uint64{
		"memo.cache.hits": s.Hits, "memo.cache.misses": s.Misses, "memo.cache.coalesced": s.Coalesced,
		"memo.cache.led": s.Led, "memo.cache.get_misses": s.GetMisses,
		"memo.cache.evictions": s.Evictions, "memo.cache.expirations": s.Expirations,
		"memo.cache.failures": s.Failures, "memo.cache.abandoned": s.Abandoned,
		"memo.cache.abandoned_leaders":   s.AbandonedLeaders,
		"memo.cache.uncacheable":         s.Uncacheable,
		"memo.cache.refreshes.started":   s.RefreshesStarted,
		"memo.cache.refreshes.succeeded": s.RefreshesSucceeded,
		"memo.cache.refreshes.failed":    s.RefreshesFailed,
		"memo.cache.stale_served":        s.StaleServed,
		"memo.cache.stale_retries":       s.StaleRetries,
		"memo.cache.rejected":            s.Rejected,
		"memo.cache.tier_hits":           s.TierHits,
		"memo.cache.entry.count":         uint64(s.CurrentSize), "memo.cache.entry.max": uint64(s.MaxSize),
	}
	// Every uint64 counter of stats.Stats has an instrument here but
	// TotalCalls, which is the histogram's count, and the three batch
	// counters, observed for batch functions only (TestBatchInstruments);
	// the two others are the entry gauges.
	require.Len(t, figures, counters()-1-3+2, "a Stats counter is missing from the exporter (and from this check)")
	for name, want := range figures {
		got, ok := c.int64Of(t, name, kv)
		assert.True(t, ok, "%s has no %s", mc.Name(), name)
		assert.Equal(t, int64(want), got, "%s %s", mc.Name(), name)
	}
	h := c.histogramOf(t, mc.Name())
	assert.Equal(t, s.TotalCalls, h.Count, "%s: the histogram counts every execution", mc.Name())
	assert.Equal(t, s.ExecTimes.Counts[:], h.BucketCounts, "%s: buckets", mc.Name())
	assert.InDelta(t, s.TotalTime.Seconds(), h.Sum, 1e-9, "%s: sum", mc.Name())
	require.Len(t, h.Bounds, stats.HistogramBuckets-1)
	assert.Equal(t, 1e-6, h.Bounds[0])
	assert.Equal(t, stats.UpperBound(stats.HistogramBuckets-2).Seconds(), h.Bounds[len(h.Bounds)-1])
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

func TestRegister(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()

	users := memo.MustNew(memo.WithMaxSize(100), memo.WithName("users"))
	for i := range 3 {
		users.Set(i, i)
	}
	_, _ = users.Get(0)
	_, _ = users.Get(7)
	for _, d := range []time.Duration{3 * time.Millisecond, 400 * time.Nanosecond, 90 * time.Second, 5 * time.Millisecond} {
		users.UpdateProfiling(d)
	}
	sessions := memo.Func(func(id int) string { return strconv.Itoa(id) }, memo.WithName("sessions"), memo.WithMaxSize(2))
	for _, id := range []int{1, 2, 1, 3} {
		sessions(id)
	}
	shared := memo.MustNew(memo.WithMaxSize(10), memo.WithName("shared"))
	f := memo.Decorate(func(x int) int { return x }, memo.WithCache(shared))
	g := memo.Func(func(x string) string { return x }, memo.WithCache(shared))
	f(1)
	f(1)
	g("a")

	reg, err := memootel.Register(mp, memootel.WithTier("redis", func() stats.Tier {
		return stats.Tier{Hits: 5, Misses: 2, Errors: 1, DecodeErrors: 1, LeaseWaits: 3, BreakerOpens: 2, BreakerOpen: true,
			Fills: 4, LocalRuns: 6, Invalidations: 7, Resubscribes: 8, GenerationFlushes: 9}
	}))
	require.NoError(t, err)

	c := collect(t, r)
	for _, mc := range []*memo.Cache{users, memo.CacheOf(sessions), shared} {
		c.check(t, mc)
	}
	got, _ := c.int64Of(t, "memo.cache.hits", memootel.CacheKey.String("users"))
	assert.Equal(t, int64(1), got)
	// How the misses ended: users' one miss is a Get; sessions' three
	// (1, 2, 3) and shared's two (f(1), g("a")) ran the function.
	for cache, want := range map[string][2]int64{"users": {0, 1}, "sessions": {3, 0}, "shared": {2, 0}} {
		kv := memootel.CacheKey.String(cache)
		led, _ := c.int64Of(t, "memo.cache.led", kv)
		getMisses, _ := c.int64Of(t, "memo.cache.get_misses", kv)
		assert.Equal(t, want, [2]int64{led, getMisses}, "%s: led, get_misses", cache)
	}
	assert.Equal(t, "{call}", c["memo.cache.led"].Unit)
	assert.Equal(t, "{miss}", c["memo.cache.get_misses"].Unit)
	assert.Equal(t, "{hit}", c["memo.cache.hits"].Unit)
	assert.Equal(t, "{entry}", c["memo.cache.entry.count"].Unit)
	tier := memootel.TierKey.String("redis")
	for name, want := range map[string]int64{
		"memo.tier.hits": 5, "memo.tier.misses": 2, "memo.tier.errors": 1, "memo.tier.decode_errors": 1,
		"memo.tier.lease_waits": 3, "memo.tier.breaker.opens": 2, "memo.tier.breaker.open": 1,
		"memo.tier.fills": 4, "memo.tier.local_runs": 6, "memo.tier.invalidations": 7,
		"memo.tier.resubscribes": 8, "memo.tier.generation_flushes": 9,
	} {
		got, ok := c.int64Of(t, name, tier)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	_, listed := c.int64Of(t, "memo.cache.hits", memootel.CacheKey.String("shared"))
	assert.True(t, listed)

	// More executions: the next collection (cumulative) still matches.
	for i := range 50 {
		sessions(100 + i)
		f(100 + i)
	}
	users.UpdateProfiling(2 * time.Minute)
	c = collect(t, r)
	for _, mc := range []*memo.Cache{users, memo.CacheOf(sessions), shared} {
		c.check(t, mc)
	}

	// After ResetStats the histogram keeps counting from where it was.
	before := c.histogramOf(t, "users").Count
	users.ResetStats()
	users.UpdateProfiling(time.Millisecond)
	c = collect(t, r)
	assert.Equal(t, before+1, c.histogramOf(t, "users").Count)
	got, _ = c.int64Of(t, "memo.cache.hits", memootel.CacheKey.String("users"))
	assert.Zero(t, got, "the counters show the reset")

	require.NoError(t, reg.Unregister())
	c = collect(t, r)
	_, listed = c["memo.cache.hits"]
	assert.False(t, listed, "no observations after Unregister")
	runtime.KeepAlive(users)
}

// TestCollectedCacheLeaves: a cache that becomes unreachable is not
// observed once collected.
func TestCollectedCacheLeaves(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	reg, err := memootel.Register(mp)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	kv := memootel.CacheKey.String("otel-gc-test")
	func() {
		f := memo.Func(func(x int) int { return x }, memo.WithName("otel-gc-test"))
		f(1)
		_, ok := collect(t, r).int64Of(t, "memo.cache.misses", kv)
		require.True(t, ok)
		runtime.KeepAlive(f)
	}()
	gone := func() bool {
		for name := range memo.Caches() {
			if name == "otel-gc-test" {
				return false
			}
		}
		return true
	}
	require.True(t, gcUntil(gone), "the registry kept the cache")
	_, ok := collect(t, r).int64Of(t, "memo.cache.misses", kv)
	assert.False(t, ok, "a collected cache is still observed")
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	mp := sdkmetric.NewMeterProvider()
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	fig := func() stats.Tier { return stats.Tier{} }
	for name, opts := range map[string][]memootel.Option{
		"nil option":  {nil},
		"no name":     {memootel.WithTier("", fig)},
		"no figures":  {memootel.WithTier("x", nil)},
		"name reused": {memootel.WithTier("x", fig), memootel.WithTier("x", fig)},
	} {
		_, err := memootel.Register(mp, opts...)
		assert.ErrorContains(t, err, "memootel: ", name)
	}
	_, err := memootel.Register(nil)
	assert.ErrorContains(t, err, "memootel: Register(nil)")
}

// TestFreshnessFigures: the freshness counters of a function with every
// freshness option, each non-zero, reach the reader with their units.
// TTL 10s, refresh after 5s: at 0s and 1s two misses (the second's result
// rejected by WithCacheIf), at 8s a hit whose refresh succeeds, at 15s a
// hit whose refresh fails, at 26s (past the TTL, within the stale window)
// a miss whose execution fails and serves the stale result, starting an
// outage whose first back-off is the refresh interval (5s); at 32s a miss
// that retries (a stale retry), fails too and is served the stale result.
func TestFreshnessFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
		reg, err := memootel.Register(mp)
		require.NoError(t, err)
		defer func() { require.NoError(t, reg.Unregister()) }()

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
		}, memo.WithName("otel-fresh"), memo.WithMaxSize(10), memo.WithTTL(10*time.Second),
			memo.WithRefreshAfter(5*time.Second), memo.WithStaleIfError(time.Minute),
			memo.WithCacheIf(func(r []any) bool { return r[0] != "" }))
		call := func(id int) {
			_, err := f(id)
			require.NoError(t, err)
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
		time.Sleep(5 * time.Second)
		call(1)

		c := collect(t, r)
		mc := memo.CacheOf(f)
		c.check(t, mc)
		kv := memootel.CacheKey.String(mc.Name())
		for name, want := range map[string]int64{
			"memo.cache.hits": 2, "memo.cache.misses": 4, "memo.cache.led": 4, "memo.cache.get_misses": 0,
			"memo.cache.failures":          3,
			"memo.cache.refreshes.started": 2, "memo.cache.refreshes.succeeded": 1,
			"memo.cache.refreshes.failed": 1, "memo.cache.stale_served": 2, "memo.cache.stale_retries": 1,
			"memo.cache.rejected": 1, "memo.cache.abandoned_leaders": 0, "memo.cache.entry.count": 1,
		} {
			got, ok := c.int64Of(t, name, kv)
			assert.True(t, ok, name)
			assert.Equal(t, want, got, name)
		}
		assert.Equal(t, uint64(6), c.histogramOf(t, mc.Name()).Count)
		for name, unit := range map[string]string{
			"memo.cache.refreshes.started": "{refresh}", "memo.cache.refreshes.succeeded": "{refresh}",
			"memo.cache.refreshes.failed": "{refresh}", "memo.cache.stale_served": "{call}",
			"memo.cache.stale_retries": "{execution}", "memo.cache.abandoned_leaders": "{call}",
			"memo.cache.rejected": "{result}", "memo.cache.entry.max": "{entry}",
		} {
			assert.Equal(t, unit, c[name].Unit, name)
		}
	})
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
