package memo

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"
	"unicode/utf8"

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
	fresh      freshConfig // fresh.go's options
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
			c.errs = append(c.errs, errors.New("memo: nil Option"))
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
