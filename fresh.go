package memo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memokit/memo/internal/engine"
)

// Freshness and result policies: refresh-ahead (WithRefreshAfter),
// stale-if-error (WithStaleIfError), per-result TTLs (WithTTLFunc), a store
// predicate (WithCacheIf) and TTL jitter (WithTTLJitter).
//
// Entries stored by a function with WithRefreshAfter, WithStaleIfError or
// WithTTLFunc, or by a cache with WithTTLJitter, carry a freshX instead of
// the plain extra: when they were stored, when they expire, when a refresh
// is due and when they are finally removed. They are told apart from plain
// entries without a lock by the low bit of extra.expires (even for a
// freshX, odd for the others), and their hit path is the plain one: a
// freshX's expires is the first moment anything must happen (a refresh is
// due or the TTL ends), so until then a hit costs what any hit costs, and
// after it the lookup takes the slow path that handles it (late). Because
// their expiry times are arbitrary (jittered, per result), they expire
// through a min-heap rather than the per-TTL FIFO lists.

// WithRefreshAfter makes a memoized function ([Decorate], [Func] and the other typed
// paths) refresh its entries ahead of
// their expiry (d >= 1ms; with WithTTL, d must be below the TTL). A hit on
// an entry stored more than d ago returns the stored result at once and
// starts one background re-execution for that key, unless one is already
// running for it or an execution is in flight. The refresh runs in its own
// goroutine, detached from the caller: it keeps the caller's context values
// and deadline but not its cancellation, and works on its own copy of the
// arguments (slices, maps and arrays are copied; pointers stay as they
// are: where the key reads through one, as Decorate says, a refresh whose
// arguments changed stores nothing and counts as failed).
//
// Nobody waits for a refresh: callers before the TTL ends get the stored
// result, and callers after it run (or join) a fresh execution, as any
// miss, while the refresh goes on. A refresh is bounded: its context's
// deadline is the caller's, or, when that is later or absent, the longer
// of the entry's TTL and 2×d after the refresh starts (2×d for entries
// without a TTL); once that deadline has passed, the refresh no longer
// keeps another from starting for its key, even if its function, ignoring
// the context, has not returned. Its result replaces the entry (with a new
// TTL) only if the entry it refreshed is still the key's: nothing newer
// was stored, and the key was not invalidated, evicted or cleared since.
// When it fails (an error, a panic, or its deadline) the old entry is kept
// until its TTL ends, and a later hit tries again. A result that
// [WithCacheIf] or [WithTTLFunc] rejects removes the old entry.
//
// Refreshes are counted in Stats.RefreshesStarted, RefreshesSucceeded and
// RefreshesFailed; each is also an execution (TotalCalls), but not a miss.
// With [WithTier], a refresh goes through the tier's Refresh
// ([TierBinding]), under the refresh's context (so a refresh that hangs
// gives the key's lease up at its deadline): it takes a value another
// replica refreshed less than d ago instead of executing, and otherwise
// executes under the key's cross-process lease and writes its result
// through to the tier, so one refresh runs across the replicas.
func WithRefreshAfter(d time.Duration) Option {
	return optionFunc(func(c *config) { c.fresh.refresh, c.fresh.refreshSet = d, true })
}

// WithStaleIfError keeps a memoized function's entries up to d longer
// than their TTL (d >= 1ms; it needs WithTTL or WithTTLFunc), as HTTP's
// stale-if-error (RFC 5861). Past its TTL an entry is never a hit: a call
// runs the function as for any miss. But when that execution fails (returns
// a non-nil error or panics), every caller of that execution gets the stale
// result instead, with no error and no panic, and Stats.StaleServed counts
// them; the error is not stored even with [WithErrorTTL]. When the
// execution succeeds its result replaces the entry, and no caller gets the
// stale one.
//
// A failure starts an outage of the key, which lasts until a result
// replaces the entry or the window ends: callers get the stale result at
// once, without running the function or waiting (they count as Coalesced
// misses, and in StaleServed), except one caller at a time, no sooner than
// a back-off after the last failure and the last retry, which runs the
// function again (a retry, counted in Stats.StaleRetries) and, if it fails
// too, gets the stale result as well. The back-off starts at the refresh
// interval of [WithRefreshAfter], or 1 s without it, doubles at each
// retry, and is never longer than d. A retry that succeeds ends the
// outage: its result replaces the entry, or, if WithCacheIf or WithTTLFunc
// rejects it, the stale entry is removed. A failure because every caller
// left (the execution cancelled) starts no outage.
//
// An entry kept for this counts in [Cache.Len] and against the maximum
// size until its window ends. With [WithTier], the stale result is the
// local cache's own: nothing stale is written to the tier, and a process
// without a stale copy gets the failure.
func WithStaleIfError(d time.Duration) Option {
	return optionFunc(func(c *config) { c.fresh.stale, c.fresh.staleSet = d, true })
}

// WithTTLFunc decides the TTL of each result of a memoized function from
// the results themselves (for example an HTTP response's max-age). f gets
// the function's results in order (the trailing error included) and returns
// how long to keep them; 0 or less means do not store them (they are still
// returned to every caller of that execution, and Stats.Rejected counts
// them). With [WithTTL] as well, WithTTL's is the upper bound. f is called
// once per successful execution, in the goroutine that ran it, so possibly
// concurrently for different keys; results with a non-nil error follow
// [WithErrorTTL] instead. A panic in f counts as a rejection.
func WithTTLFunc(f func(results []any) time.Duration) Option {
	return optionFunc(func(c *config) { c.fresh.ttlFunc, c.fresh.ttlFuncSet = f, true })
}

// WithCacheIf stores a memoized function's results only when pred
// returns true for them (to leave out an empty result or a partial page,
// say). pred gets the results in order (the trailing error included) once
// per execution whose results would otherwise be stored (errors only with
// [WithErrorTTL]), in the goroutine that ran it, so possibly concurrently
// for different keys. Results it rejects are
// still returned to every caller of that execution; Stats.Rejected counts
// them. A panic in pred counts as a rejection.
func WithCacheIf(pred func(results []any) bool) Option {
	return optionFunc(func(c *config) { c.fresh.cacheIf, c.fresh.cacheIfSet = pred, true })
}

// WithTTLJitter spreads expiry times: each entry's TTL is drawn uniformly
// from [TTL×(1−fraction), TTL], 0 < fraction < 1, so that entries stored
// together (a fleet started together) do not expire together. It applies to
// every TTL the cache gives (WithTTL's, WithErrorTTL's, WithTTLFunc's) and
// needs one of them. It belongs to the cache: pass it to [New] for a cache
// shared through [WithCache]. The random source is the cache's own, seeded
// from the runtime's random generator.
func WithTTLJitter(fraction float64) Option {
	return optionFunc(func(c *config) { c.fresh.jitter, c.fresh.jitterSet = fraction, true })
}

// freshConfig holds the options above before validation.
type freshConfig struct {
	refresh, stale         time.Duration
	refreshSet, staleSet   bool
	ttlFunc                func([]any) time.Duration
	cacheIf                func([]any) bool
	ttlFuncSet, cacheIfSet bool
	jitter                 float64
	jitterSet              bool
}

// freshErrs validates the options above; c holds every option.
func (c *config) freshErrs(forDecorate bool) []error {
	f := &c.fresh
	var errs []error
	ttl := c.ttl
	if c.cache != nil {
		ttl = c.cache.e.Ttl
	}
	hasTTL := ttl > 0 || f.ttlFunc != nil
	if f.refreshSet {
		switch {
		case f.refresh < time.Millisecond:
			errs = append(errs, fmt.Errorf("memo: WithRefreshAfter(%v): the interval must be at least a millisecond (a missing unit? write 30*time.Second)", f.refresh))
		case ttl > 0 && f.refresh >= ttl:
			errs = append(errs, fmt.Errorf("memo: WithRefreshAfter(%v) must be below the TTL (%v): an entry expires before its refresh is due", f.refresh, ttl))
		}
	}
	if f.staleSet {
		switch {
		case f.stale < time.Millisecond:
			errs = append(errs, fmt.Errorf("memo: WithStaleIfError(%v): the window must be at least a millisecond (a missing unit? write 5*time.Minute)", f.stale))
		case !hasTTL:
			errs = append(errs, errors.New("memo: WithStaleIfError needs WithTTL or WithTTLFunc: entries that never expire are never stale"))
		}
	}
	if f.ttlFuncSet && f.ttlFunc == nil {
		errs = append(errs, errors.New("memo: WithTTLFunc(nil): pass a function that returns each result's TTL"))
	}
	if f.cacheIfSet && f.cacheIf == nil {
		errs = append(errs, errors.New("memo: WithCacheIf(nil): pass a predicate that says which results to store"))
	}
	if f.jitterSet {
		switch {
		case !(f.jitter > 0 && f.jitter < 1): // NaN too
			errs = append(errs, fmt.Errorf("memo: WithTTLJitter(%v): the fraction must be above 0 and below 1, as 0.1 for TTLs from 90%% to 100%%", f.jitter))
		case c.cacheSet:
			errs = append(errs, errors.New("memo: WithTTLJitter belongs to the shared cache: pass it to New with WithTTL, not to Decorate with WithCache"))
		case !hasTTL && !c.errorSet:
			errs = append(errs, errors.New("memo: WithTTLJitter needs a TTL to spread: add WithTTL (or, for Decorate, WithTTLFunc or WithErrorTTL)"))
		}
	}
	if !forDecorate && (f.refreshSet || f.staleSet || f.ttlFuncSet || f.cacheIfSet) {
		errs = append(errs, errors.New("memo: WithRefreshAfter, WithStaleIfError, WithTTLFunc and WithCacheIf apply to Decorate, not New"))
	}
	return errs
}

func (f *freshConfig) opts() *engine.FreshOpts {
	if f.refresh <= 0 && f.stale <= 0 && f.ttlFunc == nil && f.cacheIf == nil {
		return nil
	}
	return &engine.FreshOpts{
		Refresh: f.refresh, Stale: f.stale, TtlFunc: f.ttlFunc, CacheIf: f.cacheIf,
		Entries: f.refresh > 0 || f.stale > 0 || f.ttlFunc != nil,
	}
}

// startRefresh runs cl, a refresh of w's entry, in a goroutine of its own,
// with a private copy of the arguments (detach makes it, with the copiers
// of detach.go; nil when run holds nothing a caller can change) and a
// context of its own (call.startRefresh): it keeps ctx's values and
// deadline but not its cancellation, ends at cl.until at the latest, and
// carries cl, so that a call for cl's key made with it can tell. It runs
// through execute, as any execution. tk, when not nil, is the key's tier
// key (WithTier): the refresh then goes through the tier's Refresh (see
// refreshTiered), under that context, so that a refresh that hangs gives
// the key's lease up when its time is up.
func startRefresh[T any](w *wrapped, cl *engine.Call, ctx context.Context, run func(context.Context) T, detach func() (func(context.Context) T, func(string) bool), verify func(string) bool, tk *TierKey) {
	if detach != nil {
		run, verify = detach() // now, while the caller's memory is still the call's
	}
	cl.Verify = verify  // the refresh outlives its caller (see call.verify)
	var tv *tierVerdict // the decision the tier's path takes (see viaTier)
	if tk != nil {
		tv = new(tierVerdict)
		run = refreshTiered(w, cl, tv, *tk, w.fo.Refresh, run)
	}
	// A function without a context ignores rctx, but a tier's Refresh
	// does not: its lease must not outlive the refresh's time.
	rctx := cl.StartRefresh(ctx, &w.c.e)
	w.c.e.Rec.RefreshStarted()
	go w.c.e.Refresh(cl, w.tierJudge(tv), func() any { return run(rctx) })
}

// refreshes reports whether w's entries are refreshed ahead of their TTL
// (WithRefreshAfter): then a miss prepares a copy of its arguments for the
// refresh it may start (see startRefresh).
func (w *wrapped) refreshes() bool { return w.fo != nil && w.fo.Refresh > 0 }

func (o outcome[R]) Results() []any { return []any{o.val, o.err} }
