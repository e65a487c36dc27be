package memo

import (
	"context"
	"runtime/debug"
	"slices"
	"time"
	"unsafe"
)

// Call coalescing, after golang.org/x/sync/singleflight: one execution per
// key in flight, its result handed to every caller that asked meanwhile.
// What singleflight lacks is added: callers with their own contexts, and
// invalidation of an execution in flight.

// call is one execution in flight. Its table is the shard of its key, and
// its waiters count and table membership change under that shard's lock.
// Every other field is written by the execution before done is closed.
type call struct {
	key  string
	h    uint64
	refs []unsafe.Pointer // objects the key refers to by identity
	done chan struct{}

	val      any // the results
	panicked bool
	pval     any // the panic value
	stack    []byte
	goexit   bool

	fo    *freshOpts // the function's freshness options (fresh.go), or nil
	stale bool       // val is a stale result served for a failure

	// waiters counts the callers waiting that may still leave (context
	// callers); when the last one leaves, cancel stops the execution.
	waiters int
	cancel  context.CancelFunc
}

// join returns the value stored for the encoded key k, or the execution in
// flight for it, which the caller then waits on, or a new execution that
// the caller must run (leader). Each call of join is a miss already counted
// by lookup.
func (c *Cache) join(k []byte, h uint64) (val any, ok bool, cl *call, leader bool) {
	sh := c.shardOf(h)
	sh.mu.Lock()
	// Stores insert under the shard's lock, so a caller sees the entry or
	// the execution that will store it.
	if n := c.index.get(k, h); n != nil {
		if live(n, c) {
			sh.mu.Unlock()
			return n.Value.val, true, nil, false
		}
		// A refresh due: a hit, and a refresh to start unless one runs.
		if v, ok, cl := c.joinLate(sh, n, k, h); ok {
			return v, true, cl, cl != nil
		}
	}
	if cl = sh.calls[string(k)]; cl != nil {
		cl.waiters++
		sh.mu.Unlock()
		return nil, false, cl, false
	}
	cl = &call{key: string(k), h: h, done: make(chan struct{}), waiters: 1}
	sh.calls[cl.key] = cl
	sh.mu.Unlock()
	return nil, false, cl, true
}

// leave is called by a waiter that stops waiting (its context ended). When
// no waiter is left, the execution's context is cancelled and the execution
// is detached, so that later callers start afresh and its result is not
// stored.
func (c *Cache) leave(cl *call) {
	sh := c.shardOf(cl.h)
	sh.mu.Lock()
	cl.waiters--
	last := cl.waiters == 0
	if last && sh.calls[cl.key] == cl {
		delete(sh.calls, cl.key)
	}
	sh.mu.Unlock()
	if last && cl.cancel != nil {
		cl.cancel()
	}
}

// forget detaches cl from its shard's table if it is still there.
func (c *Cache) forget(cl *call) {
	sh := c.shardOf(cl.h)
	sh.mu.Lock()
	if sh.calls[cl.key] == cl {
		delete(sh.calls, cl.key)
	}
	sh.mu.Unlock()
}

// A verdict tells execute whether to store a result, and for how long.
type verdict func(val any) (failed, store bool, ttl time.Duration)

// execute runs f as the execution of cl: it times it, stores its result if
// judge says so and cl is still current, and wakes the waiters. A panic in
// f is recovered into cl (the caller re-panics); runtime.Goexit is recorded
// and goes on unwinding the goroutine.
func (c *Cache) execute(cl *call, judge verdict, f func() any) {
	start := time.Now()
	normal, recovered := false, false
	defer func() {
		if !normal && !recovered {
			cl.goexit = true
		}
		if !normal {
			c.rec.Execution(time.Since(start), true)
			c.forget(cl)
		}
		if cl.panicked {
			c.serveStale(cl)
		}
		if cl.cancel != nil {
			cl.cancel()
		}
		close(cl.done)
	}()
	func() {
		defer func() {
			if !normal {
				if r := recover(); r != nil {
					cl.panicked, cl.pval, cl.stack = true, r, debug.Stack()
				}
			}
		}()
		cl.val = f()
		normal = true
	}()
	if !normal {
		recovered = true
		return
	}
	failed, store, ttl := judge(cl.val)
	c.rec.Execution(time.Since(start), failed)
	if failed && c.serveStale(cl) {
		store = false // keep the stale entry for its window
	}
	if !store || !c.store(cl.key, cl.h, cl.val, ttl, cl.refs, cl) {
		c.forget(cl)
	}
}

// result returns what a caller that did not run the execution gets: the
// value, or a panic with *PanicError.
func (cl *call) result() any {
	switch {
	case cl.panicked:
		panic(&PanicError{Value: cl.pval, Stack: cl.stack})
	case cl.goexit:
		panic(&PanicError{Value: errGoexit})
	}
	return cl.val
}

// miss is the miss path of every memoized call, Decorate's and the typed
// ones: s holds the key, whose lookup has missed, and miss takes ownership
// of it. It returns the stored result if one appeared meanwhile, joins the
// execution in flight for the key, or leads a new one, which run performs.
//
// Without a context (ctx nil) the leader runs the function in its own
// goroutine, as singleflight does. With one, the execution runs in a new
// goroutine under a context that keeps ctx's values and is cancelled when
// the last caller leaves, and every caller, the leader too, waits until the
// execution is done or its own context ends (then it gets cancelled(ctx)).
//
// detach, when not nil, returns a run that works on a private copy of the
// call's arguments (see clone.go), for an execution that outlives its
// caller: a refresh (WithRefreshAfter).
func miss[T any](w *wrapped, s *keyState, h uint64, ctx context.Context, run func(context.Context) T, detach func() func(context.Context) T, cancelled func(context.Context) T) T {
	if s.never {
		return uncacheable(w, s, ctx, run, cancelled)
	}
	if ctx != nil && ctx.Err() != nil {
		putState(s)
		return cancelled(ctx)
	}
	v, ok, cl, leader := w.c.join(s.buf, h)
	if leader {
		cl.fo = w.fo
		if len(s.refs) > 0 {
			cl.refs = slices.Clone(s.refs)
		}
	}
	putState(s)
	if ok {
		if leader { // a refresh due
			startRefresh(w, cl, ctx, run, detach)
		}
		return as[T](v)
	}
	if ctx == nil {
		if !leader {
			<-cl.done
			w.c.rec.Coalesced(1)
			w.c.staleServed(cl)
			return as[T](cl.result())
		}
		w.c.execute(cl, w.judge, func() any { return run(nil) })
		if cl.panicked {
			panic(cl.pval)
		}
		w.c.staleServed(cl)
		return as[T](cl.val)
	}
	if leader {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cl.cancel = cancel
		go w.c.execute(cl, w.judge, func() any { return run(runCtx) })
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		w.c.leave(cl)
		return cancelled(ctx)
	}
	if leader {
		if cl.panicked {
			panic(cl.pval)
		}
	} else {
		w.c.rec.Coalesced(1)
	}
	w.c.staleServed(cl)
	return as[T](cl.result())
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
