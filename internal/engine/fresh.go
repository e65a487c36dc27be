package engine

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/goid"
)

// FreshOpts is what a decorated function keeps of the options above; nil
// when none is given.
type FreshOpts struct {
	Refresh, Stale time.Duration
	TtlFunc        func([]any) time.Duration
	CacheIf        func([]any) bool
	// Entries says whether the function's entries need a freshX.
	Entries bool
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
	n  *Node
}

func NewFreshState(jitter float64) *freshState {
	if jitter <= 0 {
		return nil
	}
	return &freshState{
		jitter: jitter,
		rng:    rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
}

// seedJitter makes the cache's jitter draw from a fixed seed (for tests).
func (c *Core) seedJitter(seed uint64) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
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
func tagged(n *Node) bool { return n.Value.x().expires&1 == 0 }

func freshOf(n *Node) *freshX { return (*freshX)(unsafe.Pointer(n.Value.x())) }

// plainExpiry makes a plain entry's expiry time odd, without making it
// later.
func plainExpiry(t int64) int64 { return (t - 1) | 1 }

// freshEntry reports whether an entry stored with ttl by fl needs a freshX.
// c.mu is held.
func (c *Core) freshEntry(ttl time.Duration, fl *Call) bool {
	return (fl != nil && fl.Fo != nil && fl.Fo.Entries) || (ttl > 0 && c.fresh != nil && c.fresh.jitter > 0)
}

// newFresh gives n a freshX for a result stored now with ttl by fl (see
// freshEntry). c.mu is held.
func (c *Core) newFresh(n *Node, ttl time.Duration, fl *Call, now int64) *freshX {
	if ttl > 0 && c.fresh != nil && c.fresh.jitter > 0 {
		// Uniform in [ttl×(1−f), ttl]: subtract up to f of it.
		ttl -= time.Duration(c.fresh.rng.Float64() * c.fresh.jitter * float64(ttl))
	}
	fx := &freshX{hidx: -1}
	if ttl > 0 {
		fx.ttlEnd = addTime(now, ttl)
	}
	if fl != nil && fl.AgeCap > 0 {
		// The tier's bound on a local copy's age ends its hits too, read
		// by the lookup itself rather than left to the expiry timer (which
		// may run late); a refresh due at or past it never starts.
		if end := addTime(now, fl.AgeCap); fx.ttlEnd == 0 || fx.ttlEnd > end {
			fx.ttlEnd = end
		}
	}
	var fo *FreshOpts
	if fl != nil {
		fo = fl.Fo
	}
	if fo != nil && fo.Refresh > 0 {
		fx.refreshAt = addTime(now, fo.Refresh)
		if fx.ttlEnd != 0 && fx.refreshAt >= fx.ttlEnd { // a TTL from WithTTLFunc below the interval
			fx.refreshAt = 0
		}
	}
	fx.removeAt = fx.ttlEnd
	if fo != nil && fo.Stale > 0 && fx.ttlEnd != 0 {
		fx.removeAt = addTime(fx.ttlEnd, fo.Stale)
	}
	if fl != nil && fl.AgeCap > 0 { // the tier's bound on a local copy's age, stale window included
		if end := addTime(now, fl.AgeCap); fx.removeAt == 0 || fx.removeAt > end {
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
func (c *Core) linkFresh(n *Node, fx *freshX) {
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
func (c *Core) unlinkFresh(n *Node) {
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
func (c *Core) sweepFresh(now int64) uint64 {
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
func (c *Core) nextFresh() int64 {
	if c.fresh == nil || len(c.fresh.heap) == 0 {
		return 0
	}
	return c.fresh.heap[0].at
}

// alive reports whether n is still an entry to hit (for a freshX: its TTL
// has not ended, whether a refresh is due or not).
func alive(n *Node, c *Core) bool {
	if Live(n, c) {
		return true
	}
	if !tagged(n) {
		return false
	}
	end := freshOf(n).ttlEnd
	return end == 0 || c.Now() < end
}

// late handles a lookup of an entry that is not live: a freshX whose
// refresh is due (due: the caller takes the miss path, where join serves
// the entry and starts the refresh, and counts the call as a hit or, if the
// entry went meanwhile, a miss), a freshX in its stale window (kept, for
// the execution to fall back on), or an expired entry (removed). It is
// lock-free until it removes. Counting the due lookup in join rather than
// here keeps a caller whose entry is evicted or invalidated between the
// two a miss, as the execution it then runs is a miss's.
func (c *Core) late(n *Node) (due bool) {
	if tagged(n) {
		fx, now := freshOf(n), c.Now()
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
func (c *Core) joinLate(sh *shard, n *Node, k []byte, h uint64, me uintptr, outer *Call, fo *FreshOpts) (cl *Call, r Role, retry bool) {
	if !tagged(n) || fo == nil {
		return nil, Leading, false
	}
	fx, now := freshOf(n), c.Now()
	if fx.ttlEnd == 0 || now < fx.ttlEnd {
		if fx.refreshAt == 0 {
			return nil, Leading, false
		}
		if sh.calls[string(k)] != nil {
			return nil, Late, false // an execution in flight will store a newer result
		}
		if rf := sh.refreshes[string(k)]; rf != nil && now < rf.until {
			return nil, Late, false // one refresh at a time
		}
		cl = &Call{Key: string(k), H: h, Done: make(chan struct{}), base: n, until: addTime(now, fo.refreshLimit(fx))}
		if sh.refreshes == nil {
			sh.refreshes = make(map[string]*Call)
		}
		sh.refreshes[cl.Key] = cl
		return cl, Late, false
	}
	if fx.retryAt == 0 || now >= fx.removeAt {
		return nil, Leading, false // no outage, or its window has ended
	}
	if fl := sh.calls[string(k)]; fl != nil {
		if fl.g.Load() == me || inside(outer, fl) {
			return nil, Leading, false // join makes it reentrant
		}
		return nil, Stale, false // the retry in flight serves nobody
	}
	if now < fx.retryAt {
		return nil, Stale, false
	}
	fx.backoff = min(2*fx.backoff, time.Duration(fx.removeAt-fx.ttlEnd))
	fx.retryAt = addTime(now, fx.backoff)
	return nil, Leading, true
}

// refreshLimit returns how long a refresh of fx's entry may run: the
// longer of the entry's TTL and twice the refresh interval (see
// WithRefreshAfter).
func (fo *FreshOpts) refreshLimit(fx *freshX) time.Duration {
	d := 2 * fo.Refresh
	if fx.ttlEnd != 0 && fx.refreshAt != math.MaxInt64 {
		d = max(d, time.Duration(fx.ttlEnd-(fx.refreshAt-int64(fo.Refresh))))
	}
	return d
}

// StartRefresh makes the context of cl, a refresh started by a caller with
// ctx (nil for a function without one): as call.start's, but its deadline
// is cl.until (on c's clock) when that comes first.
func (cl *Call) StartRefresh(ctx context.Context, c *Core) context.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	dl := time.Now().Add(time.Duration(cl.until - c.Now()))
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	cl.deadline = dl
	cl.ctx, cl.cancel = context.WithDeadline(context.WithoutCancel(ctx), dl)
	return context.WithValue(cl.ctx, FlightKey{}, cl)
}

// Refresh executes cl, a refresh (see startRefresh); judge decides on its
// results as for any execution.
func (c *Core) Refresh(cl *Call, judge Verdict, f func() any) {
	// A call for its own key from inside the refresh can tell (see join).
	cl.g.Store(goid.Current())
	failed := true // until the function returns normally
	defer func() {
		if failed {
			c.Rec.RefreshFailed()
			if c.Logger != nil {
				c.Logger.Warn("memo: a refresh failed; the old entry is kept until its TTL", slog.String("cache", c.Name), slog.Any("error", failure(cl)))
			}
		} else {
			c.Rec.RefreshSucceeded()
		}
	}()
	c.Execute(cl, func(val any) (bool, bool, time.Duration) {
		fail, store, ttl := judge(val)
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
func (c *Core) dropFor(cl *Call) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	sh := c.shardOf(cl.H)
	sh.mu.Lock()
	sh.detach(cl)
	n := c.Index.Get(UnsafeBytes(cl.Key), cl.H)
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
func (c *Core) dropStale(cl *Call) {
	if cl.base != nil || cl.Fo == nil || cl.Fo.Stale <= 0 {
		return
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	n := c.Index.Get(UnsafeBytes(cl.Key), cl.H)
	if n == nil || n.Value.x() == nil || !tagged(n) || alive(n, c) {
		return
	}
	c.removeNode(n)
	c.Rec.Expired(1)
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
func (c *Core) serveStale(cl *Call) bool {
	if cl.Fo == nil || cl.Fo.Stale <= 0 || cl.base != nil {
		return false
	}
	n := c.Index.Get(UnsafeBytes(cl.Key), cl.H)
	if n == nil || n.Value.x() == nil || !tagged(n) {
		return false
	}
	fx := freshOf(n)
	now := c.Now()
	if fx.removeAt <= fx.ttlEnd || now < fx.ttlEnd || now >= fx.removeAt {
		return false // not in its stale window (a refresh that failed before the TTL ended)
	}
	if c.Logger != nil {
		msg, attr := "memo: an execution failed; serving the stale result", slog.Any("error", failure(cl))
		c.Logger.Warn(msg, slog.String("cache", c.Name), attr)
	}
	cl.Val, cl.stale = n.Value.Value(), true
	cl.Panicked, cl.Pval, cl.Stack = false, nil, nil
	if cl.ctx == nil || !errors.Is(cl.ctx.Err(), context.Canceled) {
		sh := c.shardOf(cl.H)
		sh.mu.Lock()
		if fx.retryAt == 0 { // the outage starts
			fx.backoff = cl.Fo.retryBase(fx)
		}
		fx.retryAt = addTime(now, fx.backoff)
		sh.mu.Unlock()
	}
	return true
}

// retryBase returns the first back-off of an outage of fx's entry: the
// refresh interval, or 1 s without one, at most the stale window.
func (fo *FreshOpts) retryBase(fx *freshX) time.Duration {
	d := fo.Refresh
	if d <= 0 {
		d = time.Second
	}
	return min(d, time.Duration(fx.removeAt-fx.ttlEnd))
}

// failure returns what made cl fail, for the log.
func failure(cl *Call) any {
	if cl.Panicked {
		return cl.Pval
	}
	switch v := cl.Val.(type) {
	case []reflect.Value:
		if len(v) > 0 {
			return v[len(v)-1].Interface()
		}
	case interface{ Results() []any }:
		r := v.Results()
		return r[len(r)-1]
	}
	return cl.Val
}

// Decide applies WithCacheIf and WithTTLFunc to results that would be
// stored for ttl, and returns whether to store them and for how long.
func (fo *FreshOpts) Decide(c *Core, val any, failed bool, ttl time.Duration) (store bool, d time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			if c.Logger != nil {
				c.Logger.Error("memo: WithCacheIf or WithTTLFunc panicked; the result is not stored", slog.String("cache", c.Name), slog.Any("panic", r))
			}
			store, d = false, 0
			c.Rec.Rejected(1)
		}
	}()
	var res []any
	if fo.CacheIf != nil {
		res = results(val)
		if !fo.CacheIf(res) {
			c.Rec.Rejected(1)
			return false, 0
		}
	}
	if fo.TtlFunc != nil && !failed {
		if res == nil {
			res = results(val)
		}
		t := fo.TtlFunc(res)
		if t <= 0 {
			c.Rec.Rejected(1)
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
	case interface{ Results() []any }:
		return v.Results()
	}
	return []any{val}
}

// StaleServed counts a caller that got cl's result, if that was stale.
func (c *Core) StaleServed(cl *Call) {
	if cl.stale {
		c.Rec.StaleServed(1)
	}
}
