package redistier

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// An Option configures [New].
type Option func(*options)

type options struct {
	prefix          string
	budget          time.Duration
	lease           time.Duration
	maxWait         time.Duration
	maxLocalAge     time.Duration
	ttl             time.Duration
	maxValue        int
	breakerFailures int
	breakerTimeout  time.Duration
	codec           Codec
	logger          *slog.Logger
	errs            []error
	handled         func(kind byte)   // tests: called after each channel message
	waiting         func(what string) // tests: called when a load waits ("subscription", "lease")
	subscribeGate   <-chan struct{}   // tests: the subscriber starts receiving once it is closed
}

func defaults() options {
	return options{
		prefix:          "memo",
		budget:          50 * time.Millisecond,
		lease:           5 * time.Second,
		maxWait:         10 * time.Second,
		maxLocalAge:     30 * time.Second,
		ttl:             time.Hour,
		maxValue:        1 << 20,
		breakerFailures: 5,
		breakerTimeout:  2 * time.Second,
		codec:           Binary,
	}
}

// maxDuration is where the duration options saturate: a century, which
// Redis's PX, timers and deadlines all take.
const maxDuration = 100 * 365 * 24 * time.Hour

func (o *options) validate() error {
	errs := o.errs
	for _, d := range []*time.Duration{&o.budget, &o.lease, &o.maxWait, &o.maxLocalAge, &o.ttl, &o.breakerTimeout} {
		*d = min(*d, maxDuration)
	}
	if o.prefix == "" || strings.ContainsAny(o.prefix, "{}") {
		errs = append(errs, fmt.Errorf("memo: redistier.WithPrefix(%q): the prefix must be non-empty and hold no braces (Redis Cluster hash tags)", o.prefix))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"WithBudget", o.budget}, {"WithLease", o.lease}, {"WithMaxWait", o.maxWait}, {"WithTTL", o.ttl}, {"WithBreakerTimeout", o.breakerTimeout}} {
		if d.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("memo: redistier.%s(%v): the duration must be at least a millisecond", d.name, d.v))
		}
	}
	if o.maxLocalAge < 0 {
		errs = append(errs, fmt.Errorf("memo: redistier.WithMaxLocalAge(%v): must not be negative (0: no bound)", o.maxLocalAge))
	}
	if o.maxValue < 64 {
		errs = append(errs, fmt.Errorf("memo: redistier.WithMaxValueBytes(%d): must be at least 64", o.maxValue))
	}
	if o.breakerFailures < 1 {
		errs = append(errs, fmt.Errorf("memo: redistier.WithBreakerFailures(%d): must be at least 1", o.breakerFailures))
	}
	if o.codec == nil {
		errs = append(errs, errors.New("memo: redistier.WithCodec(nil): pass a codec"))
	}
	return errors.Join(errs...)
}

// WithPrefix sets the first part of every key and of the channel name
// (default "memo"). Tiers with different prefixes share nothing.
func WithPrefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithBudget bounds each Redis operation (default 50 ms). A call that
// finds Redis failing pays at most about two budgets (a read, then the
// lease or the fill) before it runs the function locally, and nothing
// once the breaker is open.
func WithBudget(d time.Duration) Option { return func(o *options) { o.budget = d } }

// WithLease sets the lease time (default 5 s): how long other processes
// wait for a holder that died before one of them takes over. A live holder
// renews its lease every third of it, so functions may run longer.
func WithLease(d time.Duration) Option { return func(o *options) { o.lease = d } }

// WithMaxWait bounds how long a call waits for another process's lease
// (default 10 s) before it runs the function locally, without writing.
func WithMaxWait(d time.Duration) Option { return func(o *options) { o.maxWait = d } }

// WithMaxLocalAge bounds the age of each local (L1) entry of a tiered
// function (default 30 s; 0: no bound; durations saturate at a century).
// It is the longest a replica can serve a value that another replica
// invalidated when the invalidation's message was lost and the
// subscription did not visibly break. Each entry is removed once it is
// that old, whatever its own TTL, and the rest of L1 keeps its hits; for
// a result without a TTL of its own the cache's expiry timer removes the
// entry (an eighth of the bound early, at most a second, so that a late
// timer stays within it), and a hit reads no clock. It caps
// memo.WithStaleIfError (no entry, stale or not, is kept past it) and
// refresh-ahead (an interval at or past it never refreshes: the entry is
// read again from Redis instead); memo logs a Warn at decoration when it
// does.
func WithMaxLocalAge(d time.Duration) Option { return func(o *options) { o.maxLocalAge = d } }

// WithTTL sets the time values live in Redis (default 1 h) for functions
// without a TTL of their own; a function's WithTTL applies to its Redis
// values too. Every key has a TTL, so volatile-* eviction policies work.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithMaxValueBytes bounds an encoded value (default 1 MiB): larger results
// are not written, and larger values read are treated as undecodable.
func WithMaxValueBytes(n int) Option { return func(o *options) { o.maxValue = n } }

// WithBreakerFailures sets how many consecutive failed operations open the
// circuit breaker (default 5): failures at that many moments a budget
// apart (operations that started within a budget of each other and failed
// count once), not counting requests that never reached Redis (see the
// package documentation).
func WithBreakerFailures(n int) Option { return func(o *options) { o.breakerFailures = n } }

// WithBreakerTimeout sets how long the breaker stays open before one call
// probes Redis again (default 2 s).
func WithBreakerTimeout(d time.Duration) Option { return func(o *options) { o.breakerTimeout = d } }

// WithCodec replaces the codec of results (default [Binary], memo's own;
// [JSON], [Msgpack] and [Gob] are for interoperability).
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithLogger logs the breaker's transitions and undecodable values to l
// for functions without a memo.WithLogger of their own.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		o.logger = l
		if l == nil {
			o.errs = append(o.errs, errors.New("memo: redistier.WithLogger(nil): pass a logger"))
		}
	}
}
