package memo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"time"
	"unsafe"
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
		ttl = c.cache.ttl
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

// freshOpts is what a decorated function keeps of the options above; nil
// when none is given.
type freshOpts struct {
	refresh, stale time.Duration
	ttlFunc        func([]any) time.Duration
	cacheIf        func([]any) bool
	// entries says whether the function's entries need a freshX.
	entries bool
}

func (f *freshConfig) opts() *freshOpts {
	if f.refresh <= 0 && f.stale <= 0 && f.ttlFunc == nil && f.cacheIf == nil {
		return nil
	}
	return &freshOpts{
		refresh: f.refresh, stale: f.stale, ttlFunc: f.ttlFunc, cacheIf: f.cacheIf,
		entries: f.refresh > 0 || f.stale > 0 || f.ttlFunc != nil,
	}
}

// freshState is a cache's part of this: the expiry heap of its freshX
// entries and the jitter. It is guarded by Cache.mu.
type freshState struct {
	heap   []heapItem
	jitter float64
	rng    *rand.Rand
}

type heapItem struct {
	at int64 // fx.removeAt
	n  *node
}

func newFreshState(cfg config) *freshState {
	if cfg.fresh.jitter <= 0 {
		return nil
	}
	return &freshState{
		jitter: cfg.fresh.jitter,
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
}

// seedJitter makes the cache's jitter draw from a fixed seed (for tests).
func (c *Cache) seedJitter(seed uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fresh.rng = rand.New(rand.NewPCG(seed, seed))
}

// freshX is the extra of an entry with freshness data. Every field is set
// before the entry is published and never changes, but hidx (under
// Cache.mu) and the outage's retryAt and backoff (under the key's shard's
// mu).
type freshX struct {
	extra           // expires: the first of refreshAt and ttlEnd that is not 0
	refreshAt int64 // when a hit starts a refresh; 0: never
	ttlEnd    int64 // when the entry stops being a hit; 0: never
	removeAt  int64 // when it is removed: ttlEnd plus the stale window; 0: never
	hidx      int   // its place in the heap; -1 when not in it
	// retryAt is when the next retry of an outage may start (see
	// serveStale), 0 while the entry is in none; backoff is the outage's
	// current back-off.
	retryAt int64
	backoff time.Duration
}

// tagged reports whether n's extra is a freshX (see the top of this file).
// n has an extra.
func tagged(n *node) bool { return n.Value.x().expires&1 == 0 }

func freshOf(n *node) *freshX { return (*freshX)(unsafe.Pointer(n.Value.x())) }

// plainExpiry makes a plain entry's expiry time odd, without making it
// later.
func plainExpiry(t int64) int64 { return (t - 1) | 1 }

// freshEntry reports whether an entry stored with ttl by fl needs a freshX.
// c.mu is held.
func (c *Cache) freshEntry(ttl time.Duration, fl *call) bool {
	return (fl != nil && fl.fo != nil && fl.fo.entries) || (ttl > 0 && c.fresh != nil && c.fresh.jitter > 0)
}

// newFresh gives n a freshX for a result stored now with ttl by fl (see
// freshEntry). c.mu is held.
func (c *Cache) newFresh(n *node, ttl time.Duration, fl *call, now int64) *freshX {
	if ttl > 0 && c.fresh != nil && c.fresh.jitter > 0 {
		// Uniform in [ttl×(1−f), ttl]: subtract up to f of it.
		ttl -= time.Duration(c.fresh.rng.Float64() * c.fresh.jitter * float64(ttl))
	}
	fx := &freshX{hidx: -1}
	if ttl > 0 {
		fx.ttlEnd = addTime(now, ttl)
	}
	if fl != nil && fl.ageCap > 0 {
		// The tier's bound on a local copy's age ends its hits too, read
		// by the lookup itself rather than left to the expiry timer (which
		// may run late); a refresh due at or past it never starts.
		if end := addTime(now, fl.ageCap); fx.ttlEnd == 0 || fx.ttlEnd > end {
			fx.ttlEnd = end
		}
	}
	var fo *freshOpts
	if fl != nil {
		fo = fl.fo
	}
	if fo != nil && fo.refresh > 0 {
		fx.refreshAt = addTime(now, fo.refresh)
		if fx.ttlEnd != 0 && fx.refreshAt >= fx.ttlEnd { // a TTL from WithTTLFunc below the interval
			fx.refreshAt = 0
		}
	}
	fx.removeAt = fx.ttlEnd
	if fo != nil && fo.stale > 0 && fx.ttlEnd != 0 {
		fx.removeAt = addTime(fx.ttlEnd, fo.stale)
	}
	if fl != nil && fl.ageCap > 0 { // the tier's bound on a local copy's age, stale window included
		if end := addTime(now, fl.ageCap); fx.removeAt == 0 || fx.removeAt > end {
			fx.removeAt = end
		}
	}
	first := fx.ttlEnd
	if fx.refreshAt != 0 && (first == 0 || fx.refreshAt < first) {
		first = fx.refreshAt
	}
	if first != 0 {
		fx.expires = max(first&^1, 2) // even: tagged
	}
	setExt(n, &fx.extra)
	return fx
}

// addTime returns t+d, saturating: an overflow means "for ever".
func addTime(t int64, d time.Duration) int64 {
	if s := t + int64(d); s >= t {
		return s
	}
	return math.MaxInt64
}

// linkFresh puts n, just stored, in the expiry heap if it expires. c.mu is
// held.
func (c *Cache) linkFresh(n *node, fx *freshX) {
	if fx.removeAt == 0 {
		return
	}
	if c.fresh == nil {
		c.fresh = new(freshState)
	}
	fs := c.fresh
	fx.hidx = len(fs.heap)
	fs.heap = append(fs.heap, heapItem{fx.removeAt, n})
	fs.up(fx.hidx)
}

// unlinkFresh takes n out of the expiry heap. c.mu is held.
func (c *Cache) unlinkFresh(n *node) {
	fx := freshOf(n)
	i := fx.hidx
	if i < 0 {
		return
	}
	fx.hidx = -1
	fs := c.fresh
	last := len(fs.heap) - 1
	if i != last {
		fs.heap[i] = fs.heap[last]
		freshOf(fs.heap[i].n).hidx = i
	}
	fs.heap[last] = heapItem{}
	fs.heap = fs.heap[:last]
	if i != last {
		fs.down(i)
		fs.up(i)
	}
}

func (fs *freshState) up(i int) {
	h := fs.heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].at <= h[i].at {
			break
		}
		fs.swap(i, p)
		i = p
	}
}

func (fs *freshState) down(i int) {
	h := fs.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].at < h[l].at {
			m = r
		}
		if h[i].at <= h[m].at {
			return
		}
		fs.swap(i, m)
		i = m
	}
}

func (fs *freshState) swap(i, j int) {
	h := fs.heap
	h[i], h[j] = h[j], h[i]
	freshOf(h[i].n).hidx = i
	freshOf(h[j].n).hidx = j
}

// sweepFresh removes the freshX entries whose time is up and returns how
// many. c.mu is held.
func (c *Cache) sweepFresh(now int64) uint64 {
	if c.fresh == nil {
		return 0
	}
	var n uint64
	for len(c.fresh.heap) > 0 && c.fresh.heap[0].at <= now {
		c.removeNode(c.fresh.heap[0].n)
		n++
	}
	return n
}

// nextFresh returns when the next freshX entry is to be removed; 0: none.
// c.mu is held.
func (c *Cache) nextFresh() int64 {
	if c.fresh == nil || len(c.fresh.heap) == 0 {
		return 0
	}
	return c.fresh.heap[0].at
}

// alive reports whether n is still an entry to hit (for a freshX: its TTL
// has not ended, whether a refresh is due or not).
func alive(n *node, c *Cache) bool {
	if live(n, c) {
		return true
	}
	if !tagged(n) {
		return false
	}
	end := freshOf(n).ttlEnd
	return end == 0 || c.now() < end
}

// late handles a lookup of an entry that is not live: a freshX whose
// refresh is due (due: the caller takes the miss path, where join serves
// the entry and starts the refresh, and counts the call as a hit or, if the
// entry went meanwhile, a miss), a freshX in its stale window (kept, for
// the execution to fall back on), or an expired entry (removed). It is
// lock-free until it removes. Counting the due lookup in join rather than
// here keeps a caller whose entry is evicted or invalidated between the
// two a miss, as the execution it then runs is a miss's.
func (c *Cache) late(n *node) (due bool) {
	if tagged(n) {
		fx, now := freshOf(n), c.now()
		if fx.ttlEnd == 0 || now < fx.ttlEnd {
			return true
		}
		if now < fx.removeAt {
			return false
		}
	}
	c.expireNode(n)
	return false
}

// joinLate is join's case of an entry n that is not live. It returns late
// when a refresh of n is due (the hit serves n's value), with a new
// refresh registered in sh.refreshes (cl) when none is in flight for the
// key, nor an execution (the caller then starts it); stale when n is in an
// outage (see serveStale) and the caller is to get its stale value at once:
// a retry is in flight, or its back-off has not passed; and leading
// otherwise: the caller goes on as any miss, with retry set when it is to
// lead the outage's next retry. me and outer are the caller's, as join's;
// fo is the caller's function's options. sh.mu is held.
func (c *Cache) joinLate(sh *shard, n *node, k []byte, h uint64, me uintptr, outer *call, fo *freshOpts) (cl *call, r role, retry bool) {
	if !tagged(n) || fo == nil {
		return nil, leading, false
	}
	fx, now := freshOf(n), c.now()
	if fx.ttlEnd == 0 || now < fx.ttlEnd {
		if fx.refreshAt == 0 {
			return nil, leading, false
		}
		if sh.calls[string(k)] != nil {
			return nil, late, false // an execution in flight will store a newer result
		}
		if rf := sh.refreshes[string(k)]; rf != nil && now < rf.until {
			return nil, late, false // one refresh at a time
		}
		cl = &call{key: string(k), h: h, done: make(chan struct{}), base: n, until: addTime(now, fo.refreshLimit(fx))}
		if sh.refreshes == nil {
			sh.refreshes = make(map[string]*call)
		}
		sh.refreshes[cl.key] = cl
		return cl, late, false
	}
	if fx.retryAt == 0 || now >= fx.removeAt {
		return nil, leading, false // no outage, or its window has ended
	}
	if fl := sh.calls[string(k)]; fl != nil {
		if fl.g.Load() == me || inside(outer, fl) {
			return nil, leading, false // join makes it reentrant
		}
		return nil, stale, false // the retry in flight serves nobody
	}
	if now < fx.retryAt {
		return nil, stale, false
	}
	fx.backoff = min(2*fx.backoff, time.Duration(fx.removeAt-fx.ttlEnd))
	fx.retryAt = addTime(now, fx.backoff)
	return nil, leading, true
}

// refreshLimit returns how long a refresh of fx's entry may run: the
// longer of the entry's TTL and twice the refresh interval (see
// WithRefreshAfter).
func (fo *freshOpts) refreshLimit(fx *freshX) time.Duration {
	d := 2 * fo.refresh
	if fx.ttlEnd != 0 && fx.refreshAt != math.MaxInt64 {
		d = max(d, time.Duration(fx.ttlEnd-(fx.refreshAt-int64(fo.refresh))))
	}
	return d
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
func startRefresh[T any](w *wrapped, cl *call, ctx context.Context, run func(context.Context) T, detach func() (func(context.Context) T, func(string) bool), verify func(string) bool, tk *TierKey) {
	if detach != nil {
		run, verify = detach() // now, while the caller's memory is still the call's
	}
	cl.verify = verify // the refresh outlives its caller (see call.verify)
	if tk != nil {
		run = refreshTiered(w, cl, *tk, w.fo.refresh, run)
	}
	// A function without a context ignores rctx, but a tier's Refresh
	// does not: its lease must not outlive the refresh's time.
	rctx := cl.startRefresh(ctx, w.c)
	w.c.rec.RefreshStarted()
	go w.c.refresh(w, cl, func() any { return run(rctx) })
}

// startRefresh makes the context of cl, a refresh started by a caller with
// ctx (nil for a function without one): as call.start's, but its deadline
// is cl.until (on c's clock) when that comes first.
func (cl *call) startRefresh(ctx context.Context, c *Cache) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	dl := time.Now().Add(time.Duration(cl.until - c.now()))
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	cl.deadline = dl
	cl.ctx, cl.cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
	return context.WithValue(cl.ctx, flightKey{}, cl)
}

// refresh executes cl, a refresh (see startRefresh).
func (c *Cache) refresh(w *wrapped, cl *call, f func() any) {
	// A call for its own key from inside the refresh can tell (see join).
	cl.g.Store(curG())
	failed := true // until the function returns normally
	defer func() {
		if failed {
			c.rec.RefreshFailed()
			if c.logger != nil {
				c.logger.Warn("memo: a refresh failed; the old entry is kept until its TTL", slog.String("cache", c.name), slog.Any("error", failure(cl)))
			}
		} else {
			c.rec.RefreshSucceeded()
		}
	}()
	c.execute(cl, func(val any) (bool, bool, time.Duration) {
		fail, store, ttl := w.tierJudge(cl.tv)(val)
		failed = fail
		if fail {
			return true, false, 0 // the old entry stays until its TTL
		}
		if !store { // rejected: the old result is not to be served either
			c.dropFor(cl)
		}
		return false, store, ttl
	}, f)
}

// dropFor removes cl's entry, the one it refreshed, if it is still there,
// and detaches cl.
func (c *Cache) dropFor(cl *call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sh := c.shardOf(cl.h)
	sh.mu.Lock()
	sh.detach(cl)
	n := c.index.get(unsafeBytes(cl.key), cl.h)
	sh.mu.Unlock()
	if n != nil && n == cl.base {
		c.removeNode(n)
	}
}

// dropStale removes the entry of cl's key if it is past its TTL, kept for
// stale-if-error: cl, an execution (not a refresh) for that key, succeeded
// but its result is not stored (WithCacheIf or WithTTLFunc rejected it),
// so the function answers and the stale result is not to be served any
// more. It counts as an expiry.
func (c *Cache) dropStale(cl *call) {
	if cl.base != nil || cl.fo == nil || cl.fo.stale <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.index.get(unsafeBytes(cl.key), cl.h)
	if n == nil || n.Value.x() == nil || !tagged(n) || alive(n, c) {
		return
	}
	c.removeNode(n)
	c.rec.Expired(1)
}

// serveStale gives cl, an execution that failed, the result of its key's
// entry if that is kept for stale-if-error, its TTL has ended and its
// window has not, and reports whether it did. A refresh serves nobody, and
// is never given one.
//
// The entry is then in an outage: until its window ends or a result
// replaces it, callers get its stale value at once, without waiting, and
// one of them at a time runs the function again (a retry, counted in
// Stats.StaleRetries), no sooner than a back-off after the last failure or
// retry; the back-off starts at the refresh interval (1 s without
// WithRefreshAfter), doubles at each retry, and never exceeds the window
// (see join). A failure because every caller left (the execution's
// context cancelled) says nothing of the function and starts no outage.
func (c *Cache) serveStale(cl *call) bool {
	if cl.fo == nil || cl.fo.stale <= 0 || cl.base != nil {
		return false
	}
	n := c.index.get(unsafeBytes(cl.key), cl.h)
	if n == nil || n.Value.x() == nil || !tagged(n) {
		return false
	}
	fx := freshOf(n)
	now := c.now()
	if fx.removeAt <= fx.ttlEnd || now < fx.ttlEnd || now >= fx.removeAt {
		return false // not in its stale window (a refresh that failed before the TTL ended)
	}
	if c.logger != nil {
		msg, attr := "memo: an execution failed; serving the stale result", slog.Any("error", failure(cl))
		c.logger.Warn(msg, slog.String("cache", c.name), attr)
	}
	cl.val, cl.stale = n.Value.value(), true
	cl.panicked, cl.pval, cl.stack = false, nil, nil
	if cl.ctx == nil || !errors.Is(cl.ctx.Err(), context.Canceled) {
		sh := c.shardOf(cl.h)
		sh.mu.Lock()
		if fx.retryAt == 0 { // the outage starts
			fx.backoff = cl.fo.retryBase(fx)
		}
		fx.retryAt = addTime(now, fx.backoff)
		sh.mu.Unlock()
	}
	return true
}

// retryBase returns the first back-off of an outage of fx's entry: the
// refresh interval, or 1 s without one, at most the stale window.
func (fo *freshOpts) retryBase(fx *freshX) time.Duration {
	d := fo.refresh
	if d <= 0 {
		d = time.Second
	}
	return min(d, time.Duration(fx.removeAt-fx.ttlEnd))
}

// failure returns what made cl fail, for the log.
func failure(cl *call) any {
	if cl.panicked {
		return cl.pval
	}
	switch v := cl.val.(type) {
	case []reflect.Value:
		if len(v) > 0 {
			return v[len(v)-1].Interface()
		}
	case interface{ results() []any }:
		r := v.results()
		return r[len(r)-1]
	}
	return cl.val
}

// refreshes reports whether w's entries are refreshed ahead of their TTL
// (WithRefreshAfter): then a miss prepares a copy of its arguments for the
// refresh it may start (see startRefresh).
func (w *wrapped) refreshes() bool { return w.fo != nil && w.fo.refresh > 0 }

// decide applies WithCacheIf and WithTTLFunc to results that would be
// stored for ttl, and returns whether to store them and for how long.
func (fo *freshOpts) decide(c *Cache, val any, failed bool, ttl time.Duration) (store bool, d time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			if c.logger != nil {
				c.logger.Error("memo: WithCacheIf or WithTTLFunc panicked; the result is not stored", slog.String("cache", c.name), slog.Any("panic", r))
			}
			store, d = false, 0
			c.rec.Rejected(1)
		}
	}()
	var res []any
	if fo.cacheIf != nil {
		res = results(val)
		if !fo.cacheIf(res) {
			c.rec.Rejected(1)
			return false, 0
		}
	}
	if fo.ttlFunc != nil && !failed {
		if res == nil {
			res = results(val)
		}
		t := fo.ttlFunc(res)
		if t <= 0 {
			c.rec.Rejected(1)
			return false, 0
		}
		if ttl > 0 {
			t = min(t, ttl)
		}
		ttl = t
	}
	return true, ttl
}

// results returns a stored value as the function's results, in order:
// Decorate's []reflect.Value, a typed function's outcome (value, error), or
// a Func's one result.
func results(val any) []any {
	switch v := val.(type) {
	case []reflect.Value:
		out := make([]any, len(v))
		for i, r := range v {
			out[i] = r.Interface()
		}
		return out
	case interface{ results() []any }:
		return v.results()
	}
	return []any{val}
}

func (o outcome[R]) results() []any { return []any{o.val, o.err} }

// staleServed counts a caller that got cl's result, if that was stale.
func (c *Cache) staleServed(cl *call) {
	if cl.stale {
		c.rec.StaleServed(1)
	}
}
