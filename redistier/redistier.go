// Package redistier shares the results of memoized functions between the
// replicas of a service through Redis: a [memo.Tier] on go-redis v9.
//
//	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
//	tier, err := redistier.New(rdb)
//	...
//	defer tier.Close()
//	getUser := memo.Decorate(lookupUser, memo.WithName("users.lookup"), memo.WithTier(tier))
//
// MaxRetries: -1 turns go-redis's retries off: the tier makes one attempt
// per operation and runs the function locally when it fails, so a refused
// connection fails at once instead of retrying until the budget is spent.
// The name is the function's identity in Redis: every replica must
// decorate the same function under it (see [memo.WithName]).
//
// What a tiered function does on a call:
//
//   - A hit in the local cache (L1) never talks to Redis.
//   - On a local miss, the callers of one key in one process share one
//     leader (memo's coalescing), and only the leader talks to Redis: it
//     reads the value (L2). A hit is decoded, stored in L1 and returned.
//   - On an L2 miss, the leader takes a lease on the key (SET NX PX with a
//     random token), or, when another process holds it, waits for that
//     process's fill: woken by a pub/sub message, with a poll timed to the
//     lease's expiry as a fallback.
//   - The lease holder runs the function and writes the encoded results
//     with a Lua script that checks its token first (the fence): an
//     invalidation deletes the lease, so a fill that started before it
//     never writes back. Errors and panics are never written. A long
//     function keeps its lease alive with a heartbeat.
//
// Refresh-ahead ([memo.WithRefreshAfter]): a refresh is one across the
// replicas. Its script takes the value at the key if it was created (the
// envelope's created-at) after the refresh's cut-off, now minus the
// interval: another replica refreshed it, and no execution is needed.
// Otherwise it takes the lease even though an older value stands; the
// holder runs the function and overwrites the value through the same
// fenced fill, and a replica that finds the lease held waits for the fill
// as a load does. Stale-if-error ([memo.WithStaleIfError]) serves a
// replica's own stale L1 entry; nothing stale is written to Redis.
//
// Invalidation: [memo.InvalidateContext] deletes the value and the lease
// and publishes the key, and then memo drops the local entry; every
// replica drops its L1 copy on receipt. An invalidation that cannot reach
// Redis returns its error and is retried in the background until it lands
// (every 50 ms at first, doubling to 2 s); meanwhile the key is local-only
// in the process that invalidated (its loads run the function and neither
// read nor write Redis), so that process never serves the old value.
// [memo.Cache.Clear] of a tiered function moves the function to a new
// generation (a random number stored at one key that every value key
// contains), so no SCAN is needed. A generation key that is missing
// (evicted under allkeys-lru, or flushed) is never read as a default: the
// read starts a fresh random generation and publishes it as a Clear, so
// that everything misses rather than anything going stale. A load waits
// (within the budget) for the tier's first subscription before it reads
// Redis, so that what it stores in L1 was read while invalidations could
// reach it; a load that could not wait runs locally, and the first
// subscription flushes what such loads stored. A fill message only wakes
// waiters: it drops nothing. A replica whose subscription broke flushes
// its tiered L1 entries when it resubscribes.
//
// The staleness bound: once InvalidateContext returns nil, no other
// replica serves the old value later than the message's delivery or, when
// the message is lost without the subscription breaking, [WithMaxLocalAge]
// (default 30 s), which bounds the age of each L1 entry.
//
// TTLs: the Redis copy of a result gets the TTL memo gave it (WithTTL, or
// WithTTLFunc's), the tier's [WithTTL] for results without one; a value
// read from Redis carries its remaining TTL into L1, so that it expires
// there when it does in Redis.
//
// A lease holder whose execution fails (or whose result is not storable)
// wakes every waiter in every replica at once, and each runs the function
// on its own; one that panics or whose callers left releases the lease
// for a waiter to take over.
//
// Failure: every Redis operation runs under a budget ([WithBudget], default
// 50 ms), so a call that finds Redis down, slow, paused, out of memory or
// restarting runs the function locally in about the budget plus the
// function's own time; a circuit breaker (sony/gobreaker) stops paying
// the budget while Redis keeps failing, and probes it again after
// [WithBreakerTimeout]. The breaker counts Redis failing to answer over
// at least a budget, not requests that never reached it (this process
// stalled), and New warms the connection pool before the tier is ready.
// A value that does not decode (garbage, truncated,
// another schema or codec) is a miss and a counted error, never a panic or
// a wrong value.
//
// Keys (hash tags keep a value and its lease in one Redis Cluster slot):
//
//	<prefix>:<name>:<schema>:gen                 the generation
//	<prefix>:<name>:<schema>:<gen>:{<digest>}:v  a value
//	<prefix>:<name>:<schema>:<gen>:{<digest>}:l  its lease
//	<prefix>:events                              the pub/sub channel
package redistier

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/stats"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// Tier is a [memo.Tier] on Redis. Make one with [New] per process (one
// subscription serves every function bound to it), pass it to
// [memo.WithTier], and Close it when done. Its methods are safe for
// concurrent use. The zero Tier is not usable.
type Tier struct {
	rdb     redis.UniversalClient
	o       options
	channel string
	cb      *gobreaker.CircuitBreaker[struct{}]
	logger  *slog.Logger // the first bound function's logger, for the breaker

	mu      sync.Mutex
	funcs   map[string][]*binding // by base key (one name may be bound more than once)
	waiters map[string]*waiter    // by value key: woken on a fill, release or invalidation
	closed  bool

	pubsub  *redis.PubSub
	done    chan struct{} // closed when the subscriber has stopped
	stop    chan struct{} // closed by Close: stops the retry loop
	retried chan struct{} // closed when the retry loop has stopped
	retry   chan struct{} // a pending invalidation wakes the retry loop
	ready   chan struct{} // closed at the first subscription
	// warmed is closed when warmPool is done; stopWarm cuts it short.
	warmed   chan struct{}
	stopWarm context.CancelFunc
	// failMoments counts the moments, a budget apart, at which operations
	// failed since Redis last answered, and lastFail is when the last
	// counted one started (Unix nanoseconds): the breaker opens on
	// failures at several moments, not on many at one.
	failMoments, lastFail atomic.Int64
	// unsynced is set by a load that ran before the first subscription
	// (without waiting for it): its result may have missed an
	// invalidation, so the first subscription flushes.
	unsynced atomic.Bool

	st counters
}

// New returns a tier that stores in client, which must be made with
// ContextTimeoutEnabled: true (redis.Options, redis.ClusterOptions,
// redis.FailoverOptions, redis.UniversalOptions): without it go-redis
// ignores the context deadlines that bound each operation. client stays
// the caller's: Close does not close it. New subscribes to the tier's
// channel, warms the client's connection pool (up to 16 connections) and
// retries failed invalidations in goroutines of its own, which Close
// stops; it does not wait for Redis, which may be down (the tier then
// fails open): the first loads wait for the subscription and the warm
// pool, within the budget (see [Tier.Ready]).
func New(client redis.UniversalClient, opts ...Option) (*Tier, error) {
	if client == nil {
		return nil, errors.New("memo: redistier.New(nil): pass a go-redis client")
	}
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if !contextTimeouts(client) {
		return nil, errors.New("memo: redistier.New: the client ignores context deadlines: make it with ContextTimeoutEnabled: true, so that every Redis operation keeps to its budget")
	}
	t := &Tier{
		rdb:     client,
		o:       o,
		channel: o.prefix + ":events",
		funcs:   make(map[string][]*binding),
		waiters: make(map[string]*waiter),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		stop:    make(chan struct{}),
		retried: make(chan struct{}),
		retry:   make(chan struct{}, 1),
		logger:  o.logger,
	}
	t.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redistier",
		MaxRequests: 1,
		Timeout:     o.breakerTimeout,
		// N failures in a row, at N moments a budget apart: a stall of
		// this process (a GC, CPU starvation, a burst at start) fails
		// every operation in flight at once, and counts once.
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(o.breakerFailures) && t.failMoments.Load() >= int64(o.breakerFailures)
		},
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, redis.Nil) || isReply(err)
		},
		IsExcluded:    unsent,
		OnStateChange: t.breakerChanged,
	})
	t.pubsub = client.Subscribe(context.Background(), t.channel)
	wctx, cancel := context.WithTimeout(context.Background(), max(o.budget, time.Second))
	t.warmed, t.stopWarm = make(chan struct{}), cancel
	go func() {
		defer close(t.warmed)
		defer cancel()
		t.warmPool(wctx)
	}()
	go t.subscribe(t.warmed)
	go t.retryLoop()
	return t, nil
}

// retryLoop retries the invalidations (and Clears) that did not reach
// Redis, until each lands or the tier closes: every 50 ms at first,
// doubling up to 2 s while Redis keeps failing.
func (t *Tier) retryLoop() {
	defer close(t.retried)
	const first, most = 50 * time.Millisecond, 2 * time.Second
	backoff := first
	var tick <-chan time.Time
	for {
		select {
		case <-t.stop:
			return
		case <-t.retry:
		case <-tick:
		}
		tick = nil
		left := false
		for _, b := range t.bindings() {
			if b.retryPending(context.Background()) {
				left = true
			}
		}
		if !left {
			backoff = first
			continue
		}
		tick = time.After(backoff)
		backoff = min(2*backoff, most)
	}
}

// kickRetry wakes the retry loop.
func (t *Tier) kickRetry() {
	select {
	case t.retry <- struct{}{}:
	default:
	}
}

// warmPool opens connections ahead of the first loads, so that a replica
// that starts during a burst does not pay for dialling under the budget
// (where a slow dial would count as a failure and open the breaker): it
// pings Redis from as many goroutines as a burst of leaders may use,
// bounded by the client's pool, within ctx (a budget, at least a second;
// Close cancels it). Errors are ignored: loads find out.
func (t *Tier) warmPool(ctx context.Context) {
	n := 16
	if c, ok := t.rdb.(*redis.Client); ok && c.Options().PoolSize > 0 {
		n = min(n, c.Options().PoolSize)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _ = t.rdb.Ping(ctx).Err() })
	}
	wg.Wait()
}

// contextTimeouts reports whether client honours context deadlines.
func contextTimeouts(client redis.UniversalClient) bool {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true // another implementation: its own business
}

// isReply reports whether err is an error reply from a server that
// answered (OOM, a script error): Redis is up, so the breaker does not
// count it.
func isReply(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	return !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// unsent reports whether err is a deadline that passed before the request
// reached Redis: a write that timed out (on a socket Redis does not read
// from, writes succeed until its buffers fill: such a timeout means this
// process was stalled past the budget, by a GC, CPU starvation or a burst
// of work at start), or a context deadline met before any I/O (waiting
// for a connection of the pool). The call still runs locally, but the
// breaker does not count it: it counts Redis failing to answer (refused
// or dropped connections, reads that time out), not this process being
// slow to ask.
func unsent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op == "write" && op.Timeout()
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false // a read or dial timeout: Redis did not answer
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// Close stops the tier's subscription and its retries and waits for their
// goroutines. Calls of functions bound to a closed tier run locally
// without Redis, and loads waiting on another process's lease stop
// waiting and run locally. Invalidations still pending are dropped (the
// writing process calls locally from then on). Close flushes the bound
// functions' local entries, and detaches their loads in flight so that
// none stores its result: they were kept, or read, while invalidations
// and Clears from other processes could reach them, which they no longer
// can; from Close on each function is a local memo of what it computes
// itself.
// Close does not close the client. It is safe to call more than once.
func (t *Tier) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for k, w := range t.waiters {
		close(w.ch)
		delete(t.waiters, k)
	}
	t.mu.Unlock()
	close(t.stop)
	t.stopWarm()
	<-t.warmed
	<-t.retried
	err := t.pubsub.Close()
	<-t.done
	for _, b := range t.bindings() {
		b.gen.Store(nil)
		b.f.Flush()
	}
	return err
}

// bindings returns the bound functions, a snapshot taken under t.mu.
func (t *Tier) bindings() []*binding {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bindingsLocked()
}

// bindingsLocked is bindings with t.mu held.
func (t *Tier) bindingsLocked() []*binding {
	funcs := make([]*binding, 0, len(t.funcs))
	for _, bs := range t.funcs {
		funcs = append(funcs, bs...)
	}
	return funcs
}

func (t *Tier) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Bind implements [memo.Tier]: memo calls it once for each function
// decorated with WithTier(t). It fails when the codec cannot encode one of
// the result types exactly, or when the name holds a brace ({ or }),
// which Redis Cluster would read as a hash tag.
func (t *Tier) Bind(f memo.TierFunc) (memo.TierBinding, error) {
	if strings.ContainsAny(f.Name, "{}") {
		// A brace would make Redis Cluster hash a value and its lease by
		// a tag in the name rather than the digest, putting them in
		// different slots (every script would fail with CROSSSLOT).
		return nil, fmt.Errorf("memo: redistier: the name %q holds a brace, which Redis Cluster reads as a hash tag: a value and its lease would land in different slots; use a name without { and }", f.Name)
	}
	for _, rt := range f.Results {
		if err := checkType(t.o.codec, rt); err != nil {
			return nil, err
		}
	}
	// memo gives every function Drop and Flush; a TierFunc made by hand
	// (a test, another caller of Bind) may not, and a tier calls them.
	if f.Drop == nil {
		f.Drop = func([]byte) {}
	}
	if f.Flush == nil {
		f.Flush = func() {}
	}
	base := t.o.prefix + ":" + f.Name + ":" + hex.EncodeToString(f.Schema[:8])
	b := &binding{t: t, f: f, base: base, genKey: base + ":gen"}
	b.logger = f.Logger
	if b.logger == nil {
		b.logger = t.o.logger
	}
	t.mu.Lock()
	t.funcs[base] = append(t.funcs[base], b)
	if t.logger == nil {
		t.logger = b.logger
	}
	t.mu.Unlock()
	return b, nil
}

// unbind forgets b, a function that has been collected.
func (t *Tier) unbind(b *binding) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bs := slices.DeleteFunc(t.funcs[b.base], func(x *binding) bool { return x == b })
	if len(bs) == 0 {
		delete(t.funcs, b.base)
	} else {
		t.funcs[b.base] = bs
	}
}

// breakerChanged logs and counts the breaker's transitions.
func (t *Tier) breakerChanged(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		t.st.breakerOpened.Add(1)
	}
	if l := t.logger; l != nil {
		l.Warn("memo: redistier circuit breaker", "from", from.String(), "to", to.String())
	}
}

// errOpen is what an operation returns when the breaker is open.
var errOpen = errors.New("memo: redistier: circuit breaker open, Redis is skipped")

// do runs op under the breaker with one budget. It returns errOpen
// without calling op while the breaker is open.
func (t *Tier) do(ctx context.Context, op func(ctx context.Context) error) error {
	var opErr error
	_, err := t.cb.Execute(func() (struct{}, error) {
		octx, cancel := context.WithTimeout(ctx, t.o.budget)
		defer cancel()
		start := time.Now().UnixNano()
		opErr = op(octx)
		if opErr != nil && ctx.Err() != nil {
			// The caller left: not Redis's failure.
			return struct{}{}, nil
		}
		switch {
		case opErr == nil || errors.Is(opErr, redis.Nil) || isReply(opErr):
			t.failMoments.Store(0)
			t.lastFail.Store(0)
		case !unsent(opErr):
			// Operations that started within a budget of the last
			// counted failure fail for the same reason: one moment.
			if last := t.lastFail.Load(); (last == 0 || start-last >= int64(t.o.budget)) && t.lastFail.CompareAndSwap(last, start) {
				t.failMoments.Add(1)
			}
		}
		return struct{}{}, opErr
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		t.st.skipped.Add(1)
		return errOpen
	}
	if opErr != nil && !errors.Is(opErr, redis.Nil) {
		t.st.errors.Add(1)
	}
	return opErr
}

// A waiter is what the loads waiting on one value key in this process
// share: ch is closed at the key's next fill, release or invalidation,
// and failed is set first when the lease holder's execution ended without
// a value to share.
type waiter struct {
	ch     chan struct{}
	failed atomic.Bool
}

// waitChan returns the waiter of the value key vk.
func (t *Tier) waitChan(vk string) *waiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.waiters[vk]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		if t.closed {
			close(w.ch)
			return w
		}
		t.waiters[vk] = w
	}
	return w
}

// wake wakes the waiters of the value key vk; failed tells them that the
// holder's execution had no value to share.
func (t *Tier) wake(vk string, failed bool) {
	t.mu.Lock()
	w := t.waiters[vk]
	delete(t.waiters, vk)
	t.mu.Unlock()
	if w != nil {
		if failed {
			w.failed.Store(true)
		}
		close(w.ch)
	}
}

// dropWait forgets vk's waiter if nobody else waits: a waiter made by a
// load that got its value another way would stay in the map.
func (t *Tier) dropWait(vk string, w *waiter) {
	t.mu.Lock()
	if t.waiters[vk] == w {
		delete(t.waiters, vk)
	}
	t.mu.Unlock()
}

// Message kinds on the channel.
const (
	msgFill       = 'f' // a value was written: waiters read it
	msgRelease    = 'r' // a lease was given up without a value (its holder panicked or left): waiters retry
	msgFailed     = 'x' // the holder's execution ended without a value to share: waiters run on their own
	msgInvalidate = 'i' // a value was deleted: replicas drop it locally
	msgClear      = 'c' // a function moved to a new generation
)

// message builds a channel message: kind, the base key, the value key's
// generation-and-digest part (or the new generation), and for an
// invalidation the canonical argument bytes.
func message(kind byte, base, rest string, args []byte) string {
	b := make([]byte, 0, 1+2+len(base)+2+len(rest)+len(args))
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(base)))
	b = append(b, base...)
	b = binary.AppendUvarint(b, uint64(len(rest)))
	b = append(b, rest...)
	return string(append(b, args...))
}

func parseMessage(m string) (kind byte, base, rest, args string, ok bool) {
	if len(m) < 1 {
		return 0, "", "", "", false
	}
	kind, m = m[0], m[1:]
	n, k := binary.Uvarint([]byte(m[:min(len(m), binary.MaxVarintLen64)]))
	if k <= 0 || uint64(len(m)-k) < n {
		return 0, "", "", "", false
	}
	base, m = m[k:k+int(n)], m[k+int(n):]
	n, k = binary.Uvarint([]byte(m[:min(len(m), binary.MaxVarintLen64)]))
	if k <= 0 || uint64(len(m)-k) < n {
		return 0, "", "", "", false
	}
	return kind, base, m[k : k+int(n)], m[k+int(n):], true
}

// subscribe receives the tier's channel until Close. Each (re)subscription
// flushes the tiered local entries and forgets the generations, since
// messages may have been lost while the subscription was down.
func (t *Tier) subscribe(warmed <-chan struct{}) {
	defer close(t.done)
	if g := t.o.subscribeGate; g != nil {
		select {
		case <-g:
		case <-t.stop:
			return
		}
	}
	first := true
	for m := range t.pubsub.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if first {
				// Loads wait for this (see synced): entries stored before
				// it came from loads that could not wait, and only those
				// make a flush necessary. A flush detaches the loads in
				// flight, so an unconditional one dropped the first values
				// of a process that called at once (a cold fetch by two
				// replicas left neither with an L1 entry).
				first = false
				select { // a warm pool first (see warmPool)
				case <-warmed:
				case <-t.stop:
				}
				t.resync(t.unsynced.Load())
				close(t.ready)
			} else {
				t.st.resubscribes.Add(1)
				t.resync(true)
			}
		case *redis.Message:
			t.st.received.Add(1)
			t.handle(m.Payload)
		}
	}
}

// resync makes every bound function reread its generation, flushes their
// local entries when flush is set, and wakes every waiter to look again.
func (t *Tier) resync(flush bool) {
	t.mu.Lock()
	funcs := t.bindingsLocked()
	waiters := t.waiters
	t.waiters = make(map[string]*waiter)
	t.mu.Unlock()
	for _, b := range funcs {
		b.gen.Store(nil)
		if flush {
			b.f.Flush()
		}
	}
	for _, w := range waiters {
		close(w.ch)
	}
}

func (t *Tier) handle(payload string) {
	kind, base, rest, args, ok := parseMessage(payload)
	if !ok {
		return
	}
	t.mu.Lock()
	bs := t.funcs[base]
	t.mu.Unlock()
	switch kind {
	case msgFill, msgRelease:
		t.wake(base+":"+rest+":v", false)
	case msgFailed:
		t.wake(base+":"+rest+":v", true)
	case msgInvalidate:
		t.wake(base+":"+rest+":v", false)
		for _, b := range bs {
			b.f.Drop([]byte(args))
		}
	case msgClear:
		// A new generation (a Clear, or one started after the key was
		// lost): unless this process already moved to it, flush and
		// reread it from Redis at the next load. The message's generation
		// is not taken as current: a read may have seen a later one. (A
		// process whose generation read failed knows noGeneration, which
		// no message names: it flushes too.)
		for _, b := range bs {
			b.clears.Add(1)
			if k := b.known.Load(); k != nil && *k != rest {
				b.gen.Store(nil)
				t.st.generationFlushes.Add(1)
				b.f.Flush()
			}
		}
	}
	if t.o.handled != nil {
		t.o.handled(kind)
	}
}

// synced reports whether the tier's subscription is in place, waiting
// for the first one within one budget. A load starts only once it is: a
// value it stores in L1 was read while invalidations could reach it. When
// it reports false, the load runs locally, and the first subscription
// flushes what such loads stored. Waiting is set-up, not a Redis failure,
// so it does not count against the breaker; a wait that times out pings
// Redis under the breaker instead, so that a Redis that is down at start
// opens it (and later loads skip the wait).
func (t *Tier) synced(ctx context.Context) bool {
	select {
	case <-t.ready:
		return true
	default:
	}
	if t.o.waiting != nil {
		t.o.waiting("subscription")
	}
	if t.cb.State() != gobreaker.StateOpen {
		tm := time.NewTimer(t.o.budget)
		select {
		case <-t.ready:
			tm.Stop()
			return true
		case <-t.stop:
		case <-ctx.Done():
		case <-tm.C:
			_ = t.do(ctx, func(ctx context.Context) error { return t.rdb.Ping(ctx).Err() })
		}
		tm.Stop()
	}
	// Set before the local run starts: a subscription that comes after
	// this flushes; one that came before saw no flag, but then the local
	// run starts after it, and no invalidation can be missed.
	t.unsynced.Store(true)
	return false
}

// token returns a random lease token.
func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Stats are a tier's counters since New. Every field counts events in
// this process.
type Stats struct {
	Hits              uint64 // L2 hits: values read and decoded
	Misses            uint64 // L2 misses: no value at the key
	Fills             uint64 // values written by this process's lease holders
	Fenced            uint64 // fills refused because the lease was gone (an invalidation, or an expired lease)
	LeaseWaits        uint64 // loads that waited for another process's lease
	LocalRuns         uint64 // loads that ran the function without the tier (Redis failing, the breaker open, a wait too long)
	Errors            uint64 // Redis operations that failed (timeouts, connection errors, error replies)
	DecodeErrors      uint64 // values at a key that did not decode: treated as misses
	EncodeErrors      uint64 // results that did not encode, or were over the size limit: not written
	Skipped           uint64 // operations not tried because the breaker was open
	BreakerOpened     uint64 // times the breaker opened
	BreakerState      string // "closed", "half-open" or "open"
	Invalidations     uint64 // InvalidateContext calls that reached Redis
	Clears            uint64 // Clear calls that reached Redis
	Received          uint64 // messages received from the channel
	Resubscribes      uint64 // subscriptions restored after a break (each flushed the tiered local entries)
	GenerationFlushes uint64 // local flushes of a function because its generation changed (another replica's Clear, a lost generation key)
	FailedWakes       uint64 // loads that stopped waiting because the lease holder's execution had no value to share (they ran on their own)
	// InvalidationsPending counts invalidations that did not reach Redis
	// and were kept for retry; InvalidationsRetried those that landed on
	// a retry.
	InvalidationsPending, InvalidationsRetried uint64
	Refreshes                                  uint64 // refreshes (memo.WithRefreshAfter) that asked Redis
	RefreshHits                                uint64 // refreshes answered by a value another replica refreshed (no execution here)
}

type counters struct {
	hits, misses, fills, fenced, leaseWaits, localRuns, errors, decodeErrors,
	encodeErrors, skipped, breakerOpened, invalidations, clears, received, resubscribes, generationFlushes, failedWakes,
	invalidationsPending, invalidationsRetried, refreshes, refreshHits atomic.Uint64
}

// Stats returns a snapshot of the tier's counters.
func (t *Tier) Stats() Stats {
	s := &t.st
	return Stats{
		Hits: s.hits.Load(), Misses: s.misses.Load(), Fills: s.fills.Load(), Fenced: s.fenced.Load(),
		LeaseWaits: s.leaseWaits.Load(), LocalRuns: s.localRuns.Load(), Errors: s.errors.Load(),
		DecodeErrors: s.decodeErrors.Load(), EncodeErrors: s.encodeErrors.Load(), Skipped: s.skipped.Load(),
		BreakerOpened: s.breakerOpened.Load(), BreakerState: t.cb.State().String(),
		Invalidations: s.invalidations.Load(), Clears: s.clears.Load(), Received: s.received.Load(),
		Resubscribes: s.resubscribes.Load(), GenerationFlushes: s.generationFlushes.Load(), FailedWakes: s.failedWakes.Load(),
		InvalidationsPending: s.invalidationsPending.Load(), InvalidationsRetried: s.invalidationsRetried.Load(),
		Refreshes: s.refreshes.Load(), RefreshHits: s.refreshHits.Load(),
	}
}

// Figures returns the tier's counters in the shape the exporters and the
// debug page take ([stats.Tier]): pass tier.Figures to memoprom.WithTier,
// memootel.WithTier or memohttp.WithTier.
func (t *Tier) Figures() stats.Tier {
	s := t.Stats()
	return stats.Tier{
		Hits: s.Hits, Misses: s.Misses, Errors: s.Errors, DecodeErrors: s.DecodeErrors,
		LeaseWaits: s.LeaseWaits, BreakerOpens: s.BreakerOpened, BreakerOpen: s.BreakerState == gobreaker.StateOpen.String(),
		Fills: s.Fills, LocalRuns: s.LocalRuns, Invalidations: s.Invalidations,
		Resubscribes: s.Resubscribes, GenerationFlushes: s.GenerationFlushes,
	}
}

// Ready returns a channel closed once the tier's first subscription is in
// place: from then on, it receives other replicas' invalidations.
func (t *Tier) Ready() <-chan struct{} { return t.ready }

// sleepCtx waits d or until ctx ends or ch closes.
func sleepCtx(ctx context.Context, d time.Duration, ch <-chan struct{}) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ch:
	case <-ctx.Done():
	}
}
