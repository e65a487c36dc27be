package stats

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// stripes is the number of independent words in a Counter; a power of two.
	stripes    = 16
	stripeBits = 4
	// stripeSize spans two 64-byte lines, so that the adjacent-line
	// prefetcher of x86 CPUs does not pull a neighbour's stripe along.
	stripeSize = 128
)

// stripe is one padded word of a Counter. Two stripes' words are
// stripeSize bytes apart, so they never share a cache line however the
// Counter itself is aligned.
type stripe struct {
	n atomic.Uint64
	_ [stripeSize - 8]byte
}

// Counter is a striped counter: Adds that land on different stripes never
// share a cache line, so parallel cache hits do not fight over one atomic
// word. Its zero value is a counter at 0, ready to use. All methods are safe
// for concurrent use; a Counter must not be copied after first use.
//
// A Counter starts as one word (16 bytes in all), so that the many caches
// that never see parallel use stay small; the first Add that contends with
// another (a failed compare-and-swap) makes the stripes (2 KiB), which all
// later Adds use. Add is one atomic operation; Load and Reset touch every
// stripe.
type Counter struct {
	n atomic.Uint64                   // the count added before the stripes were made
	s atomic.Pointer[[stripes]stripe] // nil until the first contention
}

// index maps a hint to a stripe. Fibonacci hashing spreads even small or
// sequential hints (0, 1, 2, ...) over all stripes.
func index(hint uint64) uint64 {
	return (hint * 0x9E3779B97F4A7C15) >> (64 - stripeBits)
}

// Add adds n to the stripe chosen by hint. Callers pass the key's hash, so
// lookups of different keys spread over the stripes; lookups of one hot key
// share a stripe.
func (c *Counter) Add(hint, n uint64) {
	if s := c.s.Load(); s != nil {
		s[index(hint)].n.Add(n)
		return
	}
	if old := c.n.Load(); c.n.CompareAndSwap(old, old+n) {
		return
	}
	c.stripes()[index(hint)].n.Add(n)
}

// Inc adds 1 to the stripe chosen by hint; see [Counter.Add].
func (c *Counter) Inc(hint uint64) { c.Add(hint, 1) }

// stripes makes the stripes, or returns those another goroutine made.
func (c *Counter) stripes() *[stripes]stripe {
	s := new([stripes]stripe)
	if c.s.CompareAndSwap(nil, s) {
		return s
	}
	return c.s.Load()
}

// Load returns the sum of all stripes. Under concurrent Adds the result is
// not an atomic cut: it includes some of the Adds that run during Load.
func (c *Counter) Load() uint64 {
	sum := c.n.Load()
	if s := c.s.Load(); s != nil {
		for i := range s {
			sum += s[i].n.Load()
		}
	}
	return sum
}

// Reset sets every stripe to 0. Adds that run concurrently with Reset may be
// kept or lost.
func (c *Counter) Reset() {
	c.n.Store(0)
	if s := c.s.Load(); s != nil {
		for i := range s {
			s[i].n.Store(0)
		}
	}
}

// Recorder accumulates a cache's statistics. Its zero value is an empty
// recorder, ready to use. All methods are safe for concurrent use; a
// Recorder must not be copied after first use.
//
// Hit and Miss are on the lookup path and cost one atomic add on a striped
// [Counter], so lookups of different keys rarely touch the same cache line.
// The other counters are single atomic words, as they
// move only on the slower paths (an execution, an eviction). Execution
// samples are folded in under a small mutex so that TotalCalls, TotalTime,
// MinTime, MaxTime, ExecTimes and Failures are always consistent with each
// other.
type Recorder struct {
	hits, misses Counter

	coalesced   atomic.Uint64
	evictions   atomic.Uint64
	expirations atomic.Uint64
	ends        atomic.Pointer[ends]          // made by the first miss that ends, or refresh
	batch       atomic.Pointer[batchCounters] // made by the first batch call

	mu       sync.Mutex
	calls    uint64
	failures uint64
	tierHits uint64
	total    time.Duration
	min, max time.Duration
	hist     *Histogram // made by the first execution, so that unused recorders stay small
}

// Hit records one lookup that found a live entry; hint is the key's hash.
func (r *Recorder) Hit(hint uint64) { r.hits.Inc(hint) }

// Miss records one lookup that found no live entry; hint is the key's hash.
func (r *Recorder) Miss(hint uint64) { r.misses.Inc(hint) }

// Coalesced records n misses that were served by another caller's execution.
func (r *Recorder) Coalesced(n uint64) { r.coalesced.Add(n) }

// Evicted records n entries removed to make room.
func (r *Recorder) Evicted(n uint64) { r.evictions.Add(n) }

// Expired records n entries removed because their TTL ran out.
func (r *Recorder) Expired(n uint64) { r.expirations.Add(n) }

// Abandoned records n misses whose caller left before a result.
func (r *Recorder) Abandoned(n uint64) { r.endsOf().abandoned.Add(n) }

// Led records n misses whose caller ran the function, or started the
// execution it waited for, and got its result.
func (r *Recorder) Led(n uint64) { r.endsOf().led.Add(n) }

// GetMissed records n misses of Cache.Get, lookups after which nothing
// runs.
func (r *Recorder) GetMissed(n uint64) { r.endsOf().getMisses.Add(n) }

// AbandonedLeader records n of the Abandoned misses whose caller had
// started the execution it left.
func (r *Recorder) AbandonedLeader(n uint64) { r.endsOf().abandonedLeaders.Add(n) }

// StaleRetried records n retries of a function in an outage
// (stale-if-error): executions started while a stale result was served.
func (r *Recorder) StaleRetried(n uint64) { r.endsOf().staleRetries.Add(n) }

// Uncacheable records n calls whose key can never hit again, so that their
// results were not stored.
func (r *Recorder) Uncacheable(n uint64) { r.endsOf().uncacheable.Add(n) }

// ends holds the counters of how misses end, and of refreshes, apart so
// that a recorder that never saw a miss (a cache never called) stays small.
type ends struct {
	abandoned, uncacheable, led, getMisses atomic.Uint64
	refreshes, refreshOK, refreshErr       atomic.Uint64
	stale, rejected                        atomic.Uint64
	abandonedLeaders, staleRetries         atomic.Uint64
}

// endsOf returns r's ends, making them on first use.
func (r *Recorder) endsOf() *ends {
	if e := r.ends.Load(); e != nil {
		return e
	}
	r.ends.CompareAndSwap(nil, new(ends))
	return r.ends.Load()
}

// batchCounters holds the batch statistics apart, so that the recorder of
// a function that is not a batch function stays small.
type batchCounters struct {
	keys           [SizeBuckets]atomic.Uint64
	sum            atomic.Uint64
	cached, joined atomic.Uint64
}

// batchOf returns r's batch counters, making them on first use.
func (r *Recorder) batchOf() *batchCounters {
	if b := r.batch.Load(); b != nil {
		return b
	}
	r.batch.CompareAndSwap(nil, new(batchCounters))
	return r.batch.Load()
}

// BatchCall records one call of a batch function with keys distinct keys
// (Stats.BatchCalls and Stats.BatchKeys).
func (r *Recorder) BatchCall(keys int) {
	b := r.batchOf()
	n := uint64(max(keys, 0))
	b.keys[sizeBucketOf(n)].Add(1)
	b.sum.Add(n)
}

// BatchCached records n keys of batch calls served from the cache.
func (r *Recorder) BatchCached(n uint64) { r.batchOf().cached.Add(n) }

// BatchJoined records n keys of batch calls that joined another call's
// execution.
func (r *Recorder) BatchJoined(n uint64) { r.batchOf().joined.Add(n) }

// RefreshStarted records one background refresh started.
func (r *Recorder) RefreshStarted() { r.endsOf().refreshes.Add(1) }

// RefreshSucceeded records one background refresh whose function returned
// without an error.
func (r *Recorder) RefreshSucceeded() { r.endsOf().refreshOK.Add(1) }

// RefreshFailed records one background refresh whose function returned an
// error or panicked.
func (r *Recorder) RefreshFailed() { r.endsOf().refreshErr.Add(1) }

// StaleServed records n callers that got a stale result in place of a
// failed execution's.
func (r *Recorder) StaleServed(n uint64) { r.endsOf().stale.Add(n) }

// Rejected records n results that a store predicate or TTL function chose
// not to store.
func (r *Recorder) Rejected(n uint64) { r.endsOf().rejected.Add(n) }

// TierHit records one execution answered by a shared tier without
// running the function (Stats.TierHits); the execution itself is recorded
// by Execution, as any other.
func (r *Recorder) TierHit() {
	r.mu.Lock()
	r.tierHits++
	r.mu.Unlock()
}

// Execution records one execution of the cached function that took d:
// TotalCalls grows by one, TotalTime by d, MinTime and MaxTime take d into
// account, d is counted in the ExecTimes histogram's bucket, and Failures
// grows by one if failed. A negative d (a clock that went backwards)
// counts as 0.
func (r *Recorder) Execution(d time.Duration, failed bool) {
	d = max(d, 0)
	r.mu.Lock()
	if r.calls == 0 || d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
	r.calls++
	r.total += d
	if r.hist == nil {
		r.hist = new(Histogram)
	}
	r.hist.Counts[bucketOf(d)]++
	if failed {
		r.failures++
	}
	r.mu.Unlock()
}

// Snapshot returns the recorded statistics. It fills the counters and the
// timing fields; CurrentSize, MaxSize and TTL are left 0 for the cache to
// fill. MinTime is 0 before the first sample.
//
// Snapshot is not an atomic cut: counters updated while it runs may be
// included or not, independently of each other (so Hits+Misses may not
// match any single instant). The timing fields are read under one lock
// and are always consistent with each other.
func (r *Recorder) Snapshot() Stats {
	s := Stats{
		Hits:        r.hits.Load(),
		Misses:      r.misses.Load(),
		Coalesced:   r.coalesced.Load(),
		Evictions:   r.evictions.Load(),
		Expirations: r.expirations.Load(),
	}
	if e := r.ends.Load(); e != nil {
		s.Abandoned = e.abandoned.Load()
		s.Uncacheable = e.uncacheable.Load()
		s.Led = e.led.Load()
		s.GetMisses = e.getMisses.Load()
		s.RefreshesStarted = e.refreshes.Load()
		s.RefreshesSucceeded = e.refreshOK.Load()
		s.RefreshesFailed = e.refreshErr.Load()
		s.StaleServed = e.stale.Load()
		s.Rejected = e.rejected.Load()
		s.AbandonedLeaders = e.abandonedLeaders.Load()
		s.StaleRetries = e.staleRetries.Load()
	}
	if b := r.batch.Load(); b != nil {
		for i := range b.keys {
			s.BatchKeys.Counts[i] = b.keys[i].Load()
		}
		s.BatchKeys.Sum = b.sum.Load()
		s.BatchCalls = s.BatchKeys.Count()
		s.BatchCached = b.cached.Load()
		s.BatchJoined = b.joined.Load()
	}
	r.mu.Lock()
	s.TotalCalls = r.calls
	s.Failures = r.failures
	s.TierHits = r.tierHits
	s.TotalTime = r.total
	s.MinTime = r.min
	s.MaxTime = r.max
	if r.hist != nil {
		s.ExecTimes = *r.hist
	}
	r.mu.Unlock()
	return s
}

// Reset sets every statistic back to zero. Updates that run concurrently
// with Reset may be kept or lost; the timing fields are reset as one.
func (r *Recorder) Reset() {
	r.hits.Reset()
	r.misses.Reset()
	r.coalesced.Store(0)
	r.evictions.Store(0)
	r.expirations.Store(0)
	if e := r.ends.Load(); e != nil {
		e.abandoned.Store(0)
		e.uncacheable.Store(0)
		e.led.Store(0)
		e.getMisses.Store(0)
		e.refreshes.Store(0)
		e.refreshOK.Store(0)
		e.refreshErr.Store(0)
		e.stale.Store(0)
		e.rejected.Store(0)
		e.abandonedLeaders.Store(0)
		e.staleRetries.Store(0)
	}
	if b := r.batch.Load(); b != nil {
		for i := range b.keys {
			b.keys[i].Store(0)
		}
		b.sum.Store(0)
		b.cached.Store(0)
		b.joined.Store(0)
	}
	r.mu.Lock()
	r.calls, r.failures, r.tierHits = 0, 0, 0
	r.total, r.min, r.max = 0, 0, 0
	if r.hist != nil {
		*r.hist = Histogram{}
	}
	r.mu.Unlock()
}
