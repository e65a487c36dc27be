package engine

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/goid"
)

// Call is one execution in flight. Its table is the shard of its key, and
// its waiters count and table membership change under that shard's lock.
// Every other field is written by the execution before done is closed,
// or by its leader before the execution starts.
type Call struct {
	Key  string
	H    uint64
	Refs []unsafe.Pointer // objects the key refers to by identity
	Done chan struct{}

	Val      any // the results
	Panicked bool
	Pval     any // the panic value
	Stack    []byte
	Goexit   bool

	Fo    *FreshOpts // the function's freshness options (fresh.go), or nil
	stale bool       // val is a stale result served for a failure
	// AgeCap is the tier's bound on the age of the entry stored (see
	// TierBinding.MaxLocalAge), 0 for none: the entry is removed by then.
	AgeCap time.Duration
	// base is, for a refresh (fresh.go), the entry it refreshes: its
	// result is stored only over that very entry (nothing newer stored,
	// nothing invalidated since). until is when the refresh's time is up
	// (its context's deadline, on the cache's clock): then it no longer
	// keeps another refresh of its key from starting. Both are set when
	// the call is made and never change; nil and 0 for other executions,
	// which live in their shard's calls, refreshes in its refreshes.
	base  *Node
	until int64

	// g is the goroutine that runs the execution (curG), 0 until it is
	// known, so that a call made on it for the same key does not wait.
	g atomic.Uintptr
	// outer is the execution in whose context this one was started, if
	// any: with the contexts' values, the chain of executions a context
	// function runs inside (see inside).
	outer *Call
	// ctx is the execution's context (context functions only), and
	// deadline the deadline it carries, that of the caller that started it.
	ctx      context.Context
	deadline time.Time
	// expired is set when the execution failed with a deadline error once
	// its context's deadline had passed: waiters with time left start over.
	expired bool
	// Verify, when not nil, re-encodes the key from the arguments the
	// execution ran on and reports whether it is still key: set for an
	// execution that may outlive its callers when its key may be read
	// through memory that no copy protects (WithKey, a CacheKeyer pointer;
	// see wrapped.recheck). moved is set when it was not: the result belongs
	// to other arguments, is not stored, and every waiter starts over.
	Verify func(key string) bool
	Moved  bool

	// waiters counts the callers waiting that may still leave (context
	// callers); when the last one leaves, cancel stops the execution.
	waiters int
	cancel  context.CancelFunc
}

// FlightKey is the context key under which an execution's context holds
// its *call.
type FlightKey struct{}

// inside reports whether cl is outer or an execution outer was started
// inside of: a caller whose context carries outer is running inside cl.
func inside(outer, cl *Call) bool {
	for p := outer; p != nil; p = p.outer {
		if p == cl {
			return true
		}
	}
	return false
}

// A Role says what Join made of a call.
type Role int

const (
	Found     Role = iota // a live entry was found: its value is the result
	Late                  // an entry due for a refresh was found: its value is the result, and cl, if not nil, the refresh to start (fresh.go)
	Stale                 // an entry in an outage (fresh.go's serveStale) was found: its stale value is the result, at once
	Leading               // the caller must run a new execution
	Joining               // the caller waits on an execution in flight
	Reentrant             // the caller is inside the execution in flight for its key
)

// Join returns the entry stored for the encoded key k, or the execution
// in flight for it, which the caller then waits on, or a new execution
// that the caller must run. me is the caller's goroutine (curG) and outer
// the execution its context says it runs inside, if any: a caller that runs
// inside the execution in flight for its key must not wait on it (that
// would deadlock), and gets reentrant. A leader without a context runs the
// execution on its own goroutine: lead says so, and the call records me.
// fo is the caller's function's freshness options (nil for none). A
// refresh in flight (fresh.go) is never joined: it is not in the calls.
// Each call of join is a miss already counted by lookup, or a lookup of an
// entry due for a refresh, which its caller counts by what join made of it
// (see miss).
func (c *Core) Join(k []byte, h uint64, me uintptr, outer *Call, lead bool, fo *FreshOpts) (n *Node, cl *Call, r Role) {
	sh := c.shardOf(h)
	sh.mu.Lock()
	// Stores insert under the shard's lock, so a caller sees the entry or
	// the execution that will store it.
	retry := false
	if n = c.Index.Get(k, h); n != nil {
		if Live(n, c) {
			sh.mu.Unlock()
			return n, nil, Found
		}
		// A refresh due: a hit, and a refresh to start unless one runs; or
		// an outage: the stale value at once, or a retry to lead.
		if cl, r, retry = c.joinLate(sh, n, k, h, me, outer, fo); r != Leading {
			sh.mu.Unlock()
			return n, cl, r
		}
	}
	if cl = sh.calls[string(k)]; cl != nil {
		if cl.g.Load() == me || inside(outer, cl) {
			sh.mu.Unlock()
			return nil, cl, Reentrant
		}
		cl.waiters++
		sh.mu.Unlock()
		return nil, cl, Joining
	}
	cl = &Call{Key: string(k), H: h, Done: make(chan struct{}), waiters: 1, outer: outer}
	if lead {
		cl.g.Store(me)
	}
	sh.calls[cl.Key] = cl
	sh.mu.Unlock()
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
	sh.mu.Lock()
	cl.waiters--
	last := cl.waiters == 0
	if last && sh.calls[cl.Key] == cl {
		delete(sh.calls, cl.Key)
	}
	sh.mu.Unlock()
	if last && cl.cancel != nil {
		cl.cancel()
	}
}

// forget detaches cl from its shard's table (calls, or refreshes for a
// refresh) if it is still there.
func (c *Core) forget(cl *Call) {
	sh := c.shardOf(cl.H)
	sh.mu.Lock()
	sh.detach(cl)
	sh.mu.Unlock()
}

// detach takes cl out of sh's table, if it is still there. sh.mu is held.
func (sh *shard) detach(cl *Call) {
	m := sh.calls
	if cl.base != nil {
		m = sh.refreshes
	}
	if m[cl.Key] == cl {
		delete(m, cl.Key)
	}
}

// A Verdict tells execute whether to store a result, and for how long.
type Verdict func(val any) (failed, store bool, ttl time.Duration)

// Execute runs f as the execution of cl: it times it, stores its result if
// judge says so and cl is still current, and wakes the waiters. A panic in
// f is recovered into cl (the caller re-panics); runtime.Goexit is recorded
// and goes on unwinding the goroutine.
func (c *Core) Execute(cl *Call, judge Verdict, f func() any) {
	start := time.Now()
	normal, recovered := false, false
	defer func() {
		if !normal && !recovered {
			cl.Goexit = true
		}
		if !normal {
			c.Rec.Execution(time.Since(start), true)
			c.forget(cl)
		}
		if cl.Panicked {
			c.serveStale(cl)
		}
		if cl.cancel != nil {
			cl.cancel()
		}
		close(cl.Done)
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
	if cl.Verify != nil && !cl.Verify(cl.Key) {
		// A caller that left changed what the key was computed from: the
		// result is another call's. Nothing is stored, no stale result is
		// served, and the waiters start over (see startsOver).
		cl.Moved = true
		c.Rec.Execution(time.Since(start), false)
		c.forget(cl)
		return
	}
	failed, store, ttl := judge(cl.Val)
	c.Rec.Execution(time.Since(start), failed)
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

// Start makes the context of cl's execution, started by a caller with
// ctx: it keeps ctx's values and its deadline, is cancelled by cl.cancel
// (when the last caller leaves, or the execution ends), and carries cl, so
// that calls made inside the execution can tell (see join).
func (cl *Call) Start(ctx context.Context) context.Context {
	base := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		cl.deadline = d
		cl.ctx, cl.cancel = context.WithDeadline(base, d)
	} else {
		cl.ctx, cl.cancel = context.WithCancel(base)
	}
	return context.WithValue(cl.ctx, FlightKey{}, cl)
}

// StartInline makes the context of cl's execution when its leader runs it
// on its own goroutine (see Run) with ctx, which nothing can cancel
// (ctx.Done() is nil): ctx itself, carrying cl, so that calls made inside
// the execution can tell (see Join).
func (cl *Call) StartInline(ctx context.Context) context.Context {
	cl.ctx = ctx
	return context.WithValue(ctx, FlightKey{}, cl)
}

// Run runs cl's execution on the calling goroutine: a new one, or its
// leader's own when the leader cannot leave (see StartInline).
func (c *Core) Run(cl *Call, judge Verdict, f func() any) {
	cl.g.Store(goid.Current())
	c.Execute(cl, judge, f)
}

// StartsOver reports whether a waiter with ctx, woken by the end of cl,
// must start (or join) a fresh execution rather than take cl's result: cl
// failed on the deadline of the caller that started it, which was not the
// waiter's own (the waiter's context is live and ends later, if at all).
func (cl *Call) StartsOver(ctx context.Context) bool {
	if cl.Moved && ctx.Err() == nil {
		return true // its result is for arguments that are not the waiter's
	}
	if !cl.expired || ctx.Err() != nil {
		return false
	}
	d, ok := ctx.Deadline()
	return !ok || d.After(cl.deadline)
}
