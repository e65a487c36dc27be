// Package memohttp serves a debug page listing every live memo cache
// ([memo.Caches]) with its figures: name, policy, size and capacity, hit
// ratio, coalesced calls, evictions, expirations, the times the function
// ran here apart from the executions a shared tier answered
// ([stats.Stats.TierHits]), execution-time percentiles, every other
// counter of [stats.Stats] (misses led, abandoned (and how many of those
// had started their execution) and Cache.Get misses, uncacheable calls,
// refreshes, stale results served and stale-if-error retries, rejected
// results, and for a batch function (memo.Batch) its batch calls, keys
// asked, keys served from the cache and keys joined) in a second line per
// cache, and the figures of the shared tiers
// registered with [WithTier] (every field of [stats.Tier]). The page is
// server-rendered HTML, readable without JavaScript, with a small inline
// SVG bar per hit ratio. The page never scrolls sideways: names and the
// second lines wrap, and in a window 1200 px wide the tables fit, counts
// of 11 digits included (a narrower window scrolls a table in its box).
// The same figures are served as JSON (a [Page]) to a request with
// ?format=json or an Accept header naming application/json.
//
// Names are shown as memo lists them (escaped for HTML and JSON). Should
// the registry ever list one that is not valid UTF-8 (memo.WithName
// refuses those), each invalid byte is shown as \xNN, and a name that
// then equals one already on the page gets "#2", "#3", ...
//
// Mount the handler under any prefix; it uses relative links only and
// answers every path it is given:
//
//	http.Handle("/debug/memo", memohttp.Handler())
//
// The page shows names of caches and figures, never keys or values; still,
// serve it only where operators may see it, as net/http/pprof.
package memohttp

import (
	"cmp"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/memokit/memo"
	"github.com/memokit/memo/internal/names"
	"github.com/memokit/memo/stats"
)

// Page is the JSON document the handler serves: every live cache, in the
// order of their names, and every registered tier, in the order of theirs.
type Page struct {
	Caches []Cache `json:"caches"`
	Tiers  []Tier  `json:"tiers"`
}

// Cache is one cache's figures on the page. Times are in seconds.
type Cache struct {
	Name        string  `json:"name"`        // as memo.Caches lists it
	Policy      string  `json:"policy"`      // "lru", "lfu", ...
	Size        int     `json:"size"`        // live entries
	Capacity    int     `json:"capacity"`    // maximum entries
	TTLSeconds  float64 `json:"ttl_seconds"` // 0: entries never expire
	Hits        uint64  `json:"hits"`        // lookups that found a live entry
	Misses      uint64  `json:"misses"`      // lookups that did not
	HitRatio    float64 `json:"hit_ratio"`   // hits/(hits+misses), 0 to 1
	Led         uint64  `json:"led"`         // misses whose caller ran the function, or started the execution it got its result from
	Coalesced   uint64  `json:"coalesced"`   // misses served by another caller's execution
	Evictions   uint64  `json:"evictions"`   // entries removed to make room
	Expirations uint64  `json:"expirations"` // entries removed by their TTL
	Executions  uint64  `json:"executions"`  // times the function ran in this process (stats.Stats.LocalRuns)
	TierHits    uint64  `json:"tier_hits"`   // executions a shared tier answered without running the function
	Failures    uint64  `json:"failures"`    // executions that failed or panicked
	Abandoned   uint64  `json:"abandoned"`   // callers that left before a result
	// AbandonedLeaders counts the abandoned callers that had started the
	// execution they left (it went on, and counts in the executions).
	AbandonedLeaders uint64 `json:"abandoned_leaders"`
	GetMisses        uint64 `json:"get_misses"`  // misses of Cache.Get (nothing runs)
	Uncacheable      uint64 `json:"uncacheable"` // calls whose key could not be kept
	// Freshness (memo.WithRefreshAfter, WithStaleIfError, WithCacheIf,
	// WithTTLFunc): background refreshes started, those whose function
	// returned without an error, those that failed (started counts the
	// ones still running too); callers given a stale result because the
	// execution that would replace it failed, or at once in the outage
	// that failure starts; executions started in such an outage (one
	// caller at a time, under a doubling back-off, retries the function
	// while the others get the stale result); results not stored because
	// the predicate or TTL function rejected them.
	RefreshesStarted   uint64 `json:"refreshes_started"`
	RefreshesSucceeded uint64 `json:"refreshes_succeeded"`
	RefreshesFailed    uint64 `json:"refreshes_failed"`
	StaleServed        uint64 `json:"stale_served"`
	StaleRetries       uint64 `json:"stale_retries"`
	Rejected           uint64 `json:"rejected"`
	// ExecTime and ExecBuckets cover every execution, those a shared tier
	// answered (timed as the round trip) included.
	ExecTime Timing `json:"exec_seconds"`
	// ExecBuckets counts executions per bucket of stats.Histogram: bucket
	// i holds times up to 1µs·2^i (and over the previous bound); the last
	// bucket, index stats.HistogramBuckets-1, has no upper bound.
	ExecBuckets []uint64 `json:"exec_buckets"`
	// Batch functions (memo.Batch): calls, distinct keys they asked in
	// all, keys served from the cache, keys that joined another call's
	// execution, all 0 for other functions; and the calls per bucket of
	// stats.SizeHistogram (bucket i holds calls of up to 2^i keys, and
	// over the previous bound; the last has no upper bound), left out for
	// other functions.
	BatchCalls      uint64   `json:"batch_calls"`
	BatchKeys       uint64   `json:"batch_keys"`
	BatchCached     uint64   `json:"batch_cached_keys"`
	BatchJoined     uint64   `json:"batch_joined_keys"`
	BatchKeyBuckets []uint64 `json:"batch_key_buckets,omitempty"`
}

// Timing summarises execution times, in seconds; all are 0 before the
// first execution. The percentiles are estimates from the histogram
// (stats.Stats.Quantile), within a factor of 2.
type Timing struct {
	Avg float64 `json:"avg"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// Tier is one shared tier's figures on the page; each field is the
// stats.Tier field of its name.
type Tier struct {
	Name              string  `json:"name"`
	Hits              uint64  `json:"hits"`
	Misses            uint64  `json:"misses"`
	HitRatio          float64 `json:"hit_ratio"`
	Fills             uint64  `json:"fills"`
	LocalRuns         uint64  `json:"local_runs"`
	LeaseWaits        uint64  `json:"lease_waits"`
	Errors            uint64  `json:"errors"`
	DecodeErrors      uint64  `json:"decode_errors"`
	Invalidations     uint64  `json:"invalidations"`
	Resubscribes      uint64  `json:"resubscribes"`
	GenerationFlushes uint64  `json:"generation_flushes"`
	BreakerOpens      uint64  `json:"breaker_opens"`
	BreakerOpen       bool    `json:"breaker_open"`
}

// An Option configures [Handler].
type Option interface{ apply(*handler) }

type optionFunc func(*handler)

func (f optionFunc) apply(h *handler) { f(h) }

// WithTier adds a shared tier to the page under name (valid UTF-8): figures is called on
// every request, from the request's goroutine, and must be safe for
// concurrent use. Adapt a tier's own statistics to [stats.Tier] in it.
func WithTier(name string, figures func() stats.Tier) Option {
	return optionFunc(func(h *handler) {
		h.tiers = append(h.tiers, tierSource{name, figures})
	})
}

type tierSource struct {
	name    string
	figures func() stats.Tier
}

type handler struct {
	tiers []tierSource
}

// Handler returns the debug page's handler. It answers GET and HEAD on
// any path with the page as HTML, or as a JSON [Page] when the query has
// format=json or the Accept header names application/json; other methods
// get 405. It panics if an option is nil, a tier's name or func is
// missing, or a tier's name is not valid UTF-8. The handler is safe for concurrent use; each request takes
// one Stats snapshot per cache.
func Handler(opts ...Option) http.Handler {
	h := &handler{}
	for _, o := range opts {
		if o == nil {
			panic("memohttp: nil Option")
		}
		o.apply(h)
	}
	for _, t := range h.tiers {
		if t.name == "" || t.figures == nil {
			panic("memohttp: WithTier needs a name and a figures func")
		}
		if !utf8.ValidString(t.name) {
			panic(fmt.Sprintf("memohttp: WithTier(%q): the name must be valid UTF-8", t.name))
		}
	}
	h.tiers = slices.Clone(h.tiers)
	slices.SortStableFunc(h.tiers, func(a, b tierSource) int { return cmp.Compare(a.name, b.name) })
	return h
}

// collect returns the figures the page shows now: every cache that
// memo.Caches lists, and the tiers given.
func (h *handler) collect() Page {
	p := Page{Caches: []Cache{}, Tiers: []Tier{}}
	seen := map[string]bool{}
	for name, c := range memo.Caches() {
		p.Caches = append(p.Caches, cacheOf(shownName(name, seen), c.Policy().String(), c.Stats()))
	}
	for _, t := range h.tiers {
		p.Tiers = append(p.Tiers, tierOf(t.name, t.figures()))
	}
	return p
}

func tierOf(name string, s stats.Tier) Tier {
	return Tier{
		Name: name, Hits: s.Hits, Misses: s.Misses, HitRatio: s.HitRatio(),
		Fills: s.Fills, LocalRuns: s.LocalRuns, LeaseWaits: s.LeaseWaits,
		Errors: s.Errors, DecodeErrors: s.DecodeErrors,
		Invalidations: s.Invalidations, Resubscribes: s.Resubscribes, GenerationFlushes: s.GenerationFlushes,
		BreakerOpens: s.BreakerOpens, BreakerOpen: s.BreakerOpen,
	}
}

// shownName returns the name the page shows for the cache listed as
// name: name itself when it is valid UTF-8 and not in seen, else name
// with each invalid byte written as \xNN and, if that is in seen, "#2",
// "#3", ... appended. It adds the result to seen.
func shownName(name string, seen map[string]bool) string { return names.Shown(name, seen) }

func cacheOf(name, policy string, s stats.Stats) Cache {
	c := Cache{
		Name: name, Policy: policy,
		Size: s.CurrentSize, Capacity: s.MaxSize, TTLSeconds: s.TTL.Seconds(),
		Hits: s.Hits, Misses: s.Misses, HitRatio: s.HitRatio(),
		Coalesced: s.Coalesced, Evictions: s.Evictions, Expirations: s.Expirations,
		Executions: s.LocalRuns(), TierHits: s.TierHits, Failures: s.Failures,
		Led: s.Led, Abandoned: s.Abandoned, AbandonedLeaders: s.AbandonedLeaders,
		GetMisses: s.GetMisses, Uncacheable: s.Uncacheable,
		RefreshesStarted: s.RefreshesStarted, RefreshesSucceeded: s.RefreshesSucceeded,
		RefreshesFailed: s.RefreshesFailed, StaleServed: s.StaleServed, StaleRetries: s.StaleRetries,
		Rejected: s.Rejected,
		ExecTime: Timing{
			Avg: s.AvgTime().Seconds(), Min: s.MinTime.Seconds(), Max: s.MaxTime.Seconds(),
			P50: s.Quantile(0.5).Seconds(), P90: s.Quantile(0.9).Seconds(), P99: s.Quantile(0.99).Seconds(),
		},
		ExecBuckets: s.ExecTimes.Counts[:],
		BatchCalls:  s.BatchCalls, BatchKeys: s.BatchKeys.Sum,
		BatchCached: s.BatchCached, BatchJoined: s.BatchJoined,
	}
	if isBatch(c) {
		c.BatchKeyBuckets = s.BatchKeys.Counts[:]
	}
	return c
}

// isBatch reports whether c's figures are a batch function's: a batch
// counter above 0.
func isBatch(c Cache) bool { return c.BatchCalls > 0 || c.BatchCached > 0 || c.BatchJoined > 0 }

// perCall returns keys/calls with one decimal, "–" for no calls.
func perCall(keys, calls uint64) string {
	if calls == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(keys)/float64(calls))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "memohttp: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	p := h.collect()
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(p) // a write error is the client's: nothing to tell it
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, view{Page: p, Now: time.Now().UTC().Format(time.RFC3339)})
}

// wantsJSON reports whether r asks for JSON: ?format=json, or an Accept
// header that names application/json.
func wantsJSON(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "json"
	}
	for _, a := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(a, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

type view struct {
	Page
	Now string
}

// Tiered reports whether the page shows the Tier hits column: a tier is
// registered, or a cache has tier hits.
func (v view) Tiered() bool {
	if len(v.Tiers) > 0 {
		return true
	}
	for _, c := range v.Caches {
		if c.TierHits > 0 {
			return true
		}
	}
	return false
}

// Cols is the number of columns of the caches' table.
func (v view) Cols() int {
	if v.Tiered() {
		return 12
	}
	return 11
}

//go:embed page.html
var files embed.FS

var page = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"pct":      func(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) },
	"bar":      func(r float64) int { return int(r*100 + 0.5) },
	"duration": seconds,
	"isBatch":  isBatch,
	"perCall":  perCall,
}).ParseFS(files, "page.html"))

// seconds formats a time in seconds as a Duration with three significant
// digits: "1.23ms", "850µs"; "–" for 0.
func seconds(s float64) string {
	if s == 0 {
		return "–"
	}
	d := time.Duration(s * float64(time.Second))
	for _, u := range []time.Duration{time.Hour, time.Minute, time.Second, time.Millisecond, time.Microsecond} {
		if d >= u {
			return d.Round(u / 100).String()
		}
	}
	return d.String()
}
