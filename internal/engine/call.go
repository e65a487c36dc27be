package engine

import (
	"context"
	"fmt"
	"iter"
	"math"
	"reflect"
	"sync"
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
	// Done is closed when the execution ends. A leader that runs the
	// execution on its own goroutine (Join's lead: without a context, or
	// with one that can never end) does not need it: the first caller that
	// joins makes it, under the shard's lock; it stays nil when nobody
	// joins.
	Done chan struct{}

	Val any // the results
	// held is the entry Hold made for Val, which Store takes rather than
	// make one; nil when Val was boxed on its own.
	held     *Node
	Panicked bool
	Goexit   bool
	// pooled says that cl is the Call of a keyedCall from newCall's pool
	// (see Recycle).
	pooled bool
	Pval   any // the panic value
	Stack  []byte

	Fo    *FreshOpts // the function's freshness options (flight.go), or nil
	stale bool       // val is a stale result served for a failure
	// AgeCap is the tier's bound on the age of the entry stored (see
	// TierBinding.MaxLocalAge), 0 for none: the entry is removed by then.
	AgeCap time.Duration
	// base is, for a refresh (flight.go), the entry it refreshes: its
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
	// fctx is the context the execution's function gets: ctx (or the
	// caller's), carrying cl (see withFlight); inline is it instead for an
	// execution its leader runs on its own goroutine with a context
	// (StartInline), in an allocation of its own.
	fctx   flightCtx
	inline *flightCtx
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

	// Waiters counts the callers waiting that may still leave (context
	// callers); when the last one leaves, cancel stops the execution.
	Waiters int
	cancel  context.CancelFunc
	// release and released: see Attach.
	release  func(*Call)
	released atomic.Bool
	// group, when not nil, is shared by the calls one function call runs
	// (a batch's, see SetGroup): a call made inside it for any of their
	// keys is inside each of them.
	group any
}

// FlightKey is the context key under which an execution's context holds
// its *call.
type FlightKey struct{}

// flightCtx is the context an execution's function gets: its parent's
// values, deadline and cancellation, and the execution's Call under
// FlightKey, as context.WithValue(parent, FlightKey{}, cl) would make it,
// but kept in the Call's own allocation (Start), or in one of its own that
// lets go of the Call when the execution ends (StartInline), so that the
// Call can be reused.
type flightCtx struct {
	context.Context
	// cl is the execution's Call; once the execution has ended
	// (EndInline), the Call's outer (nil for none): the context is still
	// inside the executions its parent is inside.
	cl atomic.Pointer[Call]
	// pinned is set once the context has handed cl out (see Value). It is
	// the context's, not cl's: a Value racing with the end of the
	// execution must write nothing into a Call that Recycle may be
	// resetting for another execution.
	pinned atomic.Bool
}

// Value returns the execution's Call for FlightKey, and the parent's value
// for any other key. A Call handed out so is pinned: never reused (see
// Recycle), since the caller may keep it as the outer of an execution of
// its own (see inside). The pin is set before the Call is checked again:
// either EndInline, which detaches first and reads the pin after, sees it,
// or Value sees the Call gone and hands out what the context carries now:
// the ended execution's outer, if any (pinned when it was handed out to
// the execution's caller), so that a call made with the context after the
// execution has ended is inside what the execution was inside: a call for
// the key of an execution it started inside of still runs on its own
// rather than wait on that execution (which may be waiting on it).
func (fc *flightCtx) Value(key any) any {
	if _, ok := key.(FlightKey); ok {
		if fc.cl.Load() == nil {
			return nil
		}
		if !fc.pinned.Load() {
			fc.pinned.Store(true)
		}
		if cl := fc.cl.Load(); cl != nil {
			return cl
		}
		return nil
	}
	return fc.Context.Value(key)
}

// String names the context, as context.WithValue's does.
func (fc *flightCtx) String() string {
	return fmt.Sprint(fc.Context) + ".WithValue(engine.FlightKey, memo execution)"
}

// withFlight returns ctx carrying cl, for cl's execution (see flightCtx).
// It is called once per Call, before the execution starts.
func (cl *Call) withFlight(ctx context.Context) context.Context {
	cl.fctx.Context = ctx
	cl.fctx.cl.Store(cl)
	return &cl.fctx
}

// inside reports whether cl is outer or an execution outer was started
// inside of: a caller whose context carries outer is running inside cl.
func inside(outer, cl *Call) bool {
	for p := outer; p != nil; p = p.outer {
		if p == cl || (p.group != nil && p.group == cl.group) {
			return true
		}
	}
	return false
}

// A Role says what Join made of a call.
type Role int

const (
	Found     Role = iota // a live entry was found: its value is the result
	Late                  // an entry due for a refresh was found: its value is the result, and cl, if not nil, the refresh to start (flight.go)
	Stale                 // an entry in an outage (flight.go's serveStale) was found: its stale value is the result, at once
	Leading               // the caller must run a new execution
	Joining               // the caller waits on an execution in flight
	Reentrant             // the caller is inside the execution in flight for its key
)

// detach takes cl out of sh's table, if it is still there. sh.mu is held.
func (sh *shard) detach(cl *Call) {
	if cl.base == nil {
		sh.Calls.remove(cl)
	} else if sh.refreshes[cl.Key] == cl {
		delete(sh.refreshes, cl.Key)
	}
}

// A Verdict tells Execute whether to store a result, and for how long. It
// is an interface, so that a memoized function can be its own Verdict
// without a func value made for it.
type Verdict interface {
	Judge(val any) (failed, store bool, ttl time.Duration)
}

// VerdictFunc is a func as a Verdict.
type VerdictFunc func(val any) (failed, store bool, ttl time.Duration)

// Judge calls f.
func (f VerdictFunc) Judge(val any) (failed, store bool, ttl time.Duration) { return f(val) }

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
	return cl.withFlight(cl.ctx)
}

// Attach readies cl, an execution that runs elsewhere (a batch, whose one
// function call serves many keys): release is called, in place of
// cancelling a context of cl's own, once, when cl's last caller leaves (see
// Leave) or cl ends, whichever comes first. Its leader calls it before it
// waits, as it would Start; Bind gives the execution its context later.
func (cl *Call) Attach(release func(*Call)) {
	cl.release = release
}

// Released reports whether cl's release (see Attach) has been called.
func (cl *Call) Released() bool { return cl.released.Load() }

// cancelOrRelease is called when cl's last caller leaves and when cl ends:
// it cancels cl's context, or calls its release the first time.
func (cl *Call) cancelOrRelease() {
	switch {
	case cl.release != nil:
		if cl.released.CompareAndSwap(false, true) {
			cl.release(cl)
		}
	case cl.cancel != nil:
		cl.cancel()
	}
}

// Bind sets the context of cl's execution, attached earlier (see Attach)
// with none, when the execution starts: a batch's merged context and the
// deadline it carries (zero for none).
func (cl *Call) Bind(ctx context.Context, deadline time.Time) {
	cl.ctx, cl.deadline = ctx, deadline
}

// SetGroup marks cl as one of the calls that one function call runs
// together (a batch's): g is the same comparable pointer for all of them,
// and a call made inside that function call (its context carries one of
// them) for the key of any of them does not wait on it (see Join). Its
// leader calls it before it waits.
func (cl *Call) SetGroup(g any) { cl.group = g }

// RunsHere records the calling goroutine as the one that runs cl's
// execution (a batch's goroutine): a call for cl's key made on it does not
// wait on cl (see Join).
func (cl *Call) RunsHere() { cl.g.Store(goid.Current()) }

// StartInline makes the context of cl's execution when its leader runs it
// on its own goroutine (see Run) with ctx, which nothing can cancel
// (ctx.Done() is nil): ctx itself, carrying cl, so that calls made inside
// the execution can tell (see Join). The leader calls EndInline once the
// execution has ended.
func (cl *Call) StartInline(ctx context.Context) context.Context {
	cl.ctx = ctx
	fc := &flightCtx{Context: ctx}
	fc.cl.Store(cl)
	cl.inline = fc
	return fc
}

// EndInline ends what StartInline began: the context the execution's
// function got, which the function may have kept (a goroutine it started,
// a value it returned), no longer carries cl but cl's outer, so that
// Recycle may reuse cl unless the context handed it out (see
// flightCtx.Value).
func (cl *Call) EndInline() { cl.inline.cl.Store(cl.outer) }

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

// shard holds the executions in flight for part of the key space: those
// callers join (Calls, see flights), and refreshes (flight.go), which
// nobody joins; the latter map is made by the shard's first refresh. A
// shard is one 64-byte line.
type shard struct {
	Mu        sync.Mutex
	Calls     flights
	refreshes map[string]*Call
	_         [64 - 48]byte
}

// flights is a shard's table of executions in flight that callers join
// (shard.Calls), by encoded key: open addressing over the keys' hashes
// (Call.H), linear probing, at most half full, with backward-shift
// deletion, which leaves no tombstones. A miss inserts its execution and
// its store takes it out again, so that the table is mostly empty: a Go map
// costs more there (it draws a new hash seed each time it empties), and its
// key is a copy of the Call's. The zero flights is an empty table; the
// slots are made by the first insert. Guarded by the shard's lock.
type flights struct {
	slots []*Call // a power of two long; nil: empty
	n     int     // executions in the table
}

// home returns the first slot to probe for the hash h. The low bits of h
// pick the shard (Core.shardOf): the high ones pick the slot.
func (t *flights) home(h uint64) uint64 { return (h >> 32) & uint64(len(t.slots)-1) }

// find returns the execution in flight for the encoded key k of hash h, or
// nil.
func (t *flights) find(k []byte, h uint64) *Call {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for p := t.home(h); ; p = (p + 1) & mask {
		cl := t.slots[p]
		if cl == nil {
			return nil
		}
		if cl.H == h && cl.Key == string(k) {
			return cl
		}
	}
}

// insert adds cl, whose key is not in the table.
func (t *flights) insert(cl *Call) {
	if 2*(t.n+1) > len(t.slots) {
		t.resize(max(8, 2*len(t.slots)))
	}
	t.place(cl)
	t.n++
}

// place puts cl in the first empty slot from its home.
func (t *flights) place(cl *Call) {
	mask := uint64(len(t.slots) - 1)
	p := t.home(cl.H)
	for t.slots[p] != nil {
		p = (p + 1) & mask
	}
	t.slots[p] = cl
}

// resize moves the executions to a table of n slots.
func (t *flights) resize(n int) {
	old := t.slots
	t.slots = make([]*Call, n)
	for _, cl := range old {
		if cl != nil {
			t.place(cl)
		}
	}
}

// remove takes cl out of the table and reports whether it was there.
func (t *flights) remove(cl *Call) bool {
	if t.n == 0 {
		return false
	}
	mask := uint64(len(t.slots) - 1)
	for p := t.home(cl.H); ; p = (p + 1) & mask {
		switch t.slots[p] {
		case nil:
			return false
		case cl:
			t.vacate(p)
			return true
		}
	}
}

// removeKey takes the execution for the encoded key k of hash h, if any,
// out of the table.
func (t *flights) removeKey(k []byte, h uint64) {
	if cl := t.find(k, h); cl != nil {
		t.remove(cl)
	}
}

// vacate empties slot p, moving back the executions after it that may
// take its place (backward-shift deletion).
func (t *flights) vacate(p uint64) {
	mask := uint64(len(t.slots) - 1)
	for q := (p + 1) & mask; t.slots[q] != nil; q = (q + 1) & mask {
		// The execution at q may move to the hole at p if its home is not
		// in (p, q], cyclically.
		if home := t.home(t.slots[q].H); (q-home)&mask >= (q-p)&mask {
			t.slots[p] = t.slots[q]
			p = q
		}
	}
	t.slots[p] = nil
	t.n--
}

// clear empties the table (its slots stay).
func (t *flights) clear() {
	clear(t.slots)
	t.n = 0
}

// All yields the executions in the table, for tests (under the shard's
// lock).
func (t *flights) All() iter.Seq[*Call] {
	return func(yield func(*Call) bool) {
		for _, cl := range t.slots {
			if cl != nil && !yield(cl) {
				return
			}
		}
	}
}

// FreshOpts is what a decorated function keeps of the options above; nil
// when none is given.
type FreshOpts struct {
	Refresh, Stale time.Duration
	TtlFunc        func([]any) time.Duration
	CacheIf        func([]any) bool
	// Entries says whether the function's entries need a freshX.
	Entries bool
}

// refreshLimit returns how long a refresh of fx's entry may run: the
// longer of the entry's TTL and twice the refresh interval (see
// WithRefreshAfter).
func (fo *FreshOpts) refreshLimit(fx *FreshX) time.Duration {
	d := 2 * fo.Refresh
	if fx.TtlEnd != 0 && fx.RefreshAt != math.MaxInt64 {
		d = max(d, time.Duration(fx.TtlEnd-(fx.RefreshAt-int64(fo.Refresh))))
	}
	return d
}

// retryBase returns the first back-off of an outage of fx's entry: the
// refresh interval, or 1 s without one, at most the stale window.
func (fo *FreshOpts) retryBase(fx *FreshX) time.Duration {
	d := fo.Refresh
	if d <= 0 {
		d = time.Second
	}
	return min(d, time.Duration(fx.RemoveAt-fx.TtlEnd))
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

// inlineKey is the most of a key newCall keeps in the Call's own
// allocation (a function number and an 8-byte argument, or a short string).
const inlineKey = 24

// An entry copies every key of up to maxInline bytes (see ownKey), and so
// every key kept in a Call's own allocation, which Recycle reuses.
var _ [maxInline - inlineKey]struct{}

// keyedCall is a Call with its short key in the same allocation (see
// newCall).
type keyedCall struct {
	cl Call
	kb [inlineKey]byte
}

// calls holds keyedCalls that Recycle found no goroutine but their leader
// could still reach.
var calls = sync.Pool{New: func() any { return new(keyedCall) }}

// newCall returns a Call for the encoded key k. A short key is kept in the
// same allocation as the Call (it is never stored beyond the Call: an
// entry copies keys this short into its own allocation, see NewNode), which
// comes from the pool Recycle fills.
func newCall(k []byte) *Call {
	if len(k) <= inlineKey && len(k) > 0 {
		kc := calls.Get().(*keyedCall)
		copy(kc.kb[:], k)
		kc.cl.Key = unsafe.String(&kc.kb[0], len(k))
		kc.cl.pooled = true
		return &kc.cl
	}
	return &Call{Key: string(k)}
}

// Recycle returns cl, an execution that its leader ran on its own goroutine
// without a context (Join's lead, and Run with no context made for it) and
// that has ended normally, to the pool newCall takes from, when nothing but
// its leader can still reach it; the leader must not use cl after. That is
// when nobody joined it (Done is still nil: a joiner makes it under the
// shard's lock, and cl left its shard's table, under that lock, before the
// execution ended; see wake), no context carries it (ctx: the function
// got none, so no call made inside the execution, nor any goroutine it
// started, can name cl as its outer), and it is no refresh, batch call or
// call whose arguments are rechecked. Otherwise Recycle does nothing, and
// the collector frees cl once unreachable. A Call reused for another key,
// or the same key, is then compared (Store's sh.Calls.remove(fl)) only by
// its new leader: no stale comparison can succeed.
func (c *Core) Recycle(cl *Call) {
	if !cl.pooled || cl.Done != nil || cl.fctx.cl.Load() != nil || cl.cancel != nil || cl.release != nil ||
		cl.group != nil || cl.base != nil || cl.Verify != nil || cl.Panicked || cl.Goexit {
		return
	}
	if cl.ctx != nil && (cl.inline == nil || cl.inline.cl.Load() == cl || cl.inline.pinned.Load()) {
		// A context carries cl (or did, and handed it out): only an
		// inline execution's, once ended (EndInline) and never handed
		// out, lets cl be reused.
		return
	}
	// Reset to a new Call (keeping nothing alive: the value, the options).
	// The checks above leave these fields the only ones such a Call can
	// hold (TestRecycleResetsEveryField keeps the list): they are reset one
	// by one, as zeroing the whole keyedCall would pay a write barrier for
	// each of its pointer words while the collector marks (4 % of an
	// all-miss call's time).
	cl.Key, cl.H, cl.Refs, cl.Val, cl.held, cl.Fo, cl.stale, cl.AgeCap = "", 0, nil, nil, nil, nil, false, 0
	cl.g.Store(0)
	cl.outer, cl.Waiters = nil, 0
	cl.ctx, cl.inline = nil, nil // an inline execution's (see StartInline)
	calls.Put((*keyedCall)(unsafe.Pointer(cl)))
}
