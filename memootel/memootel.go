// Package memootel exports memo's cache statistics through OpenTelemetry
// metrics.
//
// [Register] creates asynchronous instruments on a meter of the given
// MeterProvider and one callback that, at every collection, observes each
// cache that [memo.Caches] lists (so caches made later are included, and
// collected ones drop out) and each shared tier given with [WithTier]:
//
//	reg, err := memootel.Register(otel.GetMeterProvider())
//	defer reg.Unregister()
//
// Every measurement carries one attribute, "memo.cache.name" (or
// "memo.tier.name" for a tier); never one per key. The instruments:
//
//	memo.cache.hits                 counter        {hit}           lookups that found a live entry
//	memo.cache.misses               counter        {miss}          lookups that did not
//	memo.cache.led                  counter        {call}          misses whose caller ran the function (or started the execution it waited for)
//	memo.cache.coalesced            counter        {call}          misses served by another caller's execution
//	memo.cache.evictions            counter        {entry}         entries removed to make room
//	memo.cache.expirations          counter        {entry}         entries removed by their TTL
//	memo.cache.failures             counter        {execution}     executions that returned an error or panicked
//	memo.cache.abandoned            counter        {call}          callers that left before their result
//	memo.cache.abandoned_leaders    counter        {call}          abandoned callers that had started the execution they left
//	memo.cache.get_misses           counter        {miss}          misses of Cache.Get (nothing runs)
//	memo.cache.uncacheable          counter        {call}          calls whose key could not be kept
//	memo.cache.refreshes.started    counter        {refresh}       background refreshes started (WithRefreshAfter)
//	memo.cache.refreshes.succeeded  counter        {refresh}       refreshes whose function returned without an error
//	memo.cache.refreshes.failed     counter        {refresh}       refreshes that returned an error or panicked
//	memo.cache.stale_served         counter        {call}          callers given a stale result after a failed execution
//	memo.cache.stale_retries        counter        {execution}     executions started in a stale-if-error outage (one caller at a time)
//	memo.cache.rejected             counter        {result}        results not stored by WithCacheIf or WithTTLFunc
//	memo.cache.tier_hits            counter        {execution}     executions a shared tier answered without running the function (WithTier)
//	memo.cache.entry.count          updowncounter  {entry}         live entries
//	memo.cache.entry.max            updowncounter  {entry}         capacity
//	memo.cache.execution.duration   histogram      s               execution times
//	memo.cache.batch.calls          counter        {call}          calls of a batch function (memo.Batch)
//	memo.cache.batch.keys           counter        {key}           distinct keys asked by those calls, in all
//	memo.cache.batch.cached_keys    counter        {key}           keys of batch calls served from the cache
//	memo.cache.batch.joined_keys    counter        {key}           keys of batch calls that joined another call's execution
//	memo.cache.batch.size           histogram      {key}           distinct keys per batch call
//	memo.tier.hits                  counter        {hit}           lookups found in the tier
//	memo.tier.misses                counter        {miss}          lookups not found (undecodable values included)
//	memo.tier.errors                counter        {error}         tier operations that failed or timed out
//	memo.tier.decode_errors         counter        {error}         values found that could not be decoded
//	memo.tier.lease_waits           counter        {call}          callers that waited for another process's execution
//	memo.tier.breaker.opens         counter        {open}          times the circuit breaker opened
//	memo.tier.fills                 counter        {value}         values this process wrote to the tier after running the function
//	memo.tier.local_runs            counter        {execution}     loads that ran the function without the tier (failing, breaker open, wait too long)
//	memo.tier.invalidations         counter        {invalidation}  invalidations that reached the tier
//	memo.tier.resubscribes          counter        {resubscribe}   invalidation feeds restored after a break (each flushed the local entries)
//	memo.tier.generation_flushes    counter        {flush}         flushes of the local entries on a new generation
//	memo.tier.breaker.open          gauge          1               1 while the breaker is open, else 0
//
// The names follow OpenTelemetry's naming rules: a namespace never doubles
// as a metric's name (so the entry gauges are memo.cache.entry.count and
// .max, after the semantic conventions' db.client.connection.count and
// .max), counts of things are plural with a {thing} unit, durations are
// in seconds. The refresh counters are three instruments rather than one
// with a result attribute because "started" includes the refreshes still
// running; every measurement keeps the single cache attribute. Likewise
// the four ways a miss ends (led, coalesced, abandoned, get_misses) are
// instruments of their own, so that memo.cache.misses keeps its meaning;
// misses minus the four is the number still in flight. The histogram
// counts every execution, those a shared tier answered included: the
// function ran here its count minus memo.cache.tier_hits times.
//
// The counters are observable (asynchronous) instruments. OpenTelemetry has
// no asynchronous histogram, so the execution-time histogram is a
// synchronous one that the callback feeds: at each collection it records,
// per cache, the executions added to each bucket of the cache's
// stats.Histogram since the previous collection, with values inside that
// bucket chosen so that their sum is the time the executions took. With
// the bucket boundaries it sets (stats.Histogram's, in seconds), the
// exported histogram's buckets and count are exact and its sum exact up
// to rounding. That costs one Record per execution, at collection time,
// never on memo's call path. A histogram is cumulative since Register:
// [memo.Cache.ResetStats] does not reset it, and the series of a cache
// that was collected stays in the SDK until the provider shuts down.
//
// The batch instruments are observed only for a cache whose batch
// counters are not all 0 (a function memoized by memo.Batch, once called).
// The batch size histogram is fed as the execution-time one is, from
// stats.SizeHistogram's buckets (boundaries 1, 2, 4, ..., 2^15 keys): its
// buckets and count are exact, and each call is recorded at its bucket's
// upper bound (the last bucket's at its lower bound plus one), so that its
// sum is an upper estimate; memo.cache.batch.keys / memo.cache.batch.calls
// is the exact mean.
//
// A cache's name reaches the attribute as it is ([memo.WithName]
// guarantees valid UTF-8). Should the registry ever list a name that is
// not valid UTF-8, which an OTLP exporter cannot encode (the whole export
// would fail), each invalid byte is written as \xNN, and a value that then
// equals one already given in the collection gets "#2", "#3", ...: a name
// never makes a collection or an export fail.
package memootel

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync"
	"time"
	"unicode/utf8"
	"weak"

	"github.com/memokit/memo"
	"github.com/memokit/memo/internal/names"
	"github.com/memokit/memo/stats"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the meter Register uses.
const ScopeName = "github.com/memokit/memo/memootel"

// An Option configures [Register].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tiers []tierSource
}

type tierSource struct {
	name    string
	figures func() stats.Tier
}

// WithTier adds a shared tier under name (the "memo.tier.name" attribute;
// valid UTF-8):
// figures is called at every collection and must be safe for concurrent
// use. Adapt a tier's own statistics to [stats.Tier] in it; a tier's
// counters must only grow.
func WithTier(name string, figures func() stats.Tier) Option {
	return optionFunc(func(c *config) { c.tiers = append(c.tiers, tierSource{name, figures}) })
}

// Attribute keys of the measurements.
const (
	CacheKey = attribute.Key("memo.cache.name")
	TierKey  = attribute.Key("memo.tier.name")
)

// exporter holds the instruments and the histogram's state.
type exporter struct {
	tiers []tierSource
	// caches lists the caches to observe: memo.Caches, or others in tests.
	caches iter.Seq2[string, *memo.Cache]

	hits, misses, led, coalesced, evictions, expirations metric.Int64ObservableCounter
	failures, abandoned, abandonedLeaders, getMisses     metric.Int64ObservableCounter
	uncacheable, staleRetries                            metric.Int64ObservableCounter
	refStarted, refOK, refFailed, stale, rejected        metric.Int64ObservableCounter
	tierHitsC                                            metric.Int64ObservableCounter
	entries, maxEntries                                  metric.Int64ObservableUpDownCounter
	duration                                             metric.Float64Histogram
	batchCalls, batchKeys, batchCached, batchJoined      metric.Int64ObservableCounter
	batchSize                                            metric.Int64Histogram

	tierHits, tierMisses, tierErrors, tierDecodeErrors metric.Int64ObservableCounter
	tierLeaseWaits, tierBreakerOpens                   metric.Int64ObservableCounter
	tierFills, tierLocalRuns, tierInvalidations        metric.Int64ObservableCounter
	tierResubscribes, tierGenFlushes                   metric.Int64ObservableCounter
	tierBreakerOpen                                    metric.Int64ObservableGauge

	mu        sync.Mutex
	last      map[string]recorded      // a cache's histogram as last recorded, by name
	lastSizes map[string]recordedSizes // a cache's batch size histogram as last recorded, by name
}

// recordedSizes is a cache's batch size histogram as the callback last
// recorded it.
type recordedSizes struct {
	counts [stats.SizeBuckets]uint64
	cache  weak.Pointer[memo.Cache]
}

// recorded is a cache's histogram as the callback last recorded it.
type recorded struct {
	counts [stats.HistogramBuckets]uint64
	total  time.Duration
	cache  weak.Pointer[memo.Cache] // tells a new cache of the same name; weak, not to keep it alive
}

// Register creates memo's instruments on mp's meter for [ScopeName] and
// registers the callback that observes them; Unregister the result to
// stop. Register once per provider: a second registration would record
// the histogram twice. It returns an error if an option is invalid (nil,
// or a tier without a name or a figures func, a name that is not valid
// UTF-8, or a name used twice) or if
// the provider fails to make an instrument. The callback takes one Stats
// snapshot per cache and is safe for concurrent collections.
func Register(mp metric.MeterProvider, opts ...Option) (metric.Registration, error) {
	return register(mp, memo.Caches(), opts)
}

// register is Register observing the caches listed by caches.
func register(mp metric.MeterProvider, caches iter.Seq2[string, *memo.Cache], opts []Option) (metric.Registration, error) {
	if mp == nil {
		return nil, errors.New("memootel: Register(nil): pass a MeterProvider")
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("memootel: nil Option")
		}
		o.apply(&cfg)
	}
	seen := map[string]bool{}
	for _, t := range cfg.tiers {
		if t.name == "" || t.figures == nil {
			return nil, errors.New("memootel: WithTier needs a name and a figures func")
		}
		if !utf8.ValidString(t.name) {
			return nil, fmt.Errorf("memootel: WithTier(%q): the name must be valid UTF-8, as an attribute value", t.name)
		}
		if seen[t.name] {
			return nil, errors.New("memootel: WithTier(" + t.name + "): the name is already used")
		}
		seen[t.name] = true
	}
	m := mp.Meter(ScopeName)
	e := &exporter{tiers: cfg.tiers, caches: caches, last: map[string]recorded{}, lastSizes: map[string]recordedSizes{}}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	e.hits = counter("memo.cache.hits", "{hit}", "Lookups that found a live entry.")
	e.misses = counter("memo.cache.misses", "{miss}", "Lookups that found no live entry; callers that waited for an execution in flight included.")
	e.led = counter("memo.cache.led", "{call}", "Misses whose caller ran the function, or started the execution it got its result from.")
	e.coalesced = counter("memo.cache.coalesced", "{call}", "Misses served by another caller's execution.")
	e.evictions = counter("memo.cache.evictions", "{entry}", "Entries removed to make room.")
	e.expirations = counter("memo.cache.expirations", "{entry}", "Entries removed because their TTL ran out.")
	e.failures = counter("memo.cache.failures", "{execution}", "Executions that returned an error or panicked.")
	e.abandoned = counter("memo.cache.abandoned", "{call}", "Misses whose caller stopped waiting before a result.")
	e.abandonedLeaders = counter("memo.cache.abandoned_leaders", "{call}", "Abandoned misses whose caller had started the execution it left (the execution went on, and counts in the execution histogram).")
	e.getMisses = counter("memo.cache.get_misses", "{miss}", "Misses of Cache.Get, lookups after which nothing runs.")
	e.uncacheable = counter("memo.cache.uncacheable", "{call}", "Calls not stored because their key could not be kept.")
	e.refStarted = counter("memo.cache.refreshes.started", "{refresh}", "Background refreshes started (WithRefreshAfter).")
	e.refOK = counter("memo.cache.refreshes.succeeded", "{refresh}", "Background refreshes whose function returned without an error.")
	e.refFailed = counter("memo.cache.refreshes.failed", "{refresh}", "Background refreshes whose function returned an error or panicked.")
	e.stale = counter("memo.cache.stale_served", "{call}", "Callers given a stale result because the execution that would replace it failed (WithStaleIfError).")
	e.staleRetries = counter("memo.cache.stale_retries", "{execution}", "Executions started in an outage of WithStaleIfError, by one caller at a time under a doubling back-off, while the others get the stale result.")
	e.rejected = counter("memo.cache.rejected", "{result}", "Results not stored because WithCacheIf or WithTTLFunc rejected them.")
	e.tierHitsC = counter("memo.cache.tier_hits", "{execution}", "Executions a shared tier answered without running the function (counted in the execution histogram too).")
	var err error
	e.entries, err = m.Int64ObservableUpDownCounter("memo.cache.entry.count", metric.WithUnit("{entry}"), metric.WithDescription("Live entries."))
	errs = append(errs, err)
	e.maxEntries, err = m.Int64ObservableUpDownCounter("memo.cache.entry.max", metric.WithUnit("{entry}"), metric.WithDescription("The cache's capacity in entries."))
	errs = append(errs, err)
	e.duration, err = m.Float64Histogram("memo.cache.execution.duration", metric.WithUnit("s"),
		metric.WithDescription("Execution times of the cached function."),
		metric.WithExplicitBucketBoundaries(bounds...))
	errs = append(errs, err)
	e.batchCalls = counter("memo.cache.batch.calls", "{call}", "Calls of a batch function (memo.Batch).")
	e.batchKeys = counter("memo.cache.batch.keys", "{key}", "Distinct keys asked by the calls of a batch function, in all.")
	e.batchCached = counter("memo.cache.batch.cached_keys", "{key}", "Keys of batch calls served from the cache.")
	e.batchJoined = counter("memo.cache.batch.joined_keys", "{key}", "Keys of batch calls that joined an execution another call had started.")
	e.batchSize, err = m.Int64Histogram("memo.cache.batch.size", metric.WithUnit("{key}"),
		metric.WithDescription("Distinct keys per call of a batch function (memo.Batch)."),
		metric.WithExplicitBucketBoundaries(sizeBounds...))
	errs = append(errs, err)
	e.tierHits = counter("memo.tier.hits", "{hit}", "Lookups found in the shared tier.")
	e.tierMisses = counter("memo.tier.misses", "{miss}", "Lookups not found in the shared tier, undecodable values included.")
	e.tierErrors = counter("memo.tier.errors", "{error}", "Shared-tier operations that failed or ran out of time.")
	e.tierDecodeErrors = counter("memo.tier.decode_errors", "{error}", "Values found in the shared tier that could not be decoded.")
	e.tierLeaseWaits = counter("memo.tier.lease_waits", "{call}", "Callers that waited for another process's execution.")
	e.tierBreakerOpens = counter("memo.tier.breaker.opens", "{open}", "Times the shared tier's circuit breaker opened.")
	e.tierFills = counter("memo.tier.fills", "{value}", "Values this process wrote to the shared tier after running the function.")
	e.tierLocalRuns = counter("memo.tier.local_runs", "{execution}", "Loads that ran the function without the shared tier (the tier failing, its breaker open, a wait too long).")
	e.tierInvalidations = counter("memo.tier.invalidations", "{invalidation}", "Invalidations that reached the shared tier.")
	e.tierResubscribes = counter("memo.tier.resubscribes", "{resubscribe}", "Times the shared tier's feed of invalidations was restored after a break; each flushed the local entries.")
	e.tierGenFlushes = counter("memo.tier.generation_flushes", "{flush}", "Flushes of the local entries of the shared tier's functions on a generation this process did not know (another replica's Clear, a lost generation key).")
	e.tierBreakerOpen, err = m.Int64ObservableGauge("memo.tier.breaker.open", metric.WithUnit("1"),
		metric.WithDescription("1 while the shared tier's circuit breaker is open, else 0."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(e.observe,
		e.hits, e.misses, e.led, e.coalesced, e.evictions, e.expirations, e.failures, e.abandoned, e.abandonedLeaders,
		e.getMisses, e.uncacheable, e.refStarted, e.refOK, e.refFailed, e.stale, e.staleRetries, e.rejected, e.tierHitsC, e.entries,
		e.maxEntries, e.tierHits, e.tierMisses, e.tierErrors, e.tierDecodeErrors, e.tierLeaseWaits, e.tierBreakerOpens, e.tierBreakerOpen,
		e.tierFills, e.tierLocalRuns, e.tierInvalidations, e.tierResubscribes, e.tierGenFlushes,
		e.batchCalls, e.batchKeys, e.batchCached, e.batchJoined)
}

// bounds are the histogram's boundaries in seconds: stats.Histogram's
// finite upper bounds.
var bounds = func() []float64 {
	b := make([]float64, stats.HistogramBuckets-1)
	for i := range b {
		b[i] = stats.UpperBound(i).Seconds()
	}
	return b
}()

// sizeBounds are the batch size histogram's boundaries:
// stats.SizeHistogram's finite upper bounds.
var sizeBounds = func() []float64 {
	b := make([]float64, stats.SizeBuckets-1)
	for i := range b {
		b[i] = float64(stats.SizeUpperBound(i))
	}
	return b
}()

// statsOf takes a cache's statistics; tests that need figures no cache
// has yet replace it.
var statsOf = (*memo.Cache).Stats

func i64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

func (e *exporter) observe(ctx context.Context, o metric.Observer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	listed := make(map[string]bool, len(e.last))
	for listedAs, c := range e.caches {
		name := attrOf(listedAs, listed)
		s := statsOf(c)
		at := metric.WithAttributeSet(attribute.NewSet(CacheKey.String(name)))
		o.ObserveInt64(e.hits, i64(s.Hits), at)
		o.ObserveInt64(e.misses, i64(s.Misses), at)
		o.ObserveInt64(e.led, i64(s.Led), at)
		o.ObserveInt64(e.coalesced, i64(s.Coalesced), at)
		o.ObserveInt64(e.evictions, i64(s.Evictions), at)
		o.ObserveInt64(e.expirations, i64(s.Expirations), at)
		o.ObserveInt64(e.failures, i64(s.Failures), at)
		o.ObserveInt64(e.abandoned, i64(s.Abandoned), at)
		o.ObserveInt64(e.abandonedLeaders, i64(s.AbandonedLeaders), at)
		o.ObserveInt64(e.getMisses, i64(s.GetMisses), at)
		o.ObserveInt64(e.uncacheable, i64(s.Uncacheable), at)
		o.ObserveInt64(e.refStarted, i64(s.RefreshesStarted), at)
		o.ObserveInt64(e.refOK, i64(s.RefreshesSucceeded), at)
		o.ObserveInt64(e.refFailed, i64(s.RefreshesFailed), at)
		o.ObserveInt64(e.stale, i64(s.StaleServed), at)
		o.ObserveInt64(e.staleRetries, i64(s.StaleRetries), at)
		o.ObserveInt64(e.rejected, i64(s.Rejected), at)
		o.ObserveInt64(e.tierHitsC, i64(s.TierHits), at)
		o.ObserveInt64(e.entries, int64(s.CurrentSize), at)
		o.ObserveInt64(e.maxEntries, int64(s.MaxSize), at)
		e.record(ctx, name, c, s, metric.WithAttributeSet(attribute.NewSet(CacheKey.String(name))))
		if s.BatchCalls > 0 || s.BatchCached > 0 || s.BatchJoined > 0 {
			o.ObserveInt64(e.batchCalls, i64(s.BatchCalls), at)
			o.ObserveInt64(e.batchKeys, i64(s.BatchKeys.Sum), at)
			o.ObserveInt64(e.batchCached, i64(s.BatchCached), at)
			o.ObserveInt64(e.batchJoined, i64(s.BatchJoined), at)
			e.recordSizes(ctx, name, c, s, metric.WithAttributeSet(attribute.NewSet(CacheKey.String(name))))
		}
	}
	for name := range e.last {
		if !listed[name] {
			delete(e.last, name) // collected: forget it
		}
	}
	for name := range e.lastSizes {
		if !listed[name] {
			delete(e.lastSizes, name)
		}
	}
	for _, t := range e.tiers {
		s := t.figures()
		at := metric.WithAttributeSet(attribute.NewSet(TierKey.String(t.name)))
		o.ObserveInt64(e.tierHits, i64(s.Hits), at)
		o.ObserveInt64(e.tierMisses, i64(s.Misses), at)
		o.ObserveInt64(e.tierErrors, i64(s.Errors), at)
		o.ObserveInt64(e.tierDecodeErrors, i64(s.DecodeErrors), at)
		o.ObserveInt64(e.tierLeaseWaits, i64(s.LeaseWaits), at)
		o.ObserveInt64(e.tierBreakerOpens, i64(s.BreakerOpens), at)
		o.ObserveInt64(e.tierFills, i64(s.Fills), at)
		o.ObserveInt64(e.tierLocalRuns, i64(s.LocalRuns), at)
		o.ObserveInt64(e.tierInvalidations, i64(s.Invalidations), at)
		o.ObserveInt64(e.tierResubscribes, i64(s.Resubscribes), at)
		o.ObserveInt64(e.tierGenFlushes, i64(s.GenerationFlushes), at)
		open := int64(0)
		if s.BreakerOpen {
			open = 1
		}
		o.ObserveInt64(e.tierBreakerOpen, open, at)
	}
	return nil
}

// record feeds the histogram the executions of c since the last
// collection. e.mu is held.
func (e *exporter) record(ctx context.Context, name string, c *memo.Cache, s stats.Stats, at metric.RecordOption) {
	prev := e.last[name]
	cur := recorded{counts: s.ExecTimes.Counts, total: s.TotalTime, cache: weak.Make(c)}
	if prev.cache != cur.cache || s.TotalTime < prev.total || anyLess(cur.counts[:], prev.counts[:]) {
		prev = recorded{} // a new cache under the name, or its statistics were reset
	}
	e.last[name] = cur

	// Each bucket i gets its new executions at one value v_i in
	// (lo_i, hi_i], v_i = lo_i + t·(hi_i - lo_i) with one t for all, chosen
	// so that the values add up to the time those executions took, which
	// lies between Σ n_i·lo_i and Σ n_i·hi_i.
	var n [stats.HistogramBuckets]uint64
	var lo, hi [stats.HistogramBuckets]float64
	var sumLo, sumHi float64
	for i := range n {
		n[i] = cur.counts[i] - prev.counts[i]
		if n[i] == 0 {
			continue
		}
		if i > 0 {
			lo[i] = bounds[i-1]
		}
		if i < len(bounds) {
			hi[i] = bounds[i]
		} else {
			hi[i] = max(s.MaxTime.Seconds(), lo[i])
		}
		sumLo += float64(n[i]) * lo[i]
		sumHi += float64(n[i]) * hi[i]
	}
	t := 1.0
	if sumHi > sumLo {
		t = min(max(((cur.total-prev.total).Seconds()-sumLo)/(sumHi-sumLo), 0), 1)
	}
	for i := range n {
		if n[i] == 0 {
			continue
		}
		v := lo[i] + t*(hi[i]-lo[i])
		if i > 0 && v <= lo[i] {
			v = math.Nextafter(lo[i], math.Inf(1)) // bucket i excludes its lower bound
		}
		v = min(v, hi[i])
		for range n[i] {
			e.duration.Record(ctx, v, at)
		}
	}
}

// recordSizes feeds the batch size histogram the calls of c since the
// last collection, each at its bucket's upper bound. e.mu is held.
func (e *exporter) recordSizes(ctx context.Context, name string, c *memo.Cache, s stats.Stats, at metric.RecordOption) {
	prev := e.lastSizes[name]
	cur := recordedSizes{counts: s.BatchKeys.Counts, cache: weak.Make(c)}
	if prev.cache != cur.cache || anyLess(cur.counts[:], prev.counts[:]) {
		prev = recordedSizes{} // a new cache under the name, or its statistics were reset
	}
	e.lastSizes[name] = cur
	for i := range cur.counts {
		v := int64(1) << min(i, stats.SizeBuckets-2)
		if i == stats.SizeBuckets-1 {
			v++ // past the last finite bound
		}
		for range cur.counts[i] - prev.counts[i] {
			e.batchSize.Record(ctx, v, at)
		}
	}
}

func anyLess(a, b []uint64) bool {
	for i := range a {
		if a[i] < b[i] {
			return true
		}
	}
	return false
}

// attrOf returns the attribute value for the cache listed as name: name
// itself when it is valid UTF-8 and not in seen, else name with each
// invalid byte written as \xNN and, if that is in seen, "#2", "#3", ...
// appended. It adds the value to seen.
func attrOf(name string, seen map[string]bool) string { return names.Shown(name, seen) }
