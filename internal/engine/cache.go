package engine

import (
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"

	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
)

// Core is a cache's engine (see Cache).
type Core struct {
	// What every hit reads comes first and is written rarely; the fields
	// written on misses and drains (mu, hits, rec) come after it.
	Index   index                   // key → entry, read without locks
	Reads   readBuffer              // uses recorded by hits
	shards  atomic.Pointer[[]shard] // executions in flight, by key hash; made by the first miss
	MaxSize int
	Ttl     time.Duration
	Kind    policies.Kind // the eviction policy (kept for tests and debugging)
	// addFirst: the policy decides admission (W-TinyLFU), so a new entry is
	// added before evicting, and the victim may be the new entry itself.
	addFirst bool
	Name     string       // WithName's, or "" (see Caches)
	Logger   *slog.Logger // WithLogger's, or nil: no logging
	epoch    time.Time    // expiry times are durations since epoch (monotonic)

	// Mu guards the policy, the expiry lists and the timer. Lock order: mu,
	// then a shard's mu, then a read stripe's mu.
	Mu      sync.Mutex
	policy  policies.Policy[item] // made by the first store
	expiry  []*expList
	timer   *time.Timer
	timerAt int64       // when the pending timer fires; 0 when none is pending
	watched *watchSet   // made by the first entry whose key refers to an object
	fresh   *freshState // the expiry heap and jitter (fresh.go); nil until needed

	Hits atomic.Uint64 // hits moved out of the read stripes by drains
	Rec  stats.Recorder
}

// Node is a cache entry: the policy's node holding an item.
type Node = policies.Node[item]

// item is what the cache keeps for one entry. The key lives right after
// the Node, in the same allocation (see newNode): its bytes when it is
// short, else its string header. The key, the value and the expiry time
// never change once the entry is in the index (a Set of an existing key
// makes a new Node), so lookups read them without a lock; the rest of an
// extra is written under Cache.mu.
type item struct {
	// val is the value, or, for an entry with a TTL, an *extra holding it
	// (no value stored by memo is an *extra, which is unexported). Entries
	// that never expire so pay nothing for expiry, and a Node is 48 bytes.
	val any
	// klen is the key's length, its bytes right after the Node; keyOut
	// set: a string header right after the Node holds the key.
	klen int
}

// keyOut marks item.klen of a key kept in a string of its own: the second
// highest bit of an int (keys are at most maxKeyLen bytes, far below it).
const keyOut = 1 << (strconv.IntSize - 2)

// nodeSize is the size of a Node, where its key starts.
const nodeSize = unsafe.Sizeof(Node{})

// keyAt returns where n's key, or its string header, lies.
func keyAt(n *Node) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(n), nodeSize) }

// keyOf returns n's encoded key. It shares n's memory: do not keep it
// beyond n (strings.Clone it).
func keyOf(n *Node) string {
	kl := n.Value.klen
	switch {
	case kl&keyOut != 0:
		return *(*string)(keyAt(n))
	case kl == 0: // the tombstone
		return ""
	}
	return unsafe.String((*byte)(keyAt(n)), kl)
}

// extra holds what only entries with a TTL need, so that the others stay
// small. A Node that has one holds it in its val.
type extra struct {
	val any // the entry's value
	// expires is when the entry expires, since Cache.epoch; set before
	// the entry is published. Negative for an entry that only the expiry
	// timer removes, at -expires (see sweptTTL): a hit on it reads no
	// clock.
	expires          int64
	exp              *expList // the expiry list holding the entry
	expPrev, expNext *Node
}

// x returns n's extra, or nil for an entry that never expires.
func (n *item) x() *extra {
	x, _ := n.val.(*extra)
	return x
}

// Value returns the value stored.
func (n *item) Value() any {
	if x, ok := n.val.(*extra); ok {
		return x.val
	}
	return n.val
}

// expires returns when n expires, since the cache's epoch; 0 = never.
func (n *item) expires() int64 {
	if x, ok := n.val.(*extra); ok {
		return x.at()
	}
	return 0
}

// at returns when x's entry expires, since the cache's epoch; 0 = never.
func (x *extra) at() int64 {
	if x.expires < 0 {
		return -x.expires
	}
	return x.expires
}

// ext returns n's extra, making it if needed. c.mu is held, and n is not
// published yet.
func ext(n *Node) *extra {
	x := n.Value.x()
	if x == nil {
		x = &extra{val: n.Value.val}
		n.Value.val = x
	}
	return x
}

// setExt makes x n's extra, holding n's value. c.mu is held, and n is not
// published yet.
func setExt(n *Node, x *extra) {
	x.val = n.Value.Value()
	n.Value.val = x
}

// shard holds the executions in flight for part of the key space: those
// callers join (calls), and refreshes (fresh.go), which nobody joins; the
// latter map is made by the shard's first refresh.
type shard struct {
	mu        sync.Mutex
	calls     map[string]*Call
	refreshes map[string]*Call
	_         [64 - 24]byte
}

// Init readies a new engine: at most maxSize entries of the policy kind,
// expiring after ttl (0: never); name and logger are the cache's for its
// log lines (logger nil: no logging); fresh is its jitter, or nil.
func (c *Core) Init(maxSize int, ttl time.Duration, kind policies.Kind, name string, logger *slog.Logger, fresh *freshState) {
	c.MaxSize, c.Ttl, c.Kind, c.Name, c.Logger = maxSize, ttl, kind, name, logger
	c.epoch = time.Now()
	c.fresh = fresh
	// W-TinyLFU weighs the candidate against the victim once both are
	// in; LRU and LFU evict first (see store).
	c.addFirst = kind == policies.WTinyLFU
	// Nothing else is made until it is needed (shards, index table, read
	// stripes, cleanups), so that a cache that is never used, such as that
	// of a method value made per instance, costs a few hundred bytes.
	c.Index.init()
	c.Reads.sampleMask = sampleRate - 1
	if c.addFirst {
		c.Reads.sampleMask = 0 // W-TinyLFU's sketch needs every use
	} else {
		c.Reads.record()
	}
}

// Made reports whether c was made by newCache: the zero Cache has no
// maximum size.
func (c *Core) Made() bool { return c.MaxSize > 0 }

// weak returns a weak pointer to c (for the few that need one, not kept
// in c, which would cost every cache 8 bytes).
func (c *Core) weak() weak.Pointer[Core] { return weak.Make(c) }

func (c *Core) shardOf(h uint64) *shard {
	sh := c.shards.Load()
	if sh == nil {
		sh = c.makeShards()
	}
	return &(*sh)[h&uint64(len(*sh)-1)]
}

// shardList returns the shards, or nil before the first miss.
func (c *Core) shardList() []shard {
	if sh := c.shards.Load(); sh != nil {
		return *sh
	}
	return nil
}

// makeShards makes the shards on the first call that needs them.
func (c *Core) makeShards() *[]shard {
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	s := make([]shard, n)
	for i := range s {
		s[i].calls = make(map[string]*Call)
	}
	if !c.shards.CompareAndSwap(nil, &s) {
		return c.shards.Load()
	}
	return &s
}

// Now returns the time since the cache's epoch, in nanoseconds, as used
// for expiry. It is at least 1.
func (c *Core) Now() int64 { return int64(time.Since(c.epoch)) | 1 }

// Size returns the number of entries. c.mu is held.
func (c *Core) Size() int {
	if c.policy == nil {
		return 0
	}
	return c.policy.Len()
}

// Flush removes every entry, as Clear, but keeps the statistics and the
// shared tiers' entries.
func (c *Core) Flush() {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.DropAll()
}

// DropAll removes every entry and detaches the executions in flight. c.mu
// is held.
func (c *Core) DropAll() {
	c.Hits.Add(c.Reads.reset()) // counted, kept by flush
	if c.addFirst {
		c.Reads.pause() // as a new cache, until half full again
	}
	if c.watched != nil {
		c.watched.stopAll()
	}
	c.Index.clear()
	shards := c.shardList()
	for i := range shards {
		sh := &shards[i]
		sh.mu.Lock()
		clear(sh.calls) // their results are stale now
		sh.mu.Unlock()
	}
	if c.policy != nil {
		c.policy.Clear()
	}
	c.expiry = nil
	if c.fresh != nil {
		c.fresh.heap = nil
	}
	// The timer is left to fire and find nothing: stopping it here would be
	// a fatal error when the cache was made inside a testing/synctest
	// bubble and is cleared from outside (ClearAll in another test).
}

func (c *Core) ResetStats() {
	c.Reads.takeHits()
	c.Hits.Store(0)
	c.Rec.Reset()
}

// RefreshDue is what lookup returns, with false, for an entry due for a
// refresh, which it has not counted: the miss path serves it and counts
// the call (fresh.go).
var RefreshDue any = new(byte)

// Lookup returns the value stored under the encoded key k with hash h and
// counts a hit or a miss. An expired entry is removed and is a miss.
func (c *Core) Lookup(k []byte, h uint64) (any, bool) {
	return c.found(c.Index.Get(k, h), h)
}

// LookupString is lookup of the key fid, byte(len(s)), s (len(s) < 128;
// h = hashFidString(fid, s)), without making the key (see index.getString).
func (c *Core) LookupString(fid uint64, s string, h uint64) (any, bool) {
	return c.found(c.Index.getString(fid, s, h), h)
}

// found is lookup's answer for n, the entry of the key of hash h, or nil.
func (c *Core) found(n *Node, h uint64) (any, bool) {
	if n != nil {
		// live and value in one look at val: an entry that never expires
		// holds its value there, one with a TTL its extra.
		v := n.Value.val
		x, timed := v.(*extra)
		if timed && (x.expires <= 0 || c.Now() < x.expires) {
			v, timed = x.val, false
		}
		if !timed {
			c.Hit(n, h)
			return v, true
		}
	}
	if n != nil && c.late(n) {
		return RefreshDue, false // the miss path serves the entry and counts the call (see miss)
	}
	c.Rec.Miss(h)
	return nil, false
}

// Hit records a use of n for the policy and counts a hit.
func (c *Core) Hit(n *Node, h uint64) {
	if c.Reads.add(n, h) {
		c.tryDrain()
	}
}

// tryDrain applies the buffered uses to the policy unless another
// goroutine holds the lock (it drains them itself, or the next write does).
func (c *Core) tryDrain() {
	if c.Mu.TryLock() {
		c.drainReads()
		c.Mu.Unlock()
	}
}

// drainReads applies buffered uses to the policy, in order. c.mu is held.
func (c *Core) drainReads() {
	c.Hits.Add(c.Reads.drain(c.policy))
}

// Store inserts or replaces the entry for key (an encoded key with hash h)
// with val, expiring after ttl (0: never). refs are the Go objects the key
// refers to by identity: the entry is dropped when one is collected. When fl
// is not nil, the value is the result of that execution, and it is stored
// only if fl is still the execution in flight for key (no Delete or Clear
// since it started), or, for a refresh, if the entry it refreshes is still
// the key's (nothing stored, removed or cleared since); store reports
// whether it stored.
func (c *Core) Store(key string, h uint64, val any, ttl time.Duration, refs []unsafe.Pointer, fl *Call) bool {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	now := c.Now()
	if c.policy == nil {
		c.policy = policies.NewSized(c.Kind, c.MaxSize, nodeHash)
	}
	c.drainReads()
	c.Sweep(now)
	var expires int64
	if ttl > 0 {
		expires = now + int64(ttl)
		if expires < now { // overflow: WithTTL(math.MaxInt64) means "for ever"
			expires = math.MaxInt64
		}
	}
	sh := c.shardOf(h)
	sh.mu.Lock()
	if fl != nil {
		current := sh.calls[key] == fl
		if fl.base != nil {
			current = c.Index.Get(UnsafeBytes(key), h) == fl.base
		}
		sh.detach(fl)
		if !current {
			sh.mu.Unlock()
			return false
		}
	}
	n := newNode(key, val)
	var fx *freshX
	if c.freshEntry(ttl, fl) {
		fx = c.newFresh(n, ttl, fl, now)
	} else if expires != 0 {
		ext(n).expires = plainExpiry(expires)
	} else if fl != nil && fl.AgeCap > 0 {
		// The tier's bound on a local copy's age, for a result that has
		// no TTL: the expiry timer removes the entry, and a hit pays
		// nothing for it (see sweptTTL).
		ttl = sweptTTL(fl.AgeCap)
		ext(n).expires = -plainExpiry(addTime(now, ttl))
	}
	if old := c.Index.Get(UnsafeBytes(key), h); old != nil {
		// Entries are immutable for lock-free readers: the new Node takes
		// the old one's place, and setting counts as a use.
		c.Index.replace(old, n)
		c.policy.Replace(old, n)
		c.policy.Touch(n)
		c.unlinkExpiry(old)
	} else if c.addFirst {
		// The policy admits: n goes in, and the loser of its admission
		// (perhaps n itself) goes out.
		c.Reads.init() // before the first entry, which the first hit finds
		c.Index.insert(n, h)
		c.policy.Add(n)
		if 2*c.policy.Len() >= c.MaxSize && !c.Reads.recording() {
			c.Reads.record()
		}
		if !c.evictTo(c.MaxSize, n) {
			c.watch(n, refs)
		} else {
			n = nil // rejected: nothing to expire
		}
	} else {
		// Make room before adding n, as the original does: added first, a
		// new LFU entry (count 1) is its own victim whenever every other
		// entry has been used more than once.
		c.evictTo(c.MaxSize-1, nil)
		c.Reads.init() // before the first entry, which the first hit finds
		c.Index.insert(n, h)
		c.policy.Add(n)
		c.watch(n, refs)
	}
	sh.mu.Unlock()
	if n == nil {
		// rejected: nothing to expire
	} else if fx != nil {
		c.linkFresh(n, fx)
	} else if ttl > 0 {
		c.linkExpiry(n, ttl)
	}
	c.schedule(now)
	return true
}

// evictTo evicts the policy's victims until at most size entries remain,
// and reports whether one of them was added (an entry just added that the
// policy did not admit). c.mu is held.
func (c *Core) evictTo(size int, added *Node) bool {
	var evicted uint64
	rejected := false
	for c.policy.Len() > size {
		v := c.policy.Victim()
		rejected = rejected || v == added
		c.removeNode(v)
		evicted++
	}
	if evicted > 0 {
		c.Rec.Evicted(evicted)
	}
	return rejected
}

// nodeHash is the key hash W-TinyLFU counts frequencies by: hashKey's
// mix with a fixed seed, so that a replay gives the same hit ratio in every
// process (the index's hash is seeded per process). The policy's random
// admission answers hash flooding of its sketch.
func nodeHash(n *Node) uint64 { return hashSeeded(0, UnsafeBytes(keyOf(n))) }

// watch registers cleanups that drop n when an object its key refers to
// by identity is collected. c.mu is held.
func (c *Core) watch(n *Node, refs []unsafe.Pointer) {
	if len(refs) == 0 {
		return
	}
	// A copy of the key: a short key lives in the Node's allocation, and a
	// cleanup's argument must not keep the Node, and so its value (which
	// may refer to the very object watched), alive.
	key := strings.Clone(keyOf(n))
	if c.watched == nil {
		c.watched = newWatchSet(c)
	}
	for _, p := range refs {
		c.watched.add(key, runtime.AddCleanup((*byte)(p), dropEntry, dropArg{c.weak(), key}))
	}
}

type dropArg struct {
	c   weak.Pointer[Core]
	key string
}

// dropEntry removes an entry whose key referred to a collected object. Its
// key can never match again (identity ids are never reused); this only
// frees the memory.
func dropEntry(a dropArg) {
	c := a.c.Value()
	if c == nil {
		return
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if n := c.Index.Get(UnsafeBytes(a.key), hashString(a.key)); n != nil {
		c.removeNode(n)
	}
}

// watchSet holds a cache's entry-dropping cleanups by key. It is apart
// from the Cache so that a cleanup on the Cache can stop them all when the
// cache is collected: a long-lived object must not carry cleanups for
// caches long gone.
type watchSet struct {
	mu sync.Mutex
	m  map[string][]runtime.Cleanup
}

func newWatchSet(c *Core) *watchSet {
	w := &watchSet{}
	runtime.AddCleanup(c, (*watchSet).stopAll, w)
	return w
}

func (w *watchSet) add(key string, cl runtime.Cleanup) {
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[string][]runtime.Cleanup)
	}
	w.m[key] = append(w.m[key], cl)
	w.mu.Unlock()
}

// stop stops the cleanups of key's entry, which is going.
func (w *watchSet) stop(key string) {
	w.mu.Lock()
	for _, cl := range w.m[key] {
		cl.Stop()
	}
	delete(w.m, key)
	w.mu.Unlock()
}

func (w *watchSet) stopAll() {
	w.mu.Lock()
	for _, cls := range w.m {
		for _, cl := range cls {
			cl.Stop()
		}
	}
	clear(w.m)
	w.mu.Unlock()
}

// Remove deletes the entry for the encoded key k, and detaches any
// execution in flight for it so that it does not store its result.
func (c *Core) Remove(k []byte, h uint64) bool {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.drainReads()
	sh := c.shardOf(h)
	sh.mu.Lock()
	delete(sh.calls, string(k))
	sh.mu.Unlock()
	n := c.Index.Get(k, h)
	if n == nil {
		return false
	}
	expired := !alive(n, c)
	c.removeNode(n)
	if expired {
		c.Rec.Expired(1)
		return false
	}
	return true
}

// removeNode unlinks n from its shard, the policy and the expiry lists.
// c.mu is held.
func (c *Core) removeNode(n *Node) {
	c.Index.remove(n)
	c.policy.Remove(n)
	c.unlinkExpiry(n)
	if c.watched != nil {
		c.watched.stop(keyOf(n))
	}
}

// expireNode removes n, found expired by a lookup, unless it has been
// replaced or removed since.
func (c *Core) expireNode(n *Node) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if k := keyOf(n); c.Index.Get(UnsafeBytes(k), hashString(k)) == n && !Live(n, c) {
		c.removeNode(n)
		c.Rec.Expired(1)
	}
}

// expList holds the entries of one TTL in the order they expire: entries
// with the same TTL expire in the order they were written, so a FIFO list
// per TTL keeps expiry O(1).
type expList struct {
	ttl        time.Duration
	head, tail *Node
}

func (c *Core) linkExpiry(n *Node, ttl time.Duration) {
	var l *expList
	for _, e := range c.expiry {
		if e.ttl == ttl {
			l = e
			break
		}
	}
	if l == nil {
		l = &expList{ttl: ttl}
		c.expiry = append(c.expiry, l)
	}
	x := ext(n)
	x.exp, x.expPrev, x.expNext = l, l.tail, nil
	if l.tail != nil {
		l.tail.Value.x().expNext = n
	} else {
		l.head = n
	}
	l.tail = n
}

func (c *Core) unlinkExpiry(n *Node) {
	x := n.Value.x()
	if x != nil && tagged(n) {
		c.unlinkFresh(n)
		return
	}
	if x == nil || x.exp == nil {
		return
	}
	l := x.exp
	if x.expPrev != nil {
		x.expPrev.Value.x().expNext = x.expNext
	} else {
		l.head = x.expNext
	}
	if x.expNext != nil {
		x.expNext.Value.x().expPrev = x.expPrev
	} else {
		l.tail = x.expPrev
	}
	x.exp, x.expPrev, x.expNext = nil, nil, nil
}

// Sweep removes every entry that has expired by now. c.mu is held.
func (c *Core) Sweep(now int64) {
	var expired uint64
	for _, l := range c.expiry {
		for l.head != nil && l.head.Value.x().at() <= now {
			c.removeNode(l.head)
			expired++
		}
	}
	expired += c.sweepFresh(now)
	if expired > 0 {
		c.Rec.Expired(expired)
	}
}

// schedule arms the timer for the earliest expiry, so that expired entries
// are freed even when nobody uses the cache. The timer does not keep the
// cache alive; it starts no goroutine until it fires.
func (c *Core) schedule(now int64) {
	var next int64
	for _, l := range c.expiry {
		if l.head != nil && (next == 0 || l.head.Value.x().at() < next) {
			next = l.head.Value.x().at()
		}
	}
	if f := c.nextFresh(); f != 0 && (next == 0 || f < next) {
		next = f
	}
	if next == 0 || (c.timerAt != 0 && c.timerAt <= next) {
		return
	}
	c.timerAt = next
	d := time.Duration(next - now)
	if c.timer == nil {
		// The timer holds the cache weakly: a dropped cache is collected
		// with its entries, and its pending timer then fires into nothing.
		// (It is not stopped by a cleanup: cleanups run outside any
		// testing/synctest bubble, and stopping a bubble's timer from
		// outside it is a fatal error.)
		self := c.weak()
		c.timer = time.AfterFunc(d, func() {
			if c := self.Value(); c != nil {
				c.onTimer()
			}
		})
	} else {
		c.timer.Reset(d)
	}
}

func (c *Core) onTimer() {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	now := c.Now()
	c.timerAt = 0
	c.drainReads()
	c.Sweep(now)
	c.schedule(now)
}

// Live reports whether n has not expired.
func Live(n *Node, c *Core) bool {
	exp := n.Value.expires()
	return exp == 0 || c.Now() < exp
}

// newNode allocates an entry, its key right after it (see item): the bytes
// of a key of up to 48 bytes (a function number and an int or a short
// string argument), so that a lookup compares it in the cache line it
// reads the Node from; a longer key's string header. The allocation is 64
// bytes for keys of up to 16 bytes or longer than 48, 80 up to 32, 96 up to
// 48.
func newNode(key string, val any) *Node {
	switch {
	case len(key) <= 16:
		return inlineNode[[16]byte](key, val)
	case len(key) <= 32:
		return inlineNode[[32]byte](key, val)
	case len(key) <= 48:
		return inlineNode[[48]byte](key, val)
	}
	nk := &struct {
		n Node
		k string
	}{k: key}
	nk.n.Value = item{val: val, klen: len(key) | keyOut}
	return &nk.n
}

// inlineNode allocates a Node followed by a K-sized array holding key.
func inlineNode[K [16]byte | [32]byte | [48]byte](key string, val any) *Node {
	nk := &struct {
		n Node
		k K
	}{}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&nk.k)), len(key)), key)
	nk.n.Value = item{val: val, klen: len(key)}
	return &nk.n
}

// sweptTTL is the local TTL that bounds by maxAge the age of an entry only
// the expiry timer removes (see Cache.store): maxAge less a margin for a
// timer that fires late, an eighth of maxAge and at most a second.
func sweptTTL(maxAge time.Duration) time.Duration {
	return max(maxAge-min(maxAge/8, time.Second), 1)
}
