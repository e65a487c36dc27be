package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/goid"
	"github.com/memokit/memo/internal/keys"
)

// The machinery of Batch (batch.go): each key of a batch call is an entry
// of its own, looked up, joined and stored through the engine as the key of
// a FuncCtx call would be; the keys a call leads are computed by fn calls
// (batchRun) that end each key's execution (engine.Core.Complete).

// batchFunc is a memoized batch function's state. Its entries are those of
// the single-key function that w describes, func(context.Context, K) (V,
// error): a key is keyed as that function's argument and its result stored
// as that function's outcome, so that Single, Invalidate and CacheOf see
// them as a FuncCtx's.
type batchFunc[K comparable, V any] struct {
	w        *wrapped
	fn       func(context.Context, []K) (map[K]V, error)
	inflight atomic.Int64       // fn calls running (see batchWindow.add)
	maxBatch int                // the most keys one fn call gets; 0: no limit
	window   *batchWindow[K, V] // merges the misses of concurrent calls; nil: none
	refresh  *batchWindow[K, V] // merges due refreshes (WithRefreshAfter); nil: none
}

// keyed is one key of a batch call on its way: its encoded key and hash
// until it is joined, then what Join made of it.
type keyed[K comparable] struct {
	k   K
	s   *keys.State // the encoded key, owned, until joined
	h   uint64
	due bool // the lookup found an entry due for a refresh (see miss)
	n   *engine.Node
	cl  *engine.Call
	r   engine.Role
	tk  *TierKey // the key's tier key when it is led through a tier
}

// lookup encodes k and looks it up as a FuncCtx call of the single-key
// function would (see do1): on a hit it returns the stored outcome and
// true; else the encoded key in a keys.State the caller owns, its hash,
// and whether an entry was due for a refresh.
func (b *batchFunc[K, V]) lookup(k K) (o outcome[V], hit bool, s *keys.State, h uint64, due bool) {
	w := b.w
	if w.key == nil && !w.deref {
		if str, ok := shortString(k); ok {
			h = engine.HashFidString(w.fid, str)
			v, ok := w.c.e.LookupString(w.fid, str, h)
			if ok {
				return as[outcome[V]](v), true, nil, 0, false
			}
			s = keys.GetState()
			s.U64(w.fid)
			s.Buf = append(append(s.Buf, byte(len(str))), str...)
			return o, false, s, h, v == engine.RefreshDue
		}
		var arr [64]byte
		if kb, ok := appendBasic(binary.LittleEndian.AppendUint64(arr[:0], w.fid), k); ok {
			h = engine.HashKey(kb)
			v, ok := w.c.e.Lookup(kb, h)
			if ok {
				return as[outcome[V]](v), true, nil, 0, false
			}
			s = keys.GetState()
			s.Buf = append(s.Buf, kb...)
			return o, false, s, h, v == engine.RefreshDue
		}
	}
	s, h = encode1(w, k)
	v, ok := w.c.e.Lookup(s.Buf, h)
	if ok {
		keys.PutState(s)
		return as[outcome[V]](v), true, nil, 0, false
	}
	return o, false, s, h, v == engine.RefreshDue
}

// errAbsent is the outcome's error of a key the batch function left out of
// its map: the key is absent from Batch's result, and Single's ErrNotFound.
// Like any error it is stored only with WithErrorTTL: a negative entry.
var errAbsent = error(absentError{}) // not "var errAbsent error": go doc would then list New apart from Cache

type absentError struct{}

func (absentError) Error() string {
	return "memo: key not found: the batch function returned no value for it"
}

func (absentError) Is(target error) bool { return target == ErrNotFound }

// batchResult gathers a batch call's results.
type batchResult[K comparable, V any] struct {
	vals map[K]V
	errs KeyErrors[K]
}

// put records key k's outcome: a value, an absent key (nothing), or an
// error.
func (r *batchResult[K, V]) put(k K, o outcome[V]) {
	switch {
	case o.err == nil:
		r.vals[k] = o.val
	case o.err == errAbsent:
	default:
		r.fail(k, o.err)
	}
}

func (r *batchResult[K, V]) fail(k K, err error) {
	if r.errs == nil {
		r.errs = make(KeyErrors[K])
	}
	r.errs[k] = err
}

// err is the call's error: nil when no key failed.
func (r *batchResult[K, V]) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs
}

// outcomeOf is key k's outcome in fn's answer (m, err): a per-key error
// (KeyErrors), a value, an absent key, or the whole call's error.
func outcomeOf[K comparable, V any](k K, m map[K]V, err error) outcome[V] {
	if err != nil {
		var ke KeyErrors[K]
		if !errors.As(err, &ke) {
			return outcome[V]{err: err}
		}
		if e, failed := ke[k]; failed && e != nil {
			return outcome[V]{err: e}
		}
	}
	if v, ok := m[k]; ok {
		return outcome[V]{val: v}
	}
	return outcome[V]{err: errAbsent}
}

// call is one Batch call: the keys in ks (duplicates collapse) served from
// the cache, joined from executions in flight, or computed by fn (see
// Batch).
func (b *batchFunc[K, V]) call(ctx context.Context, ks []K) (map[K]V, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	res := batchResult[K, V]{vals: make(map[K]V, len(ks))}
	var (
		pend    []keyed[K]
		pending map[K]struct{} // the keys in pend, once there are many
		n       int            // distinct keys
	)
	for _, k := range ks {
		// Duplicates collapse: a key served already is in res.vals (or
		// res.errs); a key on its way is in pend.
		if _, dup := res.vals[k]; dup {
			continue
		}
		if _, dup := res.errs[k]; dup {
			continue
		}
		if pendingHas(pend, pending, k) {
			continue
		}
		n++
		o, hit, s, h, due := b.lookup(k)
		if hit {
			res.put(k, o)
			continue
		}
		pend = append(pend, keyed[K]{k: k, s: s, h: h, due: due})
		if pending != nil {
			pending[k] = struct{}{}
		} else if len(pend) > 16 {
			pending = make(map[K]struct{}, len(ks))
			for _, p := range pend {
				pending[p.k] = struct{}{}
			}
		}
	}
	joined, err := b.resolve(ctx, pend, &res)
	rec := &b.w.c.e.Rec
	rec.BatchCall(n)
	rec.BatchCached(uint64(n - len(pend)))
	rec.BatchJoined(uint64(joined))
	if err != nil {
		return nil, err
	}
	return res.vals, res.err()
}

// one is Single's call: one key, its result as FuncCtx's would be.
func (b *batchFunc[K, V]) one(ctx context.Context, k K) (V, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rec := &b.w.c.e.Rec
	rec.BatchCall(1) // a call of one key (see stats.Stats.BatchCalls)
	o, hit, s, h, due := b.lookup(k)
	if hit {
		rec.BatchCached(1)
		return o.val, o.err // errAbsent for a negative entry: errors.Is(err, ErrNotFound)
	}
	res := batchResult[K, V]{vals: make(map[K]V, 1)}
	joined, err := b.resolve(ctx, []keyed[K]{{k: k, s: s, h: h, due: due}}, &res)
	rec.BatchJoined(uint64(joined))
	if err != nil {
		var zero V
		return zero, err
	}
	if e := res.errs[k]; e != nil {
		var zero V
		return zero, e
	}
	v, ok := res.vals[k]
	if !ok {
		return v, errAbsent
	}
	return v, nil
}

// resolve joins every key of pend (whose lookups missed, and which it takes
// ownership of), has fn compute those this call leads, waits for the rest,
// and records every outcome in res. It returns how many keys it joined
// from executions in flight, and ctx's error if the caller's context ends
// first (the caller leaves every execution it waited on).
func (b *batchFunc[K, V]) resolve(ctx context.Context, pend []keyed[K], res *batchResult[K, V]) (joined int, err error) {
	c := &b.w.c.e
	outer, _ := ctx.Value(engine.FlightKey{}).(*engine.Call)
	for len(pend) > 0 {
		if ctx.Err() != nil {
			for i := range pend {
				keys.PutState(pend[i].s)
				c.Rec.Abandoned(1)
			}
			return joined, ctx.Err()
		}
		j := b.joinAll(ctx, pend, outer, res)
		joined += j.joined
		if len(j.refresh) > 0 {
			b.startRefresh(ctx, j.refresh)
		}
		var g *batchGroup[K, V]
		if len(j.lead) > 0 || len(j.alone) > 0 {
			g = b.leadOrLeave(ctx, j.lead, j.alone, j.wait)
		}
		again, err := b.collect(ctx, j.wait, g, j.alone, res)
		joined -= len(again) // joined again next round
		if err != nil {
			return joined, err
		}
		pend = again
	}
	return joined, nil
}

// joinedKeys is what joinAll made of a call's missed keys.
type joinedKeys[K comparable] struct {
	lead, wait, refresh []*keyed[K] // led by this call; led or joined (to wait on); due refreshes to start
	alone               []K         // computed with this call's fn call, never stored
	joined              int         // keys joined from executions in flight
}

// joinAll joins each key of pend (Core.Join, taking ownership of its
// encoded key), serves into res the keys Join found stored, counts each
// key as miss does, and sorts the rest by what this call must do with
// them. outer is the execution the caller runs inside, if any.
func (b *batchFunc[K, V]) joinAll(ctx context.Context, pend []keyed[K], outer *engine.Call, res *batchResult[K, V]) joinedKeys[K] {
	w := b.w
	c := &w.c.e
	// inline: this call will run fn for the keys it leads on its own
	// goroutine (see lead), so Join need not make their done channels.
	inline := b.window == nil && w.tier == nil && ctx.Done() == nil && (b.maxBatch == 0 || len(pend) <= b.maxBatch)
	j := joinedKeys[K]{lead: make([]*keyed[K], 0, len(pend)), wait: make([]*keyed[K], 0, len(pend))}
	for i := range pend {
		p := &pend[i]
		t := tally{&c.Rec, false}
		if p.s.Never {
			j.alone = append(j.alone, p.k) // no entry can ever hold it
			keys.PutState(p.s)
			t.led()
			continue
		}
		p.n, p.cl, p.r = c.Join(p.s.Buf, p.h, goid.Current(), outer, inline, w.fo)
		if p.due {
			if p.r == engine.Found || p.r == engine.Late {
				c.Hit(p.n, p.h)
				t.hit = true
			} else {
				c.Rec.Miss(p.h)
			}
		}
		if p.cl != nil && (p.r == engine.Leading || p.r == engine.Late) {
			var refs []unsafe.Pointer
			if len(p.s.Refs) > 0 {
				refs = slices.Clone(p.s.Refs)
			}
			w.prepare(p.cl, refs)
		}
		if w.tier != nil && p.r == engine.Leading {
			p.tk = tierKeyOf(w, p.s)
		}
		keys.PutState(p.s)
		p.s = nil
		switch p.r {
		case engine.Found, engine.Late, engine.Stale:
			t.coalesced()
			res.put(p.k, as[outcome[V]](p.n.Value.Value()))
			if p.r == engine.Late && p.cl != nil {
				j.refresh = append(j.refresh, p)
			} else if p.r == engine.Stale {
				c.Rec.StaleServed(1)
			}
		case engine.Reentrant:
			j.alone = append(j.alone, p.k) // inside its own execution: computed alone
			t.led()
		case engine.Leading:
			j.lead = append(j.lead, p)
			j.wait = append(j.wait, p)
		case engine.Joining:
			j.wait = append(j.wait, p)
			j.joined++
		}
	}
	return j
}

// collect waits for the calls of wait and the alone keys of g, and records
// their outcomes in res (counting each key led or coalesced). It returns
// the joined keys whose execution ended on a deadline that was another
// caller's, to join afresh, and ctx's error if the caller's context ends
// first: then the caller leaves every call it has not taken yet.
func (b *batchFunc[K, V]) collect(ctx context.Context, wait []*keyed[K], g *batchGroup[K, V], alone []K, res *batchResult[K, V]) (again []keyed[K], err error) {
	c := &b.w.c.e
	for i, p := range wait {
		done := p.cl.Done
		if done == nil {
			// A key led and computed inline, which nobody joined: it has
			// ended (a joiner would have made done, under the shard's
			// lock, before the call was taken out of it).
			done = closedChan
		}
		select {
		case <-done:
		case <-ctx.Done():
			for _, q := range wait[i:] {
				c.Leave(q.cl)
				tally{&c.Rec, false}.abandoned(q.r == engine.Leading)
			}
			if g != nil && len(alone) > 0 {
				g.release()
			}
			return dropAgain(again), ctx.Err()
		}
		cl := p.cl
		if p.r == engine.Joining && cl.StartsOver(ctx) {
			s := keys.GetState()
			s.Buf = append(s.Buf, cl.Key...)
			again = append(again, keyed[K]{k: p.k, s: s, h: cl.H})
			continue
		}
		if p.r == engine.Leading {
			c.Rec.Led(1)
		} else {
			c.Rec.Coalesced(1)
		}
		switch {
		case cl.Panicked:
			pe, ok := cl.Pval.(*PanicError) // the tier path's compute panics with one
			if !ok {
				pe = &PanicError{Value: cl.Pval, Stack: cl.Stack}
			}
			res.fail(p.k, pe)
		case cl.Goexit:
			res.fail(p.k, &PanicError{Value: errGoexit})
		default:
			res.put(p.k, as[outcome[V]](cl.Val))
		}
		c.StaleServed(cl)
	}
	if len(alone) > 0 {
		select {
		case <-g.done:
		case <-ctx.Done():
			g.release()
			return dropAgain(again), ctx.Err()
		}
		for _, k := range alone {
			res.put(k, g.alone[k])
		}
	}
	return again, nil
}

// dropAgain returns again, the keys a caller that left will not join
// afresh, with their encoded keys given back (they count as not joined).
func dropAgain[K comparable](again []keyed[K]) []keyed[K] {
	for _, a := range again {
		keys.PutState(a.s)
	}
	return again
}

// lead hands the keys this call leads (their calls made by Join) and the
// keys it computes alone to fn: through the window when there is one, else
// in fn calls of their own at once. It returns the group that computes them.
func (b *batchFunc[K, V]) lead(ctx context.Context, lead []*keyed[K], alone []K) *batchGroup[K, V] {
	if b.w.tier != nil {
		lead = b.viaTier(ctx, lead)
		if len(lead) == 0 && len(alone) == 0 {
			return nil
		}
	}
	if b.window != nil && len(alone) == 0 {
		return b.window.add(ctx, lead)
	}
	g := newBatchGroup(b, false)
	g.keys = make([]K, 0, len(lead)+len(alone))
	g.calls = make([]*engine.Call, 0, len(lead)+len(alone))
	g.add(ctx, lead, alone)
	if ctx.Done() == nil && (b.maxBatch == 0 || len(g.keys) <= b.maxBatch) {
		// The caller can never leave (nothing cancels its context): it
		// calls fn itself, as a FuncCtx leader does, rather than start a
		// goroutine and a context of the execution's own.
		g.runInline(ctx)
	} else {
		g.dispatch()
	}
	return g
}

// leadOrLeave is lead, except that if the caller's goroutine is unwound
// while it calls fn itself (fn called runtime.Goexit), the caller stops
// waiting on every key in wait, as a caller that left: the executions it
// joined are not held by a caller that is gone.
func (b *batchFunc[K, V]) leadOrLeave(ctx context.Context, lead []*keyed[K], alone []K, wait []*keyed[K]) *batchGroup[K, V] {
	normal := false
	defer func() {
		if !normal {
			for _, p := range wait {
				b.w.c.e.Leave(p.cl)
			}
		}
	}()
	g := b.lead(ctx, lead, alone)
	normal = true
	return g
}

// startRefresh starts the refreshes of due (each with its refresh call,
// made by Join): in the background, merged by the refresh window with the
// refreshes other calls start meanwhile, in one fn call (or as few as
// WithMaxBatch allows).
func (b *batchFunc[K, V]) startRefresh(ctx context.Context, due []*keyed[K]) {
	c := &b.w.c.e
	for range due {
		c.Rec.RefreshStarted()
	}
	b.refresh.add(ctx, due)
}

// A batchGroup is keys that go to fn together: those one call leads, or
// those of several calls within a window (or due refreshes). Its context
// keeps its callers' values and the latest of their deadlines, and is
// cancelled when every caller of every key in it has gone (or its fn
// calls have ended).
type batchGroup[K comparable, V any] struct {
	b       *batchFunc[K, V]
	refresh bool // its calls are refreshes
	keys    []K
	calls   []*engine.Call // calls[i] for keys[i]; nil for a key computed alone
	ctxs    []context.Context
	// deadline is the latest of the callers' deadlines; none is set when
	// a caller has none.
	deadline time.Time
	none     bool
	// live counts the calls whose callers have not all left, and the
	// callers of alone keys that have not left: at 0 the context is
	// cancelled.
	live   atomic.Int64
	mu     sync.Mutex
	cancel context.CancelFunc // the merged context's, once dispatched
	rel    func(*engine.Call) // releaseCall, made once
	runs   atomic.Int64       // fn calls not ended
	alone  map[K]outcome[V]   // results of the alone keys (under mu), read after done
	done   chan struct{}      // closed when every fn call has ended
}

func newBatchGroup[K comparable, V any](b *batchFunc[K, V], refresh bool) *batchGroup[K, V] {
	g := &batchGroup[K, V]{b: b, refresh: refresh, done: make(chan struct{})}
	g.rel = g.releaseCall
	return g
}

// add puts a caller's keys in g: lead, the keys it leads (their calls made
// by Join), and alone, keys it computes with them that are never stored.
// g is not dispatched yet.
func (g *batchGroup[K, V]) add(ctx context.Context, lead []*keyed[K], alone []K) {
	c := &g.b.w.c.e
	g.ctxs = append(g.ctxs, ctx)
	d, ok := ctx.Deadline()
	for _, p := range lead {
		k := p.k
		if cs := g.b.w.copiers(); cs != nil {
			// The caller may leave, and change what its key refers to, while
			// fn runs: fn gets a copy of its own, made now (see keys.OwnValue);
			// the caller's result stays keyed by its own key.
			keys.OwnValue(cs[0], &k)
		}
		g.keys = append(g.keys, k)
		g.calls = append(g.calls, p.cl)
		g.live.Add(1)
		p.cl.Attach(g.rel)
		p.cl.SetGroup(g)
		if g.b.w.recheck {
			// A key read through memory no copy takes (a CacheKey method
			// behind a pointer): the result is stored only if the key,
			// encoded again when fn returns, is still the call's.
			p.cl.Verify = verify1(g.b.w, &g.keys[len(g.keys)-1]) // a backing array outgrown stays as it was
		}
		if g.refresh { // a refresh ends by its own time at the latest
			if u := p.cl.Until(c); !ok || u.Before(d) {
				d, ok = u, true
			}
		}
	}
	for _, k := range alone {
		g.keys = append(g.keys, k)
		g.calls = append(g.calls, nil)
	}
	if len(alone) > 0 {
		g.live.Add(1) // released by the caller (see release), or by the end
	}
	switch {
	case !ok:
		g.none = true
	case d.After(g.deadline):
		g.deadline = d
	}
}

// releaseCall is g's calls' release (see engine.Call.Attach): a call
// whose callers have all left, or that ended, drops its hold.
func (g *batchGroup[K, V]) releaseCall(*engine.Call) { g.release() }

// release drops one hold on g's context (see live): the last one cancels it.
func (g *batchGroup[K, V]) release() {
	if g.live.Add(-1) != 0 {
		return
	}
	g.mu.Lock()
	cancel := g.cancel
	g.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	// Before dispatch nothing is cancelled yet: later callers may still
	// add keys to a window's group; dispatch checks live itself.
}

// dispatch starts g's fn calls: one, or as many as WithMaxBatch needs, each
// in a goroutine of its own, under g's merged context.
func (g *batchGroup[K, V]) dispatch() {
	g.dropLeft()
	var deadline time.Time
	if !g.none {
		deadline = g.deadline
	}
	ctx, cancel := merge(g.ctxs, deadline)
	ctx = g.bind(ctx, deadline)
	g.mu.Lock()
	g.cancel = cancel
	g.mu.Unlock()
	if g.live.Load() == 0 {
		cancel() // every caller left while the keys were gathered
	}
	n := len(g.keys)
	step := n
	if m := g.b.maxBatch; m > 0 && m < n {
		step = m
	}
	if n == 0 {
		close(g.done)
		cancel()
		return
	}
	runs := (n + step - 1) / step
	g.runs.Store(int64(runs))
	g.b.inflight.Add(int64(runs))
	for lo := 0; lo < n; lo += step {
		go g.run(ctx, lo, min(lo+step, n))
	}
}

// bind makes ctx, which carries deadline (zero: none), the context of g's
// calls, and returns it carrying the first of them, so that calls made
// inside fn can tell (see engine.Core.Join).
func (g *batchGroup[K, V]) bind(ctx context.Context, deadline time.Time) context.Context {
	for _, cl := range g.calls {
		if cl != nil {
			ctx = context.WithValue(ctx, engine.FlightKey{}, cl)
			break
		}
	}
	for _, cl := range g.calls {
		if cl != nil {
			cl.Bind(ctx, deadline)
		}
	}
	return ctx
}

// runInline makes g's one fn call on the calling goroutine, under ctx,
// which nothing can cancel (see batchFunc.lead).
func (g *batchGroup[K, V]) runInline(ctx context.Context) {
	ctx = g.bind(ctx, time.Time{})
	g.runs.Store(1)
	g.b.inflight.Add(1)
	g.run(ctx, 0, len(g.keys))
}

// run is one fn call, for g's keys lo to hi: it ends each key's call with
// the key's outcome (a panic or runtime.Goexit in fn with a *PanicError for
// every key), and counts one execution.
func (g *batchGroup[K, V]) run(ctx context.Context, lo, hi int) {
	ks, calls := g.keys[lo:hi], g.calls[lo:hi]
	for _, cl := range calls {
		if cl != nil {
			cl.RunsHere()
		}
	}
	c := &g.b.w.c.e
	judge := g.b.w
	ended := false
	fail := func(pval any, stack []byte) {
		for i, k := range ks {
			switch cl := calls[i]; {
			case cl == nil:
				g.setAlone(k, outcome[V]{err: &PanicError{Value: pval, Stack: stack}})
			case g.refresh:
				c.FailRefresh(cl, pval, stack)
			default:
				c.Fail(cl, pval, stack)
			}
		}
	}
	start := time.Now()
	defer func() {
		if !ended { // runtime.Goexit in fn
			c.Rec.Execution(time.Since(start), true)
			fail(errGoexit, nil)
		}
		g.b.inflight.Add(-1)
		if g.runs.Add(-1) == 0 {
			close(g.done)
			g.mu.Lock()
			cancel := g.cancel
			g.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		}
	}()
	var (
		m        map[K]V
		err      error
		panicked bool
		pval     any
		stack    []byte
	)
	func() {
		normal := false
		defer func() {
			if !normal {
				if r := recover(); r != nil {
					panicked, pval, stack = true, r, debug.Stack()
				}
			}
		}()
		m, err = g.b.fn(ctx, g.input(ks))
		normal = true
	}()
	if panicked {
		c.Rec.Execution(time.Since(start), true)
		fail(pval, stack)
		ended = true
		return
	}
	c.Rec.Execution(time.Since(start), err != nil && !isKeyErrors[K](err))
	for i, k := range ks {
		o := outcomeOf(k, m, err)
		switch cl := calls[i]; {
		case cl == nil:
			g.setAlone(k, o)
		case g.refresh:
			c.CompleteRefresh(cl, judge, o)
		default:
			c.Complete(cl, judge, o)
		}
	}
	ended = true
}

// dropLeft takes out of g, before its fn calls start, the keys whose
// callers have all left while they waited in the window: nobody wants
// them (their calls, detached by Leave, end with the cancellation).
func (g *batchGroup[K, V]) dropLeft() {
	c := &g.b.w.c.e
	j := 0
	for i, k := range g.keys {
		if cl := g.calls[i]; cl != nil && cl.Released() {
			c.Complete(cl, g.b.w, outcome[V]{err: context.Canceled})
			continue
		}
		g.keys[j], g.calls[j] = k, g.calls[i]
		j++
	}
	clear(g.keys[j:])
	clear(g.calls[j:])
	g.keys, g.calls = g.keys[:j], g.calls[:j]
}

// input is the keys ks as fn gets them: a slice of its own, and each key
// once (a window's group may hold a key twice: invalidated, then asked
// again, while gathered).
func (g *batchGroup[K, V]) input(ks []K) []K {
	if len(g.ctxs) < 2 {
		return slices.Clone(ks) // one caller's keys: distinct already
	}
	seen := make(map[K]struct{}, len(ks))
	in := make([]K, 0, len(ks))
	for _, k := range ks {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			in = append(in, k)
		}
	}
	return in
}

func (g *batchGroup[K, V]) setAlone(k K, o outcome[V]) {
	g.mu.Lock()
	if g.alone == nil {
		g.alone = make(map[K]outcome[V])
	}
	g.alone[k] = o
	g.mu.Unlock()
}

// merge returns the context of an execution that serves callers: their
// values, deadline (the latest of theirs; zero for none), and a cancel.
func merge(callers []context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	var ctx context.Context = &mergedContext{Context: context.Background(), callers: callers}
	if deadline.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline)
}

// mergedContext is a batch group's context before its cancellation: the
// values of its callers' contexts, the first that has one winning.
type mergedContext struct {
	context.Context
	callers []context.Context
}

func (m *mergedContext) Value(key any) any {
	for _, c := range m.callers {
		if v := c.Value(key); v != nil {
			return v
		}
	}
	return nil
}

// batchWindow merges the keys that concurrent calls lead into one group
// (WithBatchWindow), or due refreshes.
type batchWindow[K comparable, V any] struct {
	b       *batchFunc[K, V]
	maxWait time.Duration
	maxKeys int  // 0: no limit
	refresh bool // a refresh window: always waits maxWait (nobody waits on it)
	mu      sync.Mutex
	open    *batchGroup[K, V] // the group taking keys, nil when none
}

// add puts a call's led keys in the open group, opening one when none is.
// The group is dispatched when maxKeys keys are in it, or maxWait after it
// opened; but a call that opens it while no call of fn is running, and is
// still alone in it once it has let the others run (runtime.Gosched),
// dispatches at once: no call waits when no other is pending.
func (wd *batchWindow[K, V]) add(ctx context.Context, lead []*keyed[K]) *batchGroup[K, V] {
	wd.mu.Lock()
	g := wd.open
	opened := g == nil
	if opened {
		g = newBatchGroup(wd.b, wd.refresh)
		wd.open = g
	}
	g.add(ctx, lead, nil)
	full := wd.maxKeys
	if m := wd.b.maxBatch; m > 0 && (full == 0 || m < full) {
		full = m // WithMaxBatch's n keys make one call of fn at once
	}
	if full > 0 && len(g.keys) >= full {
		wd.open = nil
		wd.mu.Unlock()
		g.dispatch()
		return g
	}
	wd.mu.Unlock()
	if !opened {
		return g
	}
	if !wd.refresh && wd.b.inflight.Load() == 0 {
		// No call of fn is running: this call is alone unless others
		// arrive while it lets them run.
		runtime.Gosched()
		wd.mu.Lock()
		if wd.open == g && len(g.ctxs) == 1 && wd.b.inflight.Load() == 0 {
			wd.open = nil
			wd.mu.Unlock()
			g.dispatch()
			return g
		}
		wd.mu.Unlock()
	}
	time.AfterFunc(wd.maxWait, func() {
		wd.mu.Lock()
		if wd.open != g {
			wd.mu.Unlock()
			return // dispatched full
		}
		wd.open = nil
		wd.mu.Unlock()
		g.dispatch()
	})
	return g
}

// refreshWindow is how long due refreshes of a batch function wait for
// others to go to fn with them (see batchFunc.startRefresh): refreshes run
// in the background, so nobody waits for it.
const refreshWindow = time.Millisecond

// loadOne is the per-key function whose type gives a batch function its
// keys and entries (see Batch): fn for one key.
func (b *batchFunc[K, V]) loadOne(ctx context.Context, k K) (V, error) {
	m, err := b.fn(ctx, []K{k})
	o := outcomeOf(k, m, err)
	return o.val, o.err
}

// viaTier starts the keys of lead that have a tier key through the tier,
// each as a FuncCtx call's execution would go (its own goroutine, the
// tier's Load under the key's cross-process lease), but the function runs
// for all of them at once: the keys whose Load asks to compute gather in a
// tierGroup that calls fn once. It returns the keys left to lead locally
// (those without a tier key).
func (b *batchFunc[K, V]) viaTier(ctx context.Context, lead []*keyed[K]) (local []*keyed[K]) {
	w := b.w
	c := &w.c.e
	var tiered []*keyed[K]
	for _, p := range lead {
		if p.tk == nil {
			local = append(local, p)
		} else {
			tiered = append(tiered, p)
		}
	}
	if len(tiered) == 0 {
		return local
	}
	tiered = b.peek(ctx, tiered)
	if len(tiered) == 0 {
		return local
	}
	tg := &tierGroup[K, V]{b: b, total: len(tiered)}
	for _, p := range tiered {
		k, cl := p.k, p.cl
		tv := new(tierVerdict)
		run := func(ctx context.Context) outcome[V] { return tg.compute(ctx, k) }
		tierRun := viaTier(w, w.tier.b.Load, *p.tk, run, cl, tv)
		runCtx := cl.Start(ctx)
		go c.Run(cl, w.tierJudge(tv), func() any {
			defer tg.settled(k)
			return tierRun(runCtx)
		})
	}
	return local
}

// peek reads the keys of tiered through the tier's binding in one go when
// it can (TierPeeker): each key found ends its call with the tier's value,
// as a tier hit of its Load would, and peek returns the keys not found,
// which go through Load one by one.
func (b *batchFunc[K, V]) peek(ctx context.Context, tiered []*keyed[K]) (missed []*keyed[K]) {
	w := b.w
	p, ok := w.tier.b.(TierPeeker)
	if !ok || len(tiered) < 2 {
		return tiered
	}
	c := &w.c.e
	tks := make([]TierKey, len(tiered))
	for i, k := range tiered {
		tks[i] = *k.tk
	}
	start := time.Now()
	res, ttls, found := p.Peek(ctx, tks)
	took := time.Since(start)
	for i, k := range tiered {
		if i >= len(found) || !found[i] || len(res[i]) == 0 {
			missed = append(missed, k)
			continue
		}
		tv := &tierVerdict{set: true}
		tv.ttl, tv.store = w.hitTTL(ttls[i])
		c.Rec.Execution(took, false) // an execution the tier answered (see Stats.TierHits)
		c.Rec.TierHit()
		c.Complete(k.cl, w.tierJudge(tv), tierValue[outcome[V]](w, res[i]))
	}
	return missed
}

// tierGroupWindow bounds how long the keys of a tiered batch call that
// must be computed wait for the rest of its keys (each either asks to
// compute or is settled by the tier) before fn is called for those that
// asked: a key may wait on another replica's lease meanwhile.
const tierGroupWindow = 20 * time.Millisecond

// A tierGroup gathers the keys of one batch call whose tier Loads ask to
// compute them (see batchFunc.viaTier) into as few fn calls as it can.
type tierGroup[K comparable, V any] struct {
	b     *batchFunc[K, V]
	total int // keys in the group
	mu    sync.Mutex
	asked []tierAsk[K, V] // keys that asked, not yet given to fn
	all   map[K]bool      // every key that asked
	known int             // keys that asked or settled without asking
	timer *time.Timer
}

// A tierAsk is one key's compute waiting for its outcome.
type tierAsk[K comparable, V any] struct {
	k   K
	ctx context.Context
	out chan tierAnswer[V]
}

// A tierAnswer is a key's outcome, or the panic of fn's call (the compute
// panics with it, so that nothing is stored, as for any panic).
type tierAnswer[V any] struct {
	o     outcome[V]
	panic *PanicError
}

// compute is key k's TierCompute run: it waits for the fn call the group
// makes for k and returns k's outcome.
func (tg *tierGroup[K, V]) compute(ctx context.Context, k K) outcome[V] {
	a := tierAsk[K, V]{k: k, ctx: ctx, out: make(chan tierAnswer[V], 1)}
	tg.mu.Lock()
	tg.asked = append(tg.asked, a)
	if tg.all == nil {
		tg.all = make(map[K]bool)
	}
	tg.all[k] = true
	tg.known++
	tg.flushLocked()
	tg.mu.Unlock()
	ans := <-a.out
	if ans.panic != nil {
		panic(ans.panic)
	}
	return ans.o
}

// settled records that k's Load has returned.
func (tg *tierGroup[K, V]) settled(k K) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.all[k] {
		return // counted when it asked
	}
	tg.known++
	tg.flushLocked()
}

// flushLocked calls fn for the keys that asked when every key is known
// (asked or settled), or arms the window that calls it then. tg.mu is held.
func (tg *tierGroup[K, V]) flushLocked() {
	if len(tg.asked) == 0 {
		return
	}
	if tg.known < tg.total {
		if tg.timer == nil {
			tg.timer = time.AfterFunc(tierGroupWindow, func() {
				tg.mu.Lock()
				tg.timer = nil
				tg.flushNow()
				tg.mu.Unlock()
			})
		}
		return
	}
	if tg.timer != nil {
		tg.timer.Stop()
		tg.timer = nil
	}
	tg.flushNow()
}

// flushNow calls fn, in a goroutine, for the keys that asked so far.
// tg.mu is held.
func (tg *tierGroup[K, V]) flushNow() {
	asked := tg.asked
	if len(asked) == 0 {
		return
	}
	tg.asked = nil
	go tg.b.computeAsked(asked)
}

// computeAsked is one fn call for the keys a tierGroup gathered, under a
// context that keeps their contexts' values and the latest deadline; each
// key's outcome goes to its compute (a panic: a *PanicError for each).
func (b *batchFunc[K, V]) computeAsked(asked []tierAsk[K, V]) {
	ks := make([]K, len(asked))
	ctxs := make([]context.Context, len(asked))
	var latest time.Time
	none := false
	for i, a := range asked {
		ks[i], ctxs[i] = a.k, a.ctx
		if d, ok := a.ctx.Deadline(); !ok {
			none = true
		} else if d.After(latest) {
			latest = d
		}
	}
	if none {
		latest = time.Time{}
	}
	ctx, cancel := merge(ctxs, latest)
	defer cancel()
	// Cancelled when every key's execution context has ended (its callers
	// all left, or its deadline passed), as a FuncCtx execution is.
	live := atomic.Int64{}
	live.Store(int64(len(asked)))
	for _, a := range asked {
		stop := context.AfterFunc(a.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	var (
		m      map[K]V
		err    error
		normal bool
	)
	defer func() {
		if !normal {
			r := recover()
			pe := &PanicError{Value: r, Stack: debug.Stack()}
			if r == nil {
				pe.Value = errGoexit
			}
			for _, a := range asked {
				a.out <- tierAnswer[V]{panic: pe}
			}
			if r != nil {
				return
			}
		}
	}()
	m, err = b.fn(ctx, ks)
	normal = true
	for _, a := range asked {
		a.out <- tierAnswer[V]{o: outcomeOf(a.k, m, err)}
	}
}

// pendingHas reports whether k is in pend (or in set, pend's keys once
// made).
func pendingHas[K comparable](pend []keyed[K], set map[K]struct{}, k K) bool {
	if set != nil {
		_, ok := set[k]
		return ok
	}
	for i := range pend {
		if pend[i].k == k {
			return true
		}
	}
	return false
}

// isKeyErrors reports whether err is, or wraps, a KeyErrors[K]: fn failed
// some keys only.
func isKeyErrors[K comparable](err error) bool {
	var ke KeyErrors[K]
	return errors.As(err, &ke)
}

// closedChan is a closed channel, for a call that has ended.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()
