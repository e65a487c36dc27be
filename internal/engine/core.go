package engine

import (
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	Name    string        // WithName's, or "" (see Caches)
	Logger  *slog.Logger  // WithLogger's, or nil: no logging
	epoch   time.Time     // expiry times are durations since epoch (monotonic)

	// Mu guards the policy, the expiry lists and the timer. Lock order: mu,
	// then a shard's mu, then a read stripe's mu.
	Mu      sync.Mutex
	Policy  policies.Policy[item] // made by the first store
	expiry  *[]*expList           // the expiry lists, one per TTL; nil until the first entry with a TTL
	Timer   *time.Timer
	TimerAt int64       // when the pending timer fires; 0 when none is pending
	watched *watchSet   // made by the first entry whose key refers to an object
	Fresh   *freshState // the expiry heap and jitter (expiry.go); nil until needed

	Hits atomic.Uint64 // hits moved out of the read stripes by drains
	Rec  stats.Recorder
	// quiet is the hits drained less quietWrite per write, between 0 and
	// 2*quietHits (see drainReads). Guarded by mu.
	quiet int32
}

// Init readies a new engine: at most maxSize entries of the policy kind,
// expiring after ttl (0: never); name and logger are the cache's for its
// log lines (logger nil: no logging); fresh is its jitter, or nil.
func (c *Core) Init(maxSize int, ttl time.Duration, kind policies.Kind, name string, logger *slog.Logger, fresh *freshState) {
	c.MaxSize, c.Ttl, c.Kind, c.Name, c.Logger = maxSize, ttl, kind, name, logger
	c.epoch = time.Now()
	c.Fresh = fresh
	// W-TinyLFU weighs the candidate against the victim once both are
	// in; LRU and LFU evict first (see store).
	if kind == policies.WTinyLFU {
		c.Reads.flags.Or(flagAddFirst)
	}
	// Nothing else is made until it is needed (shards, index table, read
	// stripes, cleanups), so that a cache that is never used, such as that
	// of a method value made per instance, costs a few hundred bytes.
	c.Index.init()
	c.Reads.setSampling(false)
	if !c.addFirst() {
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

// ShardList returns the shards, or nil before the first miss.
func (c *Core) ShardList() []shard {
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
	if c.Policy == nil {
		return 0
	}
	return c.Policy.Len()
}

// RefreshDue is what lookup returns, with false, for an entry due for a
// refresh, which it has not counted: the miss path serves it and counts
// the call (flight.go).
var RefreshDue any = new(byte)

// drainReads applies buffered uses to the policy, in order, before a write
// (a store or a removal). c.mu is held.
func (c *Core) drainReads() { c.drain(true) }

// drainFull applies buffered uses to the policy when a stripe is full. c.mu
// is held.
func (c *Core) drainFull() { c.drain(false) }

// A W-TinyLFU cache is in a quiet spell (see readBuffer.setSampling) while
// its hits far outnumber its writes: quiet, a leaky bucket, gains every hit
// drained and loses quietWrite for each write (a store or a removal); the
// spell starts when it reaches quietHits (from one goroutine, 16,384 hits
// with no write, or more with writes more than quietWrite hits apart) and
// ends when writes bring it back under, after a few writes once it is at
// its cap of twice that. Misses once in every 4,096 hits or more often keep
// every hit recorded.
const (
	quietHits  = 1 << 14
	quietWrite = 1 << 12
)

// drain applies buffered uses to the policy and counts the hits and, if
// write is set, a write, toward a quiet spell. c.mu is held.
func (c *Core) drain(write bool) {
	hits := c.Reads.drain(c.Policy)
	c.Hits.Add(hits)
	was := c.quiet >= quietHits
	q := int64(c.quiet) + int64(min(hits, 2*quietHits))
	if write {
		q -= quietWrite
	}
	c.quiet = int32(min(max(q, 0), 2*quietHits))
	if now := c.quiet >= quietHits; now != was {
		c.Reads.setSampling(now)
	}
}

// Live reports whether n has not expired.
func Live(n *Node, c *Core) bool {
	exp := n.Value.Expires()
	return exp == 0 || c.Now() < exp
}

// freshState is a cache's part of this: the expiry heap of its freshX
// entries and the jitter. It is guarded by Cache.mu.
type freshState struct {
	Heap   []HeapItem
	jitter float64
	rng    *rand.Rand
}

type HeapItem struct {
	At int64 // fx.removeAt
	N  *Node
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

// SeedJitter makes the cache's jitter draw from a fixed seed (for tests).
func (c *Core) SeedJitter(seed uint64) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.Fresh.rng = rand.New(rand.NewPCG(seed, seed))
}

// alive reports whether n is still an entry to hit (for a freshX: its TTL
// has not ended, whether a refresh is due or not).
func alive(n *Node, c *Core) bool {
	if Live(n, c) {
		return true
	}
	if !Tagged(n) {
		return false
	}
	end := FreshOf(n).TtlEnd
	return end == 0 || c.Now() < end
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

// addFirst reports whether the policy decides admission (W-TinyLFU), so
// that a new entry is added before evicting, and the victim may be the new
// entry itself. (A flag of the read buffer's word, which keeps a Cache in
// its size class.)
func (c *Core) addFirst() bool { return c.Reads.flags.Load()&flagAddFirst != 0 }

// expiryLists returns the expiry lists; nil before the first entry with a
// TTL.
func (c *Core) expiryLists() []*expList {
	if c.expiry == nil {
		return nil
	}
	return *c.expiry
}
