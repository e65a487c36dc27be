// Package memoprom exports memo's cache statistics to Prometheus.
//
// [NewCollector] returns a collector that, at every scrape, reports each
// cache that [memo.Caches] lists (so caches made after the collector are
// included, and collected ones drop out) and each shared tier registered
// with [WithTier]:
//
//	prometheus.MustRegister(memoprom.NewCollector())
//	http.Handle("/metrics", promhttp.Handler())
//
// Every series has one label, the cache's name ("cache") or the tier's
// ("tier"); there is never a label per key. The metrics:
//
//	memo_cache_hits_total                    counter    lookups that found a live entry
//	memo_cache_misses_total                  counter    lookups that did not
//	memo_cache_led_total                     counter    misses whose caller ran the function (or started the execution it waited for)
//	memo_cache_coalesced_total               counter    misses served by another caller's execution
//	memo_cache_evictions_total               counter    entries removed to make room
//	memo_cache_expirations_total             counter    entries removed by their TTL
//	memo_cache_failures_total                counter    executions that returned an error or panicked
//	memo_cache_abandoned_total               counter    callers that left before their result
//	memo_cache_abandoned_leaders_total       counter    abandoned callers that had started the execution they left
//	memo_cache_get_misses_total              counter    misses of Cache.Get (nothing runs)
//	memo_cache_uncacheable_total             counter    calls whose key could not be kept
//	memo_cache_refreshes_started_total       counter    background refreshes started (WithRefreshAfter)
//	memo_cache_refreshes_succeeded_total     counter    refreshes whose function returned without an error
//	memo_cache_refreshes_failed_total        counter    refreshes that returned an error or panicked
//	memo_cache_stale_served_total            counter    callers given a stale result after a failed execution
//	memo_cache_stale_retries_total           counter    executions started in a stale-if-error outage (one caller at a time)
//	memo_cache_rejected_total                counter    results not stored by WithCacheIf or WithTTLFunc
//	memo_cache_tier_hits_total               counter    executions a shared tier answered without running the function (WithTier)
//	memo_cache_execution_duration_seconds    histogram  execution times (its _count counts executions)
//	memo_cache_entries                       gauge      live entries
//	memo_cache_batch_keys                    histogram  distinct keys per call of a batch function (memo.Batch; its _count counts the calls)
//	memo_cache_batch_cached_keys_total       counter    keys of batch calls served from the cache
//	memo_cache_batch_joined_keys_total       counter    keys of batch calls that joined another call's execution
//	memo_cache_max_entries                   gauge      capacity
//	memo_tier_hits_total                     counter    lookups found in the tier
//	memo_tier_misses_total                   counter    lookups not found (undecodable values included)
//	memo_tier_errors_total                   counter    tier operations that failed or timed out
//	memo_tier_decode_errors_total            counter    values found that could not be decoded
//	memo_tier_lease_waits_total              counter    callers that waited for another process's execution
//	memo_tier_breaker_opens_total            counter    times the circuit breaker opened
//	memo_tier_fills_total                    counter    values this process wrote to the tier after running the function
//	memo_tier_local_runs_total               counter    loads that ran the function without the tier (failing, breaker open, wait too long)
//	memo_tier_invalidations_total            counter    invalidations that reached the tier
//	memo_tier_resubscribes_total             counter    invalidation feeds restored after a break (each flushed the local entries)
//	memo_tier_generation_flushes_total       counter    flushes of the local entries on a new generation
//	memo_tier_breaker_open                   gauge      1 while the breaker is open, else 0
//
// The three refresh counters are separate metrics rather than one with a
// result label, because started is not a result: it counts the refreshes
// that succeeded, failed, or are still running, and summing over such a
// label would count each refresh twice (the shape of
// net_conntrack_dialer_conn_{attempted,established,failed}_total, which
// the Prometheus server exports for its own dials).
//
// Every miss ends one way: led, coalesced, abandoned, or a Cache.Get
// miss. So the misses still in flight are
//
//	memo_cache_misses_total - memo_cache_led_total - memo_cache_coalesced_total
//	  - memo_cache_abandoned_total - memo_cache_get_misses_total
//
// (0 when no call runs, approximately: a scrape is not an atomic cut).
//
// The histogram's _count counts every execution, those a shared tier
// answered included; the times the function ran in this process are
//
//	memo_cache_execution_duration_seconds_count - memo_cache_tier_hits_total
//
// A cache's name reaches the label as it is ([memo.WithName] guarantees
// valid UTF-8; quotes, newlines and markup are escaped by the exposition
// format). Should the registry ever list a name that is not valid UTF-8,
// which a Prometheus label cannot carry and which would fail the whole
// scrape, each invalid byte is written as \xNN, and a label that then
// equals one already given in the scrape gets "#2", "#3", ...: a name
// never makes a scrape fail.
//
// The execution histogram's buckets are stats.Histogram's: 1 µs to 2^26
// µs (67 s), doubling. The three batch metrics are reported only for a
// cache whose batch counters are not all 0 (a function memoized by
// memo.Batch, once called), so that other caches carry no empty batch
// series; the keys histogram's buckets are stats.SizeHistogram's: 1 to
// 2^15 keys, doubling, and its _sum is the keys asked in all.
package memoprom

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"unicode/utf8"

	"github.com/memokit/memo"
	"github.com/memokit/memo/internal/names"
	"github.com/memokit/memo/stats"
	"github.com/prometheus/client_golang/prometheus"
)

// An Option configures [NewCollector].
type Option interface{ apply(*collector) }

type optionFunc func(*collector)

func (f optionFunc) apply(c *collector) { f(c) }

// WithTier adds a shared tier to the collector under name (the "tier"
// label; valid UTF-8): figures is called at every scrape, possibly concurrently, and
// must be safe for that. Adapt a tier's own statistics to [stats.Tier] in
// it; a tier's counters must only grow, as Prometheus counters do.
func WithTier(name string, figures func() stats.Tier) Option {
	return optionFunc(func(c *collector) {
		c.tiers = append(c.tiers, tierSource{name, figures})
	})
}

type tierSource struct {
	name    string
	figures func() stats.Tier
}

// descs of every metric the collector reports.
var (
	cacheLabel = []string{"cache"}
	tierLabel  = []string{"tier"}

	hits        = desc("memo_cache_hits_total", "Lookups that found a live entry.", cacheLabel)
	misses      = desc("memo_cache_misses_total", "Lookups that found no live entry; callers that waited for an execution in flight included.", cacheLabel)
	led         = desc("memo_cache_led_total", "Misses whose caller ran the function, or started the execution it got its result from.", cacheLabel)
	coalesced   = desc("memo_cache_coalesced_total", "Misses served by another caller's execution.", cacheLabel)
	evictions   = desc("memo_cache_evictions_total", "Entries removed to make room.", cacheLabel)
	expirations = desc("memo_cache_expirations_total", "Entries removed because their TTL ran out.", cacheLabel)
	failures    = desc("memo_cache_failures_total", "Executions that returned an error or panicked.", cacheLabel)
	abandoned   = desc("memo_cache_abandoned_total", "Misses whose caller stopped waiting before a result.", cacheLabel)
	abandonedL  = desc("memo_cache_abandoned_leaders_total", "Abandoned misses whose caller had started the execution it left (the execution went on, and counts in the execution histogram).", cacheLabel)
	getMisses   = desc("memo_cache_get_misses_total", "Misses of Cache.Get, lookups after which nothing runs.", cacheLabel)
	uncacheable = desc("memo_cache_uncacheable_total", "Calls not stored because their key could not be kept.", cacheLabel)
	refStarted  = desc("memo_cache_refreshes_started_total", "Background refreshes started (WithRefreshAfter).", cacheLabel)
	refOK       = desc("memo_cache_refreshes_succeeded_total", "Background refreshes whose function returned without an error.", cacheLabel)
	refFailed   = desc("memo_cache_refreshes_failed_total", "Background refreshes whose function returned an error or panicked.", cacheLabel)
	staleServed = desc("memo_cache_stale_served_total", "Callers given a stale result because the execution that would replace it failed (WithStaleIfError).", cacheLabel)
	staleRetry  = desc("memo_cache_stale_retries_total", "Executions started in an outage of WithStaleIfError, by one caller at a time under a doubling back-off, while the others get the stale result.", cacheLabel)
	rejected    = desc("memo_cache_rejected_total", "Results not stored because WithCacheIf or WithTTLFunc rejected them.", cacheLabel)
	tierHitsC   = desc("memo_cache_tier_hits_total", "Executions a shared tier answered without running the function (counted in the execution histogram too).", cacheLabel)
	duration    = desc("memo_cache_execution_duration_seconds", "Execution times of the cached function.", cacheLabel)
	entries     = desc("memo_cache_entries", "Live entries.", cacheLabel)
	maxEntries  = desc("memo_cache_max_entries", "The cache's capacity in entries.", cacheLabel)
	batchKeys   = desc("memo_cache_batch_keys", "Distinct keys per call of a batch function (memo.Batch); the _count counts the calls.", cacheLabel)
	batchCached = desc("memo_cache_batch_cached_keys_total", "Keys of batch calls served from the cache.", cacheLabel)
	batchJoined = desc("memo_cache_batch_joined_keys_total", "Keys of batch calls that joined an execution another call had started.", cacheLabel)

	tierHits         = desc("memo_tier_hits_total", "Lookups found in the shared tier.", tierLabel)
	tierMisses       = desc("memo_tier_misses_total", "Lookups not found in the shared tier, undecodable values included.", tierLabel)
	tierErrors       = desc("memo_tier_errors_total", "Shared-tier operations that failed or ran out of time.", tierLabel)
	tierDecodeErrors = desc("memo_tier_decode_errors_total", "Values found in the shared tier that could not be decoded.", tierLabel)
	tierLeaseWaits   = desc("memo_tier_lease_waits_total", "Callers that waited for another process's execution.", tierLabel)
	tierBreakerOpens = desc("memo_tier_breaker_opens_total", "Times the shared tier's circuit breaker opened.", tierLabel)
	tierBreakerOpen  = desc("memo_tier_breaker_open", "1 while the shared tier's circuit breaker is open, else 0.", tierLabel)
	tierFills        = desc("memo_tier_fills_total", "Values this process wrote to the shared tier after running the function.", tierLabel)
	tierLocalRuns    = desc("memo_tier_local_runs_total", "Loads that ran the function without the shared tier (the tier failing, its breaker open, a wait too long).", tierLabel)
	tierInvalidation = desc("memo_tier_invalidations_total", "Invalidations that reached the shared tier.", tierLabel)
	tierResubscribes = desc("memo_tier_resubscribes_total", "Times the shared tier's feed of invalidations was restored after a break; each flushed the local entries.", tierLabel)
	tierGenFlushes   = desc("memo_tier_generation_flushes_total", "Flushes of the local entries of the shared tier's functions on a generation this process did not know (another replica's Clear, a lost generation key).", tierLabel)

	allDescs = []*prometheus.Desc{hits, misses, led, coalesced, evictions, expirations, failures, abandoned, abandonedL,
		getMisses, uncacheable, refStarted, refOK, refFailed, staleServed, staleRetry, rejected, tierHitsC, duration, entries, maxEntries,
		batchKeys, batchCached, batchJoined,
		tierHits, tierMisses, tierErrors, tierDecodeErrors, tierLeaseWaits, tierBreakerOpens, tierBreakerOpen,
		tierFills, tierLocalRuns, tierInvalidation, tierResubscribes, tierGenFlushes}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// bounds are the histogram's upper bounds in seconds (the last,
// unbounded bucket is Prometheus' implicit +Inf).
var bounds = func() []float64 {
	b := make([]float64, stats.HistogramBuckets-1)
	for i := range b {
		b[i] = stats.UpperBound(i).Seconds()
	}
	return b
}()

// sizeBounds are the batch keys histogram's upper bounds (the last,
// unbounded bucket is Prometheus' implicit +Inf).
var sizeBounds = func() []float64 {
	b := make([]float64, stats.SizeBuckets-1)
	for i := range b {
		b[i] = float64(stats.SizeUpperBound(i))
	}
	return b
}()

type collector struct {
	tiers []tierSource
	// caches lists the caches to report; nil for every cache memo.Caches
	// lists (tests give others).
	caches iter.Seq2[string, stats.Stats]
}

// liveCaches yields every cache memo.Caches lists, with a snapshot of its
// statistics.
func liveCaches(yield func(string, stats.Stats) bool) {
	for name, c := range memo.Caches() {
		if !yield(name, c.Stats()) {
			return
		}
	}
}

// NewCollector returns a collector of every live memo cache and the tiers
// given with [WithTier]. Register one per registry: two would report the
// same series. It panics if an option is nil or a tier's name is empty,
// not valid UTF-8, repeated, or has no figures func. Collect takes one Stats snapshot per
// cache and is safe for concurrent use.
func NewCollector(opts ...Option) prometheus.Collector {
	c := &collector{}
	for _, o := range opts {
		if o == nil {
			panic("memoprom: nil Option")
		}
		o.apply(c)
	}
	seen := map[string]bool{}
	for _, t := range c.tiers {
		if t.name == "" || t.figures == nil {
			panic("memoprom: WithTier needs a name and a figures func")
		}
		if !utf8.ValidString(t.name) {
			panic(fmt.Sprintf("memoprom: WithTier(%q): the name must be valid UTF-8, as a label value", t.name))
		}
		if seen[t.name] {
			panic("memoprom: WithTier(" + t.name + "): the name is already used")
		}
		seen[t.name] = true
	}
	slices.SortFunc(c.tiers, func(a, b tierSource) int { return cmp.Compare(a.name, b.name) })
	return c
}

// Describe sends the descriptors of every metric; the set is fixed, so
// the collector is checked by the registry.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reports every cache memo.Caches lists now, and every tier.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	caches := c.caches
	if caches == nil {
		caches = liveCaches
	}
	seen := map[string]bool{}
	for name, s := range caches {
		collectCache(ch, labelOf(name, seen), s)
	}
	for _, t := range c.tiers {
		collectTier(ch, t.name, t.figures())
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, label string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, label string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
}

func collectCache(ch chan<- prometheus.Metric, name string, s stats.Stats) {
	counter(ch, hits, s.Hits, name)
	counter(ch, misses, s.Misses, name)
	counter(ch, led, s.Led, name)
	counter(ch, coalesced, s.Coalesced, name)
	counter(ch, evictions, s.Evictions, name)
	counter(ch, expirations, s.Expirations, name)
	counter(ch, failures, s.Failures, name)
	counter(ch, abandoned, s.Abandoned, name)
	counter(ch, abandonedL, s.AbandonedLeaders, name)
	counter(ch, getMisses, s.GetMisses, name)
	counter(ch, uncacheable, s.Uncacheable, name)
	counter(ch, refStarted, s.RefreshesStarted, name)
	counter(ch, refOK, s.RefreshesSucceeded, name)
	counter(ch, refFailed, s.RefreshesFailed, name)
	counter(ch, staleServed, s.StaleServed, name)
	counter(ch, staleRetry, s.StaleRetries, name)
	counter(ch, rejected, s.Rejected, name)
	counter(ch, tierHitsC, s.TierHits, name)
	gauge(ch, entries, float64(s.CurrentSize), name)
	gauge(ch, maxEntries, float64(s.MaxSize), name)
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += s.ExecTimes.Counts[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(duration, s.ExecTimes.Count(), s.TotalTime.Seconds(), buckets, name)
	if s.BatchCalls > 0 || s.BatchCached > 0 || s.BatchJoined > 0 {
		collectBatch(ch, name, s)
	}
}

// collectBatch reports a batch function's counters.
func collectBatch(ch chan<- prometheus.Metric, name string, s stats.Stats) {
	buckets := make(map[float64]uint64, len(sizeBounds))
	var cum uint64
	for i, b := range sizeBounds {
		cum += s.BatchKeys.Counts[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(batchKeys, s.BatchKeys.Count(), float64(s.BatchKeys.Sum), buckets, name)
	counter(ch, batchCached, s.BatchCached, name)
	counter(ch, batchJoined, s.BatchJoined, name)
}

func collectTier(ch chan<- prometheus.Metric, name string, t stats.Tier) {
	counter(ch, tierHits, t.Hits, name)
	counter(ch, tierMisses, t.Misses, name)
	counter(ch, tierErrors, t.Errors, name)
	counter(ch, tierDecodeErrors, t.DecodeErrors, name)
	counter(ch, tierLeaseWaits, t.LeaseWaits, name)
	counter(ch, tierBreakerOpens, t.BreakerOpens, name)
	counter(ch, tierFills, t.Fills, name)
	counter(ch, tierLocalRuns, t.LocalRuns, name)
	counter(ch, tierInvalidation, t.Invalidations, name)
	counter(ch, tierResubscribes, t.Resubscribes, name)
	counter(ch, tierGenFlushes, t.GenerationFlushes, name)
	open := 0.0
	if t.BreakerOpen {
		open = 1
	}
	gauge(ch, tierBreakerOpen, open, name)
}

// labelOf returns the label value for the cache listed as name: name
// itself when it is valid UTF-8 and not in seen, else name with each
// invalid byte written as \xNN and, if that is in seen, "#2", "#3", ...
// appended. It adds the value to seen.
func labelOf(name string, seen map[string]bool) string { return names.Shown(name, seen) }
