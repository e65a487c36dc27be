package memo

import (
	"context"
	"slices"
	"time"

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

// miss is the miss path of every memoized call, Decorate's and the typed
// ones: s holds the key, whose lookup has missed, and miss takes ownership
// of it. It returns the stored result if one appeared meanwhile, joins the
// execution in flight for the key, or leads a new one, which run performs.
//
// Without a context (ctx nil) the leader runs the function in its own
// goroutine, as singleflight does. With one, the execution runs in a new
// goroutine under a context that keeps ctx's values and deadline and is
// cancelled when the last caller leaves, and every caller, the leader too,
// waits until the execution is done or its own context ends (then it gets
// cancelled(ctx)). A leader that may leave first (its context can end)
// calls own before the execution starts, so that the execution works on
// arguments of its own (see detach.go); own may be nil. detach, when not
// nil, returns a run that works on a private copy of the call's arguments
// (made as own's, see detach.go), for a refresh (WithRefreshAfter), which
// outlives its caller too, with the verify of that copy. verify, when not
// nil (see wrapped.recheck), re-encodes the key from the arguments run
// works on: an execution that may outlive its callers checks with it that
// no caller changed them (see call.verify).
//
// Every miss is counted as exactly one of Led, Coalesced or Abandoned (see
// stats.Stats.Pending). When due is set, the caller's lookup found an entry
// due for a refresh (fresh.go) and counted nothing: the call is a hit if
// join serves that entry (or a newer one), and a miss otherwise (the entry
// went meanwhile: evicted, invalidated, or past its TTL). A call whose key
// can never hit again runs on its own (see uncacheable).
func miss[T any](w *wrapped, s *keys.State, h uint64, due bool, ctx context.Context, run func(context.Context) T, own func(), detach func() (func(context.Context) T, func(string) bool), verify func(string) bool, cancelled func(context.Context) T) T {
	c := w.c
	if s.Never {
		return uncacheable(w, s, ctx, run, cancelled)
	}
	if ctx != nil && ctx.Err() != nil {
		keys.PutState(s)
		if due {
			c.e.Rec.Miss(h) // the caller gets no result
		}
		c.e.Rec.Abandoned(1)
		return cancelled(ctx)
	}
	var outer *engine.Call
	if ctx != nil {
		outer, _ = ctx.Value(engine.FlightKey{}).(*engine.Call)
	}
	n, cl, r := c.e.Join(s.Buf, h, goid.Current(), outer, ctx == nil, w.fo)
	if due {
		if r == engine.Found || r == engine.Late {
			c.e.Hit(n, h)
		} else {
			c.e.Rec.Miss(h)
			due = false
		}
	}
	t := tally{&c.e.Rec, due}
	if (r == engine.Leading || r == engine.Late) && cl != nil {
		cl.Fo, cl.AgeCap = w.fo, w.ageCap()
		if len(s.Refs) > 0 {
			cl.Refs = slices.Clone(s.Refs)
		}
	}
	// The leader asks the shared tier first (tier.go); a joiner may start
	// over as a leader, or find a refresh due. A refresh goes through the
	// tier's Refresh (startRefresh), and a re-entrant call must not wait
	// on its own lease.
	var tk *TierKey
	if w.tier != nil && r != engine.Found && r != engine.Stale && r != engine.Reentrant {
		tk = tierKeyOf(w, s)
	}
	plain := run
	judge := w.judge
	if tk != nil && r != engine.Late {
		// The tier's path decides once whether and how long to store
		// (WithCacheIf, WithTTLFunc), for the tier and for the local cache.
		tv := new(tierVerdict)
		run = viaTier(w, w.tier.b.Load, *tk, run, nil, tv)
		judge = w.tierJudge(tv)
	}
	keys.PutState(s)
	for {
		switch r {
		case engine.Found, engine.Late, engine.Stale:
			t.coalesced() // stored by an execution that ended meanwhile, or stale in an outage
			switch {
			case r == engine.Late && cl != nil:
				startRefresh(w, cl, ctx, plain, detach, verify, tk)
			case r == engine.Stale:
				c.e.Rec.StaleServed(1)
			}
			return as[T](n.Value.Value())
		case engine.Reentrant:
			if c.e.Logger != nil {
				c.e.Logger.Warn("memo: a call from inside an execution for its own key runs on its own, without joining it",
					"cache", c.e.Name, "func", w.typ.String())
			}
			return runAlone(w, t, ctx, run)
		}
		if ctx == nil {
			if r == engine.Joining {
				<-cl.Done
				if cl.Moved { // the execution ran on arguments changed since (see call.verify)
					prev := cl
					n, cl, r = c.e.Join(engine.UnsafeBytes(prev.Key), prev.H, goid.Current(), outer, true, w.fo)
					if (r == engine.Leading || r == engine.Late) && cl != nil {
						cl.Fo, cl.Refs, cl.AgeCap = w.fo, prev.Refs, w.ageCap()
					}
					continue
				}
				t.coalesced()
				c.e.StaleServed(cl)
				return as[T](result(cl))
			}
			t.led()
			c.e.Execute(cl, judge, func() any { return run(nil) })
			if cl.Panicked {
				panic(cl.Pval)
			}
			c.e.StaleServed(cl)
			return as[T](cl.Val)
		}
		if r == engine.Leading {
			if ctx.Done() != nil { // the leader may leave: see own and verify
				if own != nil {
					own()
					own = nil
				}
				cl.Verify = verify
			}
			runCtx := cl.Start(ctx)
			go c.e.Run(cl, judge, func() any { return run(runCtx) })
		}
		select {
		case <-cl.Done:
		case <-ctx.Done():
			c.e.Leave(cl)
			t.abandoned(r == engine.Leading)
			return cancelled(ctx)
		}
		if r == engine.Joining && cl.StartsOver(ctx) {
			prev := cl
			n, cl, r = c.e.Join(engine.UnsafeBytes(prev.Key), prev.H, goid.Current(), outer, false, w.fo)
			if (r == engine.Leading || r == engine.Late) && cl != nil {
				cl.Fo, cl.Refs, cl.AgeCap = w.fo, prev.Refs, w.ageCap()
			}
			continue
		}
		if r == engine.Leading {
			t.led()
			if cl.Panicked {
				panic(cl.Pval)
			}
		} else {
			t.coalesced()
		}
		c.e.StaleServed(cl)
		return as[T](result(cl))
	}
}

// tally counts how a miss ended (see stats.Stats.Pending), unless hit is
// set: the caller's lookup counted a hit (a refresh was due, fresh.go).
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

// as converts a stored result back to T. A nil interface result (a nil
// error or any) is stored as a nil any, which v.(T) would reject.
func as[T any](v any) T {
	if v == nil {
		var zero T
		return zero
	}
	return v.(T)
}
