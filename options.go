package memo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/policies"
)

// DefaultMaxSize is the capacity, in entries, of the cache that [Decorate]
// makes when no [WithMaxSize] is given.
const DefaultMaxSize = 1024

// An Option configures [New] or [Decorate]. Options are made by the With
// functions of this package; they are immutable values that may be reused
// and shared between goroutines. Invalid options are reported when they
// are used: Decorate and the typed constructors panic, New returns an
// error, each with a message that starts "memo:".
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the set of options before validation.
type config struct {
	maxSize    int
	maxSizeSet bool
	policy     policies.Kind
	policySet  bool
	ttl        time.Duration
	ttlSet     bool
	cache      *Cache
	cacheSet   bool
	key        func(args []any) any
	errorTTL   time.Duration
	errorSet   bool
	deref      bool
	name       string
	nameSet    bool
	symbol     string // the name Caches uses without WithName
	logger     *slog.Logger
	fresh      freshConfig // the freshness options (WithRefreshAfter and the others)
	tier       Tier
	errs       []error
}

// WithMaxSize bounds the cache to n entries (n >= 1), whatever their size
// in bytes. Required by [New]; [Decorate] defaults to [DefaultMaxSize].
func WithMaxSize(n int) Option {
	return optionFunc(func(c *config) { c.maxSize, c.maxSizeSet = n, true })
}

// WithPolicy chooses the eviction policy: [policies.WTinyLFU] (the
// default: adaptive W-TinyLFU, whose mean hit ratio on the README's 29-row
// trace matrix, 53.30 %, is above the mean of the best peer of each row,
// 52.92 %, and above every single peer's; it costs more per hit once the
// cache has been half full), [policies.LRU] or [policies.LFU] (the
// original's two policies, exactly as they were; LRU's hits are the
// cheapest). Use [policies.Parse] to read one from configuration.
func WithPolicy(k policies.Kind) Option {
	return optionFunc(func(c *config) { c.policy, c.policySet = k, true })
}

// WithTTL makes entries expire d after they were stored. d must be at
// least a millisecond: a shorter TTL is almost always a missing unit
// (WithTTL(60) is 60ns; write 60*time.Second), and is rejected. Without
// the option, entries never expire.
func WithTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ttl, c.ttlSet = d, true })
}

// WithCache makes [Decorate] use c instead of a cache of its own, so that
// several functions share one capacity and one set of statistics. Each
// function's entries stay apart: two functions never see each other's
// results. It cannot be combined with WithMaxSize, WithPolicy or WithTTL,
// which belong to the cache. c must be made by [New] or [MustNew] (or be a
// decorated function's, from [CacheOf]); nil or the zero Cache is rejected.
func WithCache(c *Cache) Option {
	return optionFunc(func(cf *config) { cf.cache, cf.cacheSet = c, true })
}

// WithKey replaces memo's key for functions made by [Decorate]: f receives the
// arguments (every context.Context left out) and returns the key, which
// memo then keys by [MakeHashable]'s rules. f must be deterministic and
// must return equal keys only for calls whose results may be shared. It runs
// on every call, hits included, from any goroutine, possibly concurrently.
// An execution that outlives its caller (see Decorate) gets copies of what
// memo's own key would take by value, not of what f reads through pointers:
// it calls f again when it ends, and if a caller changed what the key was
// made from, its result is neither stored nor given to waiting callers,
// which run the function again.
func WithKey(f func(args []any) any) Option {
	return optionFunc(func(c *config) {
		c.key = f
		if f == nil {
			c.errs = append(c.errs, errors.New("memo: WithKey(nil): pass a key function"))
		}
	})
}

// WithErrorTTL makes decorated functions also cache results whose
// trailing error is non-nil, for d (at least a millisecond, as for
// [WithTTL]). By default errors are returned to the callers of that
// execution and never stored. Decorating a function that has no trailing
// error result with this option panics.
func WithErrorTTL(d time.Duration) Option {
	return optionFunc(func(c *config) { c.errorTTL, c.errorSet = d, true })
}

// WithDeref makes decorated functions key pointer arguments by the values
// they point to (compared deeply, cycle-safe) instead of by identity. Use it
// for pointers to values the caller does not mutate while they are cached.
func WithDeref() Option {
	return optionFunc(func(c *config) { c.deref = true })
}

// WithName gives a decorated function, or a cache made by [New], a stable
// name: it is used in the keys of a shared tier ([WithTier]), in [Caches]
// and so in metrics and on the debug page (package memohttp). The name must
// not be empty and must be valid UTF-8 (a metric label or attribute can
// carry nothing else): otherwise [Decorate] and the typed functions panic
// with a "memo:" message, and [New] returns that error. It should be unique
// in a process and the same in every replica that shares results. Without it, [Caches] names a decorated
// function's cache by the function's symbol ("pkg.Func") and a cache made
// by New by the function that called New.
//
// With [WithTier], the name is the identity of the function's results
// across processes: every replica that decorates a function under one
// name must decorate the same function (the same code computing the same
// results), or replicas return each other's results, wrong ones. Within
// one process memo checks it: decorating a second function WithTier with
// the same tier and a name that a live tiered function already has panics
// (a collected function frees its name). A function decorated once per
// instance (a method value such as s.load) needs a name per instance; a
// method expression such as (*T).Load is one function, whose pointer
// receiver is keyed by identity, so its calls stay in the local cache.
func WithName(name string) Option {
	return optionFunc(func(c *config) { c.name, c.nameSet = name, true })
}

// WithLogger sends events worth a line to l. The events are:
//
//   - a shared tier's circuit breaker opening, and closing again;
//   - a value read from a shared tier that cannot be decoded (a miss);
//   - a call whose result is not stored because its key cannot be kept
//     (see Stats.Uncacheable);
//   - a re-entrant call: a function calling itself with the same arguments.
//
// The default is no logging at all. A hit never logs, and no event logs
// once per call on a path that runs for every call; an event that can
// repeat (an undecodable value) is counted in the statistics as well.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		c.logger = l
		if l == nil {
			c.errs = append(c.errs, errors.New("memo: WithLogger(nil): pass a logger, or leave the option out for no logging"))
		}
	})
}

// minTTL is the shortest TTL that WithTTL and WithErrorTTL accept. A
// shorter one is almost always a missing unit: WithTTL(60) is 60
// nanoseconds, not a minute.
const minTTL = time.Millisecond

// shortTTL is the error for a TTL below minTTL, naming the unit the caller
// most likely meant (a port from a language whose TTLs are seconds).
func shortTTL(opt string, d time.Duration) error {
	n := int64(d)
	return fmt.Errorf("memo: %s(%d) is %v, below the 1ms minimum: a time.Duration counts nanoseconds; did you mean %d*time.Second (or %d*time.Millisecond)?", opt, n, d, n, n)
}

// checkFunc validates the options that depend on the decorated function's
// type t: WithErrorTTL needs a trailing error result.
func checkFunc(t reflect.Type, c config) error {
	if c.errorSet && (t.NumOut() == 0 || t.Out(t.NumOut()-1) != errorType) {
		return fmt.Errorf("memo: WithErrorTTL on %v, which has no trailing error result: there is no error to cache; leave the option out", t)
	}
	return nil
}

// newConfig applies opts and validates them in one place. forDecorate
// tells which entry point is configuring.
func newConfig(opts []Option, forDecorate bool) (config, error) {
	var c config
	for _, o := range opts {
		if o == nil {
			c.errs = append(c.errs, errors.New("memo: nil Option: pass options made by memo's With functions (WithMaxSize, WithTTL, ...), or none"))
			continue
		}
		o.apply(&c)
	}
	errs := c.errs
	if c.maxSizeSet && c.maxSize < 1 {
		errs = append(errs, fmt.Errorf("memo: WithMaxSize(%d): the size must be at least 1", c.maxSize))
	}
	if !c.maxSizeSet && !forDecorate && !c.cacheSet {
		errs = append(errs, errors.New("memo: New needs WithMaxSize(n) with n >= 1"))
	}
	if c.nameSet && c.name == "" {
		errs = append(errs, errors.New("memo: WithName(\"\"): the name must not be empty"))
	}
	if c.nameSet && !utf8.ValidString(c.name) {
		errs = append(errs, fmt.Errorf("memo: WithName(%q): the name must be valid UTF-8 (metric labels and the debug page carry names as text)", c.name))
	}
	if c.tier != nil && !c.nameSet {
		errs = append(errs, errors.New("memo: WithTier needs WithName(name): the name keys the function's entries in the tier and must be the same in every replica"))
	}
	if c.tier != nil && !forDecorate {
		errs = append(errs, errors.New("memo: WithTier applies to Decorate and the typed functions, not New"))
	}
	if c.policySet && !c.policy.Valid() {
		errs = append(errs, fmt.Errorf("memo: WithPolicy(%d): unknown policy; use policies.LRU, policies.LFU or policies.WTinyLFU", int(c.policy)))
	}
	if c.ttlSet && c.ttl <= 0 {
		errs = append(errs, fmt.Errorf("memo: WithTTL(%v): the TTL must be positive; leave the option out for entries that never expire", c.ttl))
	}
	if c.ttlSet && c.ttl > 0 && c.ttl < minTTL {
		errs = append(errs, shortTTL("WithTTL", c.ttl))
	}
	if c.errorSet && c.errorTTL <= 0 {
		errs = append(errs, fmt.Errorf("memo: WithErrorTTL(%v): the TTL must be positive", c.errorTTL))
	}
	if c.errorSet && c.errorTTL > 0 && c.errorTTL < minTTL {
		errs = append(errs, shortTTL("WithErrorTTL", c.errorTTL))
	}
	if c.cacheSet {
		switch {
		case c.cache == nil:
			errs = append(errs, errors.New("memo: WithCache(nil): pass a cache made by New or MustNew"))
		case !c.cache.e.Made():
			errs = append(errs, errors.New("memo: WithCache(&Cache{}): the zero Cache is not usable; make the shared cache with New or MustNew"))
		}
		if c.maxSizeSet || c.policySet || c.ttlSet {
			errs = append(errs, errors.New("memo: WithCache cannot be combined with WithMaxSize, WithPolicy or WithTTL: configure the shared cache with New"))
		}
	}
	if !forDecorate {
		if c.cacheSet || c.key != nil || c.errorSet || c.deref {
			errs = append(errs, errors.New("memo: WithCache, WithKey, WithErrorTTL and WithDeref apply to Decorate, not New"))
		}
	}
	errs = append(errs, c.freshErrs(forDecorate)...)
	if !c.maxSizeSet {
		c.maxSize = DefaultMaxSize
	}
	if !c.policySet {
		c.policy = policies.WTinyLFU
	}
	return c, errors.Join(errs...)
}

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

// WithTier shares a [Decorate]d function's results through t, a store that
// every replica of a service reaches (see [Tier]). [WithName] is required
// with it: the name, with a fingerprint of the function's types, keys the
// function's entries in t, so one name must mean one function in every
// replica, or replicas read each other's results; Decorate panics when a
// live function of the process already has the name in t (see WithName). Calls whose keys hold something that only has
// meaning inside one process (a pointer keyed by identity, a func, a
// channel, a value past the key limit) stay in the local cache. Decorate
// panics if t cannot store the function's result types.
//
// Entries keep their TTL in both tiers: the tier gets the TTL a result was
// given (WithTTL, or WithTTLFunc's), and a local copy of a value read from
// the tier expires when the value does there (for results with a TTL).
// WithCacheIf and WithTTLFunc run once per execution, and both tiers follow
// their decision. While the tier bounds local staleness
// ([TierBinding.MaxLocalAge]), no local entry of the function outlives the
// bound, stale-if-error window included, and a refresh interval at or past
// it never refreshes; Decorate logs a Warn through WithLogger when the
// bound cuts either.
//
// In the statistics, a local miss answered by the tier counts as the
// execution of its local leader (TotalCalls, timed as the round trip), so
// that the identity of [stats.Stats] (Misses == TotalCalls -
// RefreshesStarted + Coalesced + GetMisses + Abandoned - AbandonedLeaders)
// still holds, and in TierHits: the
// function ran here [stats.Stats.LocalRuns] = TotalCalls - TierHits times
// (not to be confused with the tier's own LocalRuns, the loads that ran
// the function without the tier: Redis failing, its breaker open).
func WithTier(t Tier) Option {
	return optionFunc(func(c *config) {
		c.tier = t
		if t == nil {
			c.errs = append(c.errs, errors.New("memo: WithTier(nil): pass a tier, for example one made by redistier.New"))
		}
	})
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)
