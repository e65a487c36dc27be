// Package stats holds memo's cache statistics: [Stats], an immutable
// snapshot with derived values, and [Recorder], the goroutine-safe
// accumulator a cache updates on its hot path.
package stats

import (
	"fmt"
	"strings"
	"time"
)

// Stats is a point-in-time snapshot of one cache's statistics. It is a plain
// value: copying it is cheap and its methods never touch the cache, so it is
// safe to read from any goroutine.
//
// The counters obey these identities once no call, refresh or retry is in
// flight (a snapshot taken while some run is not an atomic cut: see
// Recorder.Snapshot):
//
//	Hits + Misses == lookups (calls of memoized functions, and Cache.Get)
//	Misses == Led + Coalesced + Abandoned + GetMisses        (Pending() == 0)
//	TotalCalls == Led + AbandonedLeaders + RefreshesStarted + samples
//	RefreshesStarted == RefreshesSucceeded + RefreshesFailed
//	ExecTimes.Count() == TotalCalls
//
// where samples are those given to Cache.UpdateProfiling. The third does
// not hold for a function memoized by memo.Batch, whose one execution
// (a call of its batch function) serves many led keys: there TotalCalls
// counts the calls of the batch function, and Led the keys. From the
// second and third,
//
//	Misses == TotalCalls - RefreshesStarted + Coalesced + GetMisses
//	          + (Abandoned - AbandonedLeaders) - samples
//
// so that with no caller leaving early and no samples,
// Misses == TotalCalls - RefreshesStarted + Coalesced + GetMisses. And
// Failures <= TotalCalls, AbandonedLeaders <= Abandoned, StaleServed <= Led
// + Coalesced (a caller served stale is one of those misses), StaleRetries
// <= Led + AbandonedLeaders (a retry is a miss's execution) and CurrentSize
// <= MaxSize. Stored or rejected results, stale results, TTL expiry,
// eviction and invalidation do not change these sums. Cache.Clear and
// Cache.ResetStats zero every counter: made while calls are in flight, they
// split those calls' counts, and the identities hold again from a reset
// made with none in flight.
type Stats struct {
	// Hits and Misses count lookups; every lookup is one or the other.
	// Callers that waited for an in-flight call are misses. A call that
	// finds an entry due for a refresh (WithRefreshAfter) is a hit if it is
	// served that entry, and a miss if the entry went before it was (an
	// eviction or invalidation at that instant: it then runs the function
	// as any miss).
	//
	// Every miss ends in exactly one way (Led, Coalesced, Abandoned,
	// GetMisses): see [Stats.Pending] for the invariant.
	Hits, Misses uint64
	// Coalesced counts misses served without running the function
	// themselves: by another caller's execution (they waited for it, or
	// found the entry it stored just before), or, in an outage of
	// WithStaleIfError, by the stale result at once while another caller
	// retries (see StaleRetries). A caller that stopped waiting, its
	// context done, is not counted.
	Coalesced uint64
	// Evictions counts entries removed to make room; Expirations counts
	// entries removed because their TTL (and stale window) ran out.
	Evictions, Expirations uint64
	// TotalCalls counts executions of the function (timing samples).
	TotalCalls uint64
	// Failures counts executions that returned an error or panicked.
	Failures uint64
	// TotalTime is the sum of all execution times; MinTime and MaxTime are
	// the extremes, and all three are 0 before the first sample.
	TotalTime, MinTime, MaxTime time.Duration
	// CurrentSize is the number of live entries; MaxSize the capacity.
	CurrentSize, MaxSize int
	// TTL is the entries' time to live; 0 means entries never expire.
	TTL time.Duration
	// Abandoned counts misses whose caller stopped waiting (its context
	// ended) before the execution it led or joined had a result.
	Abandoned uint64
	// Uncacheable counts calls whose key can never hit again (past the key
	// size limit, or holding a value memo cannot identify): they ran the
	// function and stored nothing.
	Uncacheable uint64
	// ExecTimes is the distribution of the execution times that TotalCalls
	// counts: its Count() equals TotalCalls in every snapshot.
	ExecTimes Histogram
	// RefreshesStarted counts background re-executions started by
	// WithRefreshAfter; RefreshesSucceeded those whose function returned
	// without an error (the result replaced the entry unless something
	// newer was stored, the entry was invalidated or evicted meanwhile, or
	// the result was rejected), RefreshesFailed those that returned an
	// error or panicked, or ran out of time (the old entry was kept).
	RefreshesStarted, RefreshesSucceeded, RefreshesFailed uint64
	// StaleServed counts callers that got an expired entry's result
	// because the execution that would have replaced it failed, or, in the
	// outage that such a failure starts, at once (WithStaleIfError).
	StaleServed uint64
	// Rejected counts results that WithCacheIf's predicate or WithTTLFunc's
	// function chose not to store; they were still returned to the callers.
	Rejected uint64
	// Led counts misses whose caller ran the function itself, or started
	// the execution it then waited for, and got its result (or its panic).
	// Calls that run the function on their own count here too: a call made
	// from inside an execution for that execution's own key, and a call
	// whose key can never hit again (Uncacheable).
	Led uint64
	// GetMisses counts the misses of Cache.Get: lookups after which
	// nothing runs.
	GetMisses uint64
	// AbandonedLeaders counts the Abandoned misses whose caller had
	// started the execution it left: that execution went on (for the
	// callers still waiting, or, with none, until its cancelled function
	// returned) and counts in TotalCalls, as no Led miss does for it.
	AbandonedLeaders uint64
	// StaleRetries counts the executions started in an outage of
	// WithStaleIfError: while an entry's stale result is served, at most
	// one caller at a time, and no more often than a doubling back-off,
	// runs the function again (the others get the stale result at once).
	// Each is also a miss's execution (Led, or AbandonedLeaders).
	StaleRetries uint64
	// TierHits counts the executions of a function decorated WithTier
	// that the shared tier answered without running the function: a
	// local miss whose result another replica had stored, or a refresh
	// that found a value another replica had refreshed. They are in
	// TotalCalls and ExecTimes (timed as the round trip to the tier), so
	// that the identities above keep holding; the function
	// ran here TotalCalls - TierHits times ([Stats.LocalRuns]). 0 without
	// a tier.
	TierHits uint64
	// BatchCalls counts the calls of a function memoized by memo.Batch,
	// and of its memo.Single form (a call of one key); 0 for other
	// functions. Each key of such a call is also one lookup in Hits or
	// Misses, and each call of the batch function one execution in
	// TotalCalls.
	BatchCalls uint64
	// BatchKeys is the distribution of the distinct keys per batch call:
	// its Count() equals BatchCalls and its Sum is the keys asked in all.
	BatchKeys SizeHistogram
	// BatchCached counts the keys of batch calls served from the cache
	// without waiting (they are Hits as well).
	BatchCached uint64
	// BatchJoined counts the keys of batch calls that joined an execution
	// another call had started, of the batch or its Single form, or a
	// refresh (they are Coalesced misses as well, when served).
	BatchJoined uint64
}

// LocalRuns returns the executions that ran the function in this process
// rather than being answered by a shared tier: TotalCalls - TierHits
// (samples given to Cache.UpdateProfiling included), or 0 in a snapshot
// taken while a tier's answer is counted and its execution not yet. The
// tier's own [Tier].LocalRuns counts something narrower: the loads that
// ran the function without the tier, because it failed or its breaker was
// open.
func (s Stats) LocalRuns() uint64 {
	if s.TierHits > s.TotalCalls {
		return 0
	}
	return s.TotalCalls - s.TierHits
}

// Quantile estimates the q-quantile of the execution times (q = 0.5 for
// the median, 0.99 for p99) from ExecTimes, clamped to [MinTime, MaxTime]
// so that it never reports a time outside those seen; a rank past the last
// finite bound reports MaxTime. It returns 0 before the first execution.
// See [Histogram.Quantile] for the method.
func (s Stats) Quantile(q float64) time.Duration {
	if s.TotalCalls == 0 {
		return 0
	}
	d, unbounded := s.ExecTimes.quantile(q)
	if unbounded {
		return s.MaxTime
	}
	return min(max(d, s.MinTime), s.MaxTime)
}

// Pending returns the misses that had not ended when the statistics were
// taken. Every miss ends in exactly one of four ways: its caller ran the
// function, or started the execution it got its result from (Led), was
// served by another caller's execution, by the entry it had just stored or
// by a stale result in an outage (Coalesced), left before a result
// (Abandoned), or was a lookup of Cache.Get (GetMisses). So
//
//	Misses == Led + Coalesced + Abandoned + GetMisses + Pending()
//
// and Pending is 0 once no call is in flight. Uncacheable is not part of
// the sum: such a call is a miss that runs the function itself (Led) or
// left first (Abandoned), and a Cache.Set counts there too. Nor is
// TotalCalls: see [Stats] for how it relates to the misses (with no caller
// leaving early and no samples given to Cache.UpdateProfiling,
// Misses == TotalCalls - RefreshesStarted + Coalesced + GetMisses).
//
// A snapshot taken while calls run is not an atomic cut (see
// Recorder.Snapshot), so Pending is then approximate, and may even be
// negative.
func (s Stats) Pending() int64 {
	return int64(s.Misses) - int64(s.Led+s.Coalesced+s.Abandoned+s.GetMisses)
}

// HitRatio returns Hits / (Hits + Misses), or 0 when there were no lookups.
func (s Stats) HitRatio() float64 {
	total := s.Hits + s.Misses
	if total == 0 {
		return 0
	}
	return float64(s.Hits) / float64(total)
}

// AvgTime returns TotalTime / TotalCalls, or 0 when nothing was executed.
func (s Stats) AvgTime() time.Duration {
	if s.TotalCalls == 0 {
		return 0
	}
	return s.TotalTime / time.Duration(s.TotalCalls)
}

// Map returns the statistics in the shape of AlexBerUtils's (Python)
// get_stats() dict, with exactly its keys and formats:
//
//   - "hits", "misses", "total_calls", "current_size", "max_size": int
//     (the uint64 counters are converted to int, which on 64-bit platforms
//     holds any count a process can reach);
//   - "hit_miss_ratio": string, hits/(hits+misses) with four decimals, "0.5000";
//   - "avg_time", "min_time", "max_time": string, seconds with four decimals
//     and a unit, "0.0012 s" ("0.0000 s" before any call);
//   - "ttl_sec": string, seconds with four decimals, "60.0000", or "None"
//     when there is no TTL.
//
// The counters Coalesced, Evictions, Expirations, Failures, Abandoned,
// Uncacheable, Led, GetMisses, RefreshesStarted, RefreshesSucceeded,
// RefreshesFailed, StaleServed, Rejected, AbandonedLeaders, StaleRetries,
// TierHits, BatchCalls, BatchCached and BatchJoined, and the ExecTimes and
// BatchKeys histograms, have no key in get_stats() and
// are not in the map; read them from the fields.
func (s Stats) Map() map[string]any {
	ttl := "None"
	if s.TTL > 0 {
		ttl = fmt.Sprintf("%.4f", s.TTL.Seconds())
	}
	return map[string]any{
		"hits":           int(s.Hits),
		"misses":         int(s.Misses),
		"hit_miss_ratio": fmt.Sprintf("%.4f", s.HitRatio()),
		"avg_time":       seconds(s.AvgTime()),
		"max_time":       seconds(s.MaxTime),
		"min_time":       seconds(s.MinTime),
		"total_calls":    int(s.TotalCalls),
		"current_size":   s.CurrentSize,
		"max_size":       s.MaxSize,
		"ttl_sec":        ttl,
	}
}

// seconds formats d the way the original formats its timings: "0.0012 s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.4f s", d.Seconds())
}

// String returns a human-readable table of every field, one per line in a
// fixed order, labels padded so the values line up: the counters (the four
// ways a miss ends, Led, Coalesced, Abandoned and GetMisses, right under
// misses), the derived hit ratio and average time, and ExecTimes as its
// p50, p90 and p99 estimates ([Stats.Quantile]), and, for a batch
// function's statistics (any batch counter above 0), the batch counters
// with the mean keys per call. It has no trailing newline.
func (s Stats) String() string {
	ttl := "none"
	if s.TTL > 0 {
		ttl = s.TTL.String()
	}
	rows := []struct{ label, value string }{
		{"hits", fmt.Sprint(s.Hits)},
		{"misses", fmt.Sprint(s.Misses)},
		{"led", fmt.Sprint(s.Led)},
		{"coalesced", fmt.Sprint(s.Coalesced)},
		{"abandoned", fmt.Sprint(s.Abandoned)},
		{"get misses", fmt.Sprint(s.GetMisses)},
		{"abandoned leaders", fmt.Sprint(s.AbandonedLeaders)},
		{"hit ratio", fmt.Sprintf("%.2f%%", 100*s.HitRatio())},
		{"evictions", fmt.Sprint(s.Evictions)},
		{"expirations", fmt.Sprint(s.Expirations)},
		{"uncacheable", fmt.Sprint(s.Uncacheable)},
		{"calls", fmt.Sprint(s.TotalCalls)},
		{"tier hits", fmt.Sprint(s.TierHits)},
		{"failures", fmt.Sprint(s.Failures)},
		{"avg time", s.AvgTime().String()},
		{"min time", s.MinTime.String()},
		{"max time", s.MaxTime.String()},
		{"p50 time", s.Quantile(0.5).String()},
		{"p90 time", s.Quantile(0.9).String()},
		{"p99 time", s.Quantile(0.99).String()},
		{"refreshes started", fmt.Sprint(s.RefreshesStarted)},
		{"refreshes succeeded", fmt.Sprint(s.RefreshesSucceeded)},
		{"refreshes failed", fmt.Sprint(s.RefreshesFailed)},
		{"stale served", fmt.Sprint(s.StaleServed)},
		{"stale retries", fmt.Sprint(s.StaleRetries)},
		{"rejected", fmt.Sprint(s.Rejected)},
	}
	if s.BatchCalls > 0 || s.BatchCached > 0 || s.BatchJoined > 0 {
		rows = append(rows, []struct{ label, value string }{
			{"batch calls", fmt.Sprint(s.BatchCalls)},
			{"batch keys/call", fmt.Sprintf("%.1f", s.BatchKeys.Mean())},
			{"batch cached", fmt.Sprint(s.BatchCached)},
			{"batch joined", fmt.Sprint(s.BatchJoined)},
		}...)
	}
	rows = append(rows, []struct{ label, value string }{
		{"size", fmt.Sprintf("%d/%d", s.CurrentSize, s.MaxSize)},
		{"ttl", ttl},
	}...)
	width := 0
	for _, r := range rows {
		width = max(width, len(r.label))
	}
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%-*s %s", width, r.label, r.value)
	}
	return b.String()
}
