package memo

import (
	"context"
	"slices"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/goid"
	"github.com/memokit/memo/internal/keys"
	"github.com/memokit/memo/stats"
)

// Call coalescing, after golang.org/x/sync/singleflight: one execution per
// key in flight, its result handed to every caller that asked meanwhile.
// What singleflight lacks is added: callers with their own contexts (and
// deadlines), invalidation of an execution in flight, and calls made from
// inside an execution for its own key, which must not wait on it.

// result returns what a caller that did not run the execution cl gets:
// the value, or a panic with *PanicError.
func result(cl *engine.Call) any {
	switch {
	case cl.Panicked:
		panic(&PanicError{Value: cl.Pval, Stack: cl.Stack})
	case cl.Goexit:
		panic(&PanicError{Value: errGoexit})
	}
	return cl.Val
}

// A request is what the miss path needs of one memoized call besides its
// key: its context and how to run the function on its arguments.
type request[A, T any] struct {
	// ctx is the caller's context; nil for a function without one, whose
	// leader runs the execution on its own goroutine, as singleflight does.
	ctx context.Context
	// fn runs the function on the arguments a, under the context it is
	// given (the execution's). fn is made once per memoized function and a
	// is held by value, so that a miss makes no closure unless its
	// execution runs on a goroutine of its own.
	fn func(context.Context, A) T
	a  A
	// own, when not nil, gives the execution arguments of its own (the
	// copiers of internal/keys): a leader that may leave first (its context
	// can end) calls it before the execution starts.
	own func()
	// detach, when not nil, returns a run that works on a private copy of
	// the call's arguments (made as own's), with the verify of that copy,
	// for a refresh (WithRefreshAfter), which outlives its caller too.
	detach func() (func(context.Context) T, func(string) bool)
	// verify, when not nil (see wrapped.recheck), re-encodes the key from
	// the arguments run works on: an execution that may outlive its
	// callers checks with it that no caller changed them (engine.Call.Verify).
	verify func(string) bool
}

// miss is the miss path of every memoized call, Decorate's and the typed
// ones: s holds the key, of hash h, whose lookup has missed, and miss takes
// ownership of it. It returns the stored result if one appeared meanwhile,
// joins the execution in flight for the key, or leads a new one, which
// rq.run performs (see request and await).
//
// Every miss is counted as exactly one of Led, Coalesced or Abandoned (see
// stats.Stats.Pending). When due is set, the caller's lookup found an entry
// due for a refresh and counted nothing: the call is a hit if join serves
// that entry (or a newer one), and a miss otherwise (the entry went
// meanwhile: evicted, invalidated, or past its TTL). A call whose key can
// never hit again runs on its own (see uncacheable).
func miss[A, T any](w *wrapped, s *keys.State, h uint64, due bool, rq request[A, T]) T {
	if s.Never {
		return uncacheable(w, s, rq.ctx, rq.runFunc())
	}
	return missKey(w, s.Buf, s, h, due, rq)
}

// missKey is miss of the key k: s's (which it takes), or, when s is nil,
// one the caller made on its stack, which refers to no object by identity,
// for a function with no shared tier, so that such a miss takes no pooled
// state (a Func of an int or a short string).
func missKey[A, T any](w *wrapped, k []byte, s *keys.State, h uint64, due bool, rq request[A, T]) T {
	c := &w.c.e
	if rq.ctx != nil && rq.ctx.Err() != nil {
		if s != nil {
			keys.PutState(s)
		}
		if due {
			c.Rec.Miss(h) // the caller gets no result
		}
		c.Rec.Abandoned(1)
		return cancelledResult[T](w, rq.ctx)
	}
	var outer *engine.Call
	if rq.ctx != nil {
		outer, _ = rq.ctx.Value(engine.FlightKey{}).(*engine.Call)
	}
	n, cl, r := c.Join(k, h, goid.Current(), outer, rq.inline(), w.fo)
	if due {
		if r == engine.Found || r == engine.Late {
			c.Hit(n, h)
		} else {
			c.Rec.Miss(h)
			due = false
		}
	}
	if cl != nil && (r == engine.Leading || r == engine.Late) {
		var refs []unsafe.Pointer
		if s != nil && len(s.Refs) > 0 {
			refs = slices.Clone(s.Refs)
		}
		w.prepare(cl, refs)
	}
	// The leader asks the shared tier first (tier.go); a joiner may start
	// over as a leader, or find a refresh due. A refresh goes through the
	// tier's Refresh (startRefresh), and a re-entrant call must not wait
	// on its own lease.
	var tk *TierKey
	if s != nil {
		if w.tier != nil && r != engine.Found && r != engine.Stale && r != engine.Reentrant {
			tk = tierKeyOf(w, s)
		}
		keys.PutState(s)
	}
	f := flight[A, T]{w: w, rq: rq, t: tally{&c.Rec, due}, outer: outer, judge: w, tk: tk}
	if tk != nil && r != engine.Late {
		// The tier's path decides once whether and how long to store
		// (WithCacheIf, WithTTLFunc), for the tier and for the local cache.
		tv := new(tierVerdict)
		f.tiered = viaTier(w, w.tier.b.Load, *tk, rq.runFunc(), nil, tv)
		f.judge = w.tierJudge(tv)
	}
	return f.settle(n, cl, r)
}

// prepare readies cl, an execution (or refresh) w's caller is to lead, for
// the store: the function's freshness options, the tier's bound on a local
// copy's age, and refs, the objects the key refers to by identity (when
// not nil).
func (w *wrapped) prepare(cl *engine.Call, refs []unsafe.Pointer) {
	cl.Fo, cl.AgeCap = w.fo, w.ageCap()
	if refs != nil {
		cl.Refs = refs
	}
}

// inline reports whether rq's caller, if it leads, runs the execution on
// its own goroutine (see await): it has no context, or one that can never
// end.
func (rq *request[A, T]) inline() bool { return rq.ctx == nil || rq.ctx.Done() == nil }

// runFunc returns rq's function bound to its arguments.
func (rq *request[A, T]) runFunc() func(context.Context) T {
	fn, a := rq.fn, rq.a
	return func(ctx context.Context) T { return fn(ctx, a) }
}

// A flight is a miss after its join: the request, how it is counted, and
// how its execution's results are judged and reach the tier.
type flight[A, T any] struct {
	w      *wrapped
	rq     request[A, T]
	t      tally
	outer  *engine.Call            // the execution the caller runs inside, if any
	tiered func(context.Context) T // rq's run through the tier's Load when tk is set (a refresh takes its Refresh instead); else nil
	judge  engine.Verdict          // w.judge, or the tier path's decision
	tk     *TierKey                // the key's tier key, nil when the call does not go through a tier
}

// exec returns what the execution runs under the context it is given:
// the function through the tier, or the function itself.
func (f *flight[A, T]) exec() func(context.Context) T {
	if f.tiered != nil {
		return f.tiered
	}
	return f.rq.runFunc()
}

// settle finishes a miss from what join made of it (n, cl, r): a value to
// serve at once, a call to run alone, or an execution to lead or wait on,
// joining again while the execution it waited on says to start over.
func (f *flight[A, T]) settle(n *engine.Node, cl *engine.Call, r engine.Role) T {
	w, c := f.w, &f.w.c.e
	for {
		switch r {
		case engine.Found, engine.Late, engine.Stale:
			f.t.coalesced() // stored by an execution that ended meanwhile, or stale in an outage
			switch {
			case r == engine.Late && cl != nil:
				startRefresh(w, cl, f.rq.ctx, f.rq.runFunc(), f.rq.detach, f.rq.verify, f.tk)
			case r == engine.Stale:
				c.Rec.StaleServed(1)
			}
			return as[T](n.Value.Value())
		case engine.Reentrant:
			if c.Logger != nil {
				c.Logger.Warn("memo: a call from inside an execution for its own key runs on its own, without joining it",
					"cache", c.Name, "func", w.typ.String())
			}
			return runAlone(w, f.t, f.rq.ctx, f.exec())
		}
		v, again := f.await(cl, r)
		if !again {
			return v
		}
		prev := cl
		n, cl, r = c.Join(engine.UnsafeBytes(prev.Key), prev.H, goid.Current(), f.outer, f.rq.inline(), w.fo)
		if (r == engine.Leading || r == engine.Late) && cl != nil {
			w.prepare(cl, prev.Refs)
		}
	}
}

// await leads cl or waits on it (r says which) and returns the call's
// result, or again when the execution ended in a way that sends this
// caller to join afresh: it ran on arguments changed since (see
// request.verify), or failed on the deadline of a caller that was not
// this one (engine.Call.StartsOver).
//
// Without a context the leader runs the execution on its own goroutine.
// With one, the execution runs in a new goroutine under a context that
// keeps the caller's values and deadline and is cancelled when the last
// caller leaves, and every caller, the leader too, waits until the
// execution is done or its own context ends (then it gets cancelled).
func (f *flight[A, T]) await(cl *engine.Call, r engine.Role) (v T, again bool) {
	c, ctx := &f.w.c.e, f.rq.ctx
	if ctx == nil {
		if r == engine.Joining {
			<-cl.Done
			if cl.Moved { // the execution ran on arguments changed since (see Call.Verify)
				return v, true
			}
			f.t.coalesced()
			c.StaleServed(cl)
			return as[T](result(cl)), false
		}
		return f.runHere(cl, nil), false
	}
	if r == engine.Leading && ctx.Done() == nil {
		// The leader can never leave (nothing cancels its context, which
		// has no deadline): it runs the execution on its own goroutine, as
		// a caller without a context does, rather than start one.
		return f.runHere(cl, cl.StartInline(ctx)), false
	}
	if r == engine.Leading {
		if ctx.Done() != nil { // the leader may leave: see request.own and verify
			if f.rq.own != nil {
				f.rq.own()
				f.rq.own = nil
			}
			cl.Verify = f.rq.verify
		}
		runCtx, run := cl.Start(ctx), f.exec()
		w := f.w
		go c.Run(cl, f.judge, func() any { return hold(w, cl, run(runCtx)) })
	}
	select {
	case <-cl.Done:
	case <-ctx.Done():
		c.Leave(cl)
		f.t.abandoned(r == engine.Leading)
		return cancelledResult[T](f.w, ctx), false
	}
	if r == engine.Joining && cl.StartsOver(ctx) {
		return v, true
	}
	if r == engine.Leading {
		f.t.led()
		if cl.Panicked {
			panic(cl.Pval)
		}
	} else {
		f.t.coalesced()
	}
	c.StaleServed(cl)
	return as[T](result(cl)), false
}

// runHere runs cl, the execution this caller leads, on its own goroutine
// under runCtx (nil for a function without a context), and returns its
// result; a panic in the function panics again here, with its value.
func (f *flight[A, T]) runHere(cl *engine.Call, runCtx context.Context) T {
	c := &f.w.c.e
	f.t.led()
	w, fn, a, tiered := f.w, f.rq.fn, f.rq.a, f.tiered
	c.Run(cl, f.judge, func() any {
		if tiered != nil {
			return hold(w, cl, tiered(runCtx))
		}
		return hold(w, cl, fn(runCtx, a))
	})
	if cl.Panicked {
		panic(cl.Pval)
	}
	c.StaleServed(cl)
	v := as[T](cl.Val)
	if tiered == nil {
		// No tier's Load ran the function, and the context it got, if
		// any, lets go of cl now: cl goes back to its pool unless a
		// caller joined it or the context handed it out (see
		// engine.Core.Recycle).
		if runCtx != nil {
			cl.EndInline()
		}
		c.Recycle(cl)
	}
	return v
}

// hold returns v, the result of w's execution cl, as the interface cl
// keeps: in the entry that will store it, when T is a type Go boxes apart
// (see engine.Hold), so that a miss allocates once.
func hold[T any](w *wrapped, cl *engine.Call, v T) any {
	ht := w.held.Load()
	if nt := engine.HeldFor[T](ht); nt != ht {
		ht = nt
		w.held.Store(ht)
	}
	return engine.Hold(cl, v, ht)
}

// tally counts how a miss ended (see stats.Stats.Pending), unless hit is
// set: the caller's lookup counted a hit (a refresh was due, refresh.go).
type tally struct {
	rec *stats.Recorder
	hit bool
}

func (t tally) led() {
	if !t.hit {
		t.rec.Led(1)
	}
}

func (t tally) coalesced() {
	if !t.hit {
		t.rec.Coalesced(1)
	}
}

// abandoned counts a caller that left; leader says it had started the
// execution it left, which goes on without it (see
// stats.Stats.AbandonedLeaders).
func (t tally) abandoned(leader bool) {
	if !t.hit {
		t.rec.Abandoned(1)
		if leader {
			t.rec.AbandonedLeader(1)
		}
	}
}

// runAlone runs a call on the caller's goroutine, with its context,
// without joining or storing anything: a call made from inside the
// execution in flight for its own key (which waits for this call, and so
// cannot end before it, and stores its own result), or a call whose key
// can never hit again. The call counts as one execution, led by its
// caller (t).
func runAlone[T any](w *wrapped, t tally, ctx context.Context, run func(context.Context) T) T {
	c := w.c
	t.led()
	start := time.Now()
	normal := false
	defer func() {
		if !normal { // a panic or runtime.Goexit, which go on unwinding
			c.e.Rec.Execution(time.Since(start), true)
		}
	}()
	v := run(ctx)
	normal = true
	failed, _, _ := w.judge(v)
	c.e.Rec.Execution(time.Since(start), failed)
	return v
}

// uncacheable runs a call whose key, in s, can never hit again (see
// keys.State.Never: past the key limit, or holding a value memo cannot
// identify), which would only evict useful entries and hold its key: it
// runs the function, in the caller's goroutine and with the caller's
// context, joins no execution, stores nothing, and counts in
// Stats.Uncacheable (and, as every miss, in Led or Abandoned). It takes
// ownership of s.
func uncacheable[T any](w *wrapped, s *keys.State, ctx context.Context, run func(context.Context) T) T {
	long := s.TooLong
	keys.PutState(s)
	w.c.noteUncacheable(long)
	if ctx != nil && ctx.Err() != nil {
		w.c.e.Rec.Abandoned(1)
		return cancelledResult[T](w, ctx)
	}
	return runAlone(w, tally{&w.c.e.Rec, false}, ctx, run) // timed, and counted as Led
}
