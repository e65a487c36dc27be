package engine

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/memokit/memo/internal/goid"
)

// Join returns the entry stored for the encoded key k, or the execution
// in flight for it, which the caller then waits on, or a new execution
// that the caller must run. me is the caller's goroutine (curG) and outer
// the execution its context says it runs inside, if any: a caller that runs
// inside the execution in flight for its key must not wait on it (that
// would deadlock), and gets reentrant. A leader without a context, or with
// one that can never end, runs the execution on its own goroutine: lead
// says so, and the call records me (and its Done is made only if a caller
// joins).
// fo is the caller's function's freshness options (nil for none). A
// refresh in flight (flight.go) is never joined: it is not in the calls.
// Each call of join is a miss already counted by lookup, or a lookup of an
// entry due for a refresh, which its caller counts by what join made of it
// (see miss).
func (c *Core) Join(k []byte, h uint64, me uintptr, outer *Call, lead bool, fo *FreshOpts) (n *Node, cl *Call, r Role) {
	sh := c.shardOf(h)
	sh.Mu.Lock()
	// Stores insert under the shard's lock, so a caller sees the entry or
	// the execution that will store it.
	retry := false
	if n = c.Index.Get(k, h); n != nil {
		if Live(n, c) {
			sh.Mu.Unlock()
			return n, nil, Found
		}
		// A refresh due: a hit, and a refresh to start unless one runs; or
		// an outage: the stale value at once, or a retry to lead.
		if cl, r, retry = c.joinLate(sh, n, k, h, me, outer, fo); r != Leading {
			sh.Mu.Unlock()
			return n, cl, r
		}
	}
	if cl = sh.Calls.find(k, h); cl != nil {
		if cl.g.Load() == me || inside(outer, cl) {
			sh.Mu.Unlock()
			return nil, cl, Reentrant
		}
		cl.Waiters++
		if cl.Done == nil { // its leader runs it on its own goroutine and was alone so far
			cl.Done = make(chan struct{})
		}
		sh.Mu.Unlock()
		return nil, cl, Joining
	}
	cl = newCall(k)
	cl.H, cl.Waiters, cl.outer = h, 1, outer
	if lead {
		cl.g.Store(me) // Done is made by the first caller that joins (most never are)
	} else {
		cl.Done = make(chan struct{})
	}
	sh.Calls.insert(cl)
	sh.Mu.Unlock()
	if retry {
		c.Rec.StaleRetried(1)
	}
	return nil, cl, Leading
}

// Leave is called by a waiter that stops waiting (its context ended). When
// no waiter is left, the execution's context is cancelled and the execution
// is detached, so that later callers start afresh and its result is not
// stored.
func (c *Core) Leave(cl *Call) {
	sh := c.shardOf(cl.H)
	sh.Mu.Lock()
	cl.Waiters--
	last := cl.Waiters == 0
	if last {
		sh.Calls.remove(cl)
	}
	sh.Mu.Unlock()
	if last {
		cl.cancelOrRelease()
	}
}

// forget detaches cl from its shard's table (calls, or refreshes for a
// refresh) if it is still there.
func (c *Core) forget(cl *Call) {
	sh := c.shardOf(cl.H)
	sh.Mu.Lock()
	sh.detach(cl)
	sh.Mu.Unlock()
}

// Execute runs f as the execution of cl: it times it, stores its result if
// judge says so and cl is still current, and wakes the waiters. A panic in
// f is recovered into cl (the caller re-panics); runtime.Goexit is recorded
// and goes on unwinding the goroutine.
func (c *Core) Execute(cl *Call, judge Verdict, f func() any) {
	start := c.Now() // the monotonic clock only: cheaper than time.Now
	normal, recovered := false, false
	defer func() {
		if !normal && !recovered {
			cl.Goexit = true
		}
		if !normal {
			c.Rec.Execution(time.Duration(c.Now()-start), true)
			c.forget(cl)
		}
		c.wake(cl)
	}()
	func() {
		defer func() {
			if !normal {
				if r := recover(); r != nil {
					cl.Panicked, cl.Pval, cl.Stack = true, r, debug.Stack()
				}
			}
		}()
		cl.Val = f()
		normal = true
	}()
	if !normal {
		recovered = true
		return
	}
	c.finish(cl, judge, time.Duration(c.Now()-start), true)
}

// Complete ends cl, an execution run elsewhere (by a batch, whose one
// function call serves many keys, and which counts that call's execution
// itself), with its result val: it stores val if judge says so and cl is
// still current, and wakes the waiters, as Execute does after f returns.
func (c *Core) Complete(cl *Call, judge Verdict, val any) {
	cl.Val = val
	c.finish(cl, judge, 0, false)
	c.wake(cl)
}

// Fail ends cl, an execution run elsewhere (see Complete), with a panic:
// its waiters get pval and stack (the root makes them a *PanicError).
func (c *Core) Fail(cl *Call, pval any, stack []byte) {
	cl.Panicked, cl.Pval, cl.Stack = true, pval, stack
	c.forget(cl)
	c.wake(cl)
}

// wake ends cl for its waiters: a panicked execution may serve a stale
// result (see serveStale), the execution's context is released, and done
// is closed.
func (c *Core) wake(cl *Call) {
	if cl.Panicked {
		c.serveStale(cl)
	}
	cl.cancelOrRelease()
	// cl is out of its shard's table (Store or forget took it out, under
	// the shard's lock), so no caller can join it and make Done any more.
	if cl.Done != nil {
		close(cl.Done)
	}
}

// finish decides on cl's result, which its execution returned after took:
// it counts the execution when count is set, stores the result if judge
// says so and cl is still current, or detaches cl.
func (c *Core) finish(cl *Call, judge Verdict, took time.Duration, count bool) {
	if cl.Verify != nil && !cl.Verify(cl.Key) {
		// A caller that left changed what the key was computed from: the
		// result is another call's. Nothing is stored, no stale result is
		// served, and the waiters start over (see StartsOver).
		cl.Moved = true
		if count {
			c.Rec.Execution(took, false)
		}
		c.forget(cl)
		return
	}
	failed, store, ttl := judge.Judge(cl.Val)
	if count {
		c.Rec.Execution(took, failed)
	}
	if failed && cl.ctx != nil && cl.ctx.Err() != nil {
		// The execution's context ended (its starter's deadline passed, or
		// every caller left): its error most likely says so, and nothing
		// about the arguments. It is never stored, and a deadline error
		// sends the waiters that have time left to a fresh execution.
		store = false
		err, _ := failure(cl).(error)
		cl.expired = cl.ctx.Err() == context.DeadlineExceeded && errors.Is(err, context.DeadlineExceeded)
	}
	if failed && c.serveStale(cl) {
		store = false // keep the stale entry for its window
		cl.expired = false
	}
	if !failed && !store {
		c.dropStale(cl) // the function answers: an outage's stale entry is over
	}
	if !store || !c.Store(cl.Key, cl.H, cl.Val, ttl, cl.Refs, cl) {
		c.forget(cl)
	}
}

// Run runs cl's execution on the calling goroutine: a new one, or its
// leader's own when the leader cannot leave (see StartInline).
func (c *Core) Run(cl *Call, judge Verdict, f func() any) {
	// A leader that runs its execution on its own goroutine was recorded
	// by Join (lead): no second atomic store.
	if me := goid.Current(); cl.g.Load() != me {
		cl.g.Store(me)
	}
	c.Execute(cl, judge, f)
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
	if !Tagged(n) || fo == nil {
		return nil, Leading, false
	}
	fx, now := FreshOf(n), c.Now()
	if fx.TtlEnd == 0 || now < fx.TtlEnd {
		if fx.RefreshAt == 0 {
			return nil, Leading, false
		}
		if sh.Calls.find(k, h) != nil {
			return nil, Late, false // an execution in flight will store a newer result
		}
		if rf := sh.refreshes[string(k)]; rf != nil && now < rf.until {
			return nil, Late, false // one refresh at a time
		}
		cl = &Call{Key: string(k), H: h, Done: make(chan struct{}), base: n, until: AddTime(now, fo.refreshLimit(fx))}
		if sh.refreshes == nil {
			sh.refreshes = make(map[string]*Call)
		}
		sh.refreshes[cl.Key] = cl
		return cl, Late, false
	}
	if fx.retryAt == 0 || now >= fx.RemoveAt {
		return nil, Leading, false // no outage, or its window has ended
	}
	if fl := sh.Calls.find(k, h); fl != nil {
		if fl.g.Load() == me || inside(outer, fl) {
			return nil, Leading, false // join makes it reentrant
		}
		return nil, Stale, false // the retry in flight serves nobody
	}
	if now < fx.retryAt {
		return nil, Stale, false
	}
	fx.backoff = min(2*fx.backoff, time.Duration(fx.RemoveAt-fx.TtlEnd))
	fx.retryAt = AddTime(now, fx.backoff)
	return nil, Leading, true
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
	return cl.withFlight(cl.ctx)
}

// Refresh executes cl, a refresh (see startRefresh); judge decides on its
// results as for any execution.
func (c *Core) Refresh(cl *Call, judge Verdict, f func() any) {
	// A call for its own key from inside the refresh can tell (see join).
	cl.g.Store(goid.Current())
	failed := true // until the function returns normally
	defer c.endRefresh(cl, &failed)
	c.Execute(cl, c.refreshJudge(cl, judge, &failed), f)
}

// CompleteRefresh ends cl, a refresh run elsewhere (a batch's), with its
// result val, as Refresh does when its function returns val.
func (c *Core) CompleteRefresh(cl *Call, judge Verdict, val any) {
	failed := true
	defer c.endRefresh(cl, &failed)
	c.Complete(cl, c.refreshJudge(cl, judge, &failed), val)
}

// FailRefresh ends cl, a refresh run elsewhere, with a panic (see Fail):
// the old entry stays until its TTL.
func (c *Core) FailRefresh(cl *Call, pval any, stack []byte) {
	failed := true
	defer c.endRefresh(cl, &failed)
	c.Fail(cl, pval, stack)
}

// refreshJudge is judge for cl, a refresh: a failure keeps the old entry
// until its TTL, and a result judge rejects removes it (it is not to be
// served either). It sets *failed to whether the result failed.
func (c *Core) refreshJudge(cl *Call, judge Verdict, failed *bool) Verdict {
	return VerdictFunc(func(val any) (bool, bool, time.Duration) {
		fail, store, ttl := judge.Judge(val)
		*failed = fail
		if fail {
			return true, false, 0 // the old entry stays until its TTL
		}
		if !store {
			c.dropFor(cl)
		}
		return false, store, ttl
	})
}

// endRefresh counts cl, a refresh that ended, as failed or succeeded.
func (c *Core) endRefresh(cl *Call, failed *bool) {
	if *failed {
		c.Rec.RefreshFailed()
		if c.Logger != nil {
			c.Logger.Warn("memo: a refresh failed; the old entry is kept until its TTL", slog.String("cache", c.Name), slog.Any("error", failure(cl)))
		}
		return
	}
	c.Rec.RefreshSucceeded()
}

// dropFor removes cl's entry, the one it refreshed, if it is still there,
// and detaches cl.
func (c *Core) dropFor(cl *Call) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	sh := c.shardOf(cl.H)
	sh.Mu.Lock()
	sh.detach(cl)
	n := c.Index.Get(UnsafeBytes(cl.Key), cl.H)
	sh.Mu.Unlock()
	if n != nil && n == cl.base {
		c.dropNode(n)
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
	if n == nil || n.Value.X() == nil || !Tagged(n) || alive(n, c) {
		return
	}
	c.dropNode(n)
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
	if n == nil || n.Value.X() == nil || !Tagged(n) {
		return false
	}
	fx := FreshOf(n)
	now := c.Now()
	if fx.RemoveAt <= fx.TtlEnd || now < fx.TtlEnd || now >= fx.RemoveAt {
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
		sh.Mu.Lock()
		if fx.retryAt == 0 { // the outage starts
			fx.backoff = cl.Fo.retryBase(fx)
		}
		fx.retryAt = AddTime(now, fx.backoff)
		sh.Mu.Unlock()
	}
	return true
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

// StaleServed counts a caller that got cl's result, if that was stale.
func (c *Core) StaleServed(cl *Call) {
	if cl.stale {
		c.Rec.StaleServed(1)
	}
}

// Until returns when cl, a refresh, must end at the latest (see
// StartRefresh), on the wall clock.
func (cl *Call) Until(c *Core) time.Time {
	return time.Now().Add(time.Duration(cl.until - c.Now()))
}
