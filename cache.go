package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
)

// Cache is a goroutine-safe, bounded cache with LRU, LFU or W-TinyLFU
// eviction, optional TTL expiry and statistics. It is also the cache that
// [Decorate] attaches to a function.
//
// Keys are compared by memo's key rules ([MakeHashable]): exact, typed,
// pointers by identity. Get, Set and Delete cost O(1) plus the cost of
// encoding the key; a hit takes no cache-wide lock, so parallel hits scale.
//
// Eviction is exact until goroutines contend for the cache: replayed
// request by request from one goroutine it gives the same hit ratios as a
// textbook LRU or LFU, and W-TinyLFU makes the decisions it makes when
// driven directly (a new entry always enters its window; the entry that
// leaves the window is either admitted, pushing out an older one, or turned
// away, which counts as an eviction). Once parallel hits have contended,
// uses are recorded through per-goroutine stripes and sampled (one in 32;
// W-TinyLFU, whose sketch counts them, records every use and drops only
// what a full stripe cannot hold), as Caffeine and otter record them
// lossily, which makes the order approximate; results and statistics stay
// exact.
//
// A Cache is safe for concurrent use by multiple goroutines. The zero Cache
// is not usable, nor is a nil *Cache (what [CacheOf] returns for a function
// memo did not decorate): their methods panic with a message that starts
// "memo:". Make a Cache with [New] or [MustNew], or get a decorated
// function's with CacheOf.
type Cache struct {
	// e is the engine: the entries, the policy, the executions in flight.
	// It comes first, so that a *Cache and its engine share an address.
	e      engine.Core
	listed string // the name Caches lists it under
}

// check panics, saying how to get a cache, if c is nil or the zero Cache.
// It is small enough to inline; the panic is apart.
func (c *Cache) check() {
	if c == nil || c.e.MaxSize <= 0 {
		unusable(c)
	}
}

//go:noinline
func unusable(c *Cache) {
	if c == nil {
		panic(errors.New("memo: method called on a nil *Cache: make a cache with New or MustNew; CacheOf returns nil for a function that Decorate or Func did not return"))
	}
	panic(errors.New("memo: the zero Cache is not usable: make a cache with New or MustNew, or get a decorated function's with CacheOf"))
}

// encodeKey encodes a key given to Get, Set or Delete.
func encodeKey(s *keys.State, key any) {
	s.U64(0) // the namespace of keys that no decorated function uses (their numbers start at 1)
	// As encodeInterface(s, reflect.ValueOf(&key).Elem()), without taking
	// key's address: that moved key to the heap, one allocation per Get.
	if key == nil {
		s.Uvarint(0)
		return
	}
	keys.EncodeDynamic(s, reflect.ValueOf(key))
}

// Get returns the value stored for key, or an error that is [ErrNotFound]
// if there is none or it has expired. A lookup of an expired entry removes
// it. Each Get counts as one hit or one miss. The value is the one Set
// stored, shared with every other Get: do not modify what it refers to.
func (c *Cache) Get(key any) (any, error) {
	c.check()
	var (
		v  any
		ok bool
	)
	var arr [64]byte
	if k, basic := keys.AppendDynamicBasic(binary.LittleEndian.AppendUint64(arr[:0], 0), key); basic {
		v, ok = c.e.Lookup(k, engine.HashKey(k))
	} else {
		s := keys.GetState()
		encodeKey(s, key)
		v, ok = c.e.Lookup(s.Buf, engine.HashKey(s.Buf))
		keys.PutState(s)
	}
	if !ok {
		if v == engine.RefreshDue { // not a key of Get's (they are never refreshed)
			c.e.Rec.Miss(0)
		}
		c.e.Rec.GetMissed(1)
		return nil, ErrNotFound
	}
	return v, nil
}

// Set stores value for key, replacing any value it had and restarting its
// TTL. Setting an existing key counts as a use for the eviction policy. If
// the cache is full, it evicts one entry. A key that can never be found
// again (longer than 4 MiB encoded, or holding a value memo cannot
// identify, see the README) is not stored and counts in Stats.Uncacheable.
func (c *Cache) Set(key, value any) {
	c.check()
	s := keys.GetState()
	defer keys.PutState(s)
	encodeKey(s, key)
	if s.Never {
		c.noteUncacheable(s.TooLong) // no Get could find it
		return
	}
	c.e.Store(string(s.Buf), engine.HashKey(s.Buf), value, c.e.Ttl, s.Refs, nil)
}

// Delete removes the entry for key and reports whether there was one.
// Keys given to Get, Set and Delete live apart from the keys of decorated
// functions sharing the cache: use [Invalidate] for those.
func (c *Cache) Delete(key any) bool {
	c.check()
	s := keys.GetState()
	defer keys.PutState(s)
	encodeKey(s, key)
	return c.e.Remove(s.Buf, engine.HashKey(s.Buf))
}

// Len returns the number of live entries: never more than the maximum size,
// and never counting an expired entry.
func (c *Cache) Len() int {
	c.check()
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	c.e.Sweep(c.e.Now())
	return c.e.Size()
}

// Clear removes every entry and resets every statistic. Executions in
// flight will not store their results, and callers that arrive after Clear
// start new executions. For functions decorated [WithTier], Clear also
// clears their entries in the tier (see [TierBinding].Clear), before the
// local ones, so that no load of this process stores what it read from
// the tier before the tier's Clear.
func (c *Cache) Clear() {
	c.check()
	c.clearTiers()
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	c.e.DropAll()
	c.e.ResetStats()
}

// ResetStats zeroes the statistics and keeps the entries.
func (c *Cache) ResetStats() {
	c.check()
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	c.e.ResetStats()
}

// Stats returns a snapshot of the statistics. Counters updated by other
// goroutines during the call may or may not be included.
func (c *Cache) Stats() stats.Stats {
	c.check()
	c.e.Mu.Lock()
	c.e.Sweep(c.e.Now())
	size := c.e.Size()
	// Under c.mu, so that no drain is moving hits from the stripes to
	// c.hits: read outside it, hits already made could be missed.
	hits := c.e.Hits.Load() + c.e.Reads.PendingHits()
	c.e.Mu.Unlock()
	st := c.e.Rec.Snapshot()
	st.Hits += hits
	st.CurrentSize = size
	st.MaxSize = c.e.MaxSize
	st.TTL = c.e.Ttl
	return st
}

// UpdateProfiling records one execution time sample: TotalCalls, TotalTime,
// MinTime and MaxTime. Functions made by [Decorate] record every execution
// themselves; use it to time work done around a cache made by [New].
func (c *Cache) UpdateProfiling(d time.Duration) {
	c.check()
	c.e.Rec.Execution(d, false)
}

// Name returns the name c is listed under in [Caches].
func (c *Cache) Name() string {
	c.check()
	return c.listed
}

// Policy returns c's eviction policy.
func (c *Cache) Policy() policies.Kind {
	c.check()
	return c.e.Kind
}

type cacheTiers struct {
	mu    sync.Mutex
	tiers []*TierBinding // pointers: compared by identity, a binding may not be comparable
}

// addTier records a tiered function of c, whose tier Clear clears, and
// returns the function that forgets it again (once it is collected).
func (c *Cache) addTier(b TierBinding) (unregister func()) {
	p := &b
	wp := weak.Make(c)
	ct, loaded := tierCaches.LoadOrStore(wp, &cacheTiers{})
	if !loaded {
		tieredCaches.Add(1)
		runtime.AddCleanup(c, func(wp weak.Pointer[Cache]) {
			tierCaches.Delete(wp)
			tieredCaches.Add(-1)
		}, wp)
	}
	t := ct.(*cacheTiers)
	t.mu.Lock()
	t.tiers = append(t.tiers, p)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		t.tiers = slices.DeleteFunc(t.tiers, func(x *TierBinding) bool { return x == p })
		t.mu.Unlock()
	}
}

// clearTiers clears the tier entries of c's tiered functions, for a
// Clear, before it clears the local ones. Errors are the tier's to count
// and log: Clear has no error result.
func (c *Cache) clearTiers() {
	if tieredCaches.Load() == 0 {
		return
	}
	ct, ok := tierCaches.Load(weak.Make(c))
	if !ok {
		return
	}
	t := ct.(*cacheTiers)
	t.mu.Lock()
	tiers := slices.Clone(t.tiers)
	t.mu.Unlock()
	for _, b := range tiers {
		_ = (*b).Clear(context.Background())
	}
}

// tierCaches maps each cache with tiered functions (by weak pointer, so
// that it does not keep the cache alive) to their tiers, for Clear; kept
// out of the Cache so that caches without a tier pay nothing for it.
var (
	tierCaches   sync.Map // weak.Pointer[Cache] → *cacheTiers
	tieredCaches atomic.Int64
)

// noteUncacheable counts a call or Set that is not stored because its key
// can never hit again, and logs it through the cache's logger.
func (c *Cache) noteUncacheable(tooLong bool) {
	c.e.Rec.Uncacheable(1)
	if c.e.Logger == nil {
		return
	}
	reason := "an argument holds a value memo cannot identify (a func in an unexported field, or nesting deeper than 1000)"
	if tooLong {
		reason = "its key is longer than 4 MiB"
	}
	c.e.Logger.LogAttrs(context.Background(), slog.LevelWarn, "memo: call not cached: its key can never hit again",
		slog.String("cache", c.e.Name), slog.String("reason", reason))
}

// loggedAmbiguous holds the types noteAmbiguous has logged.
var loggedAmbiguous sync.Map

// noteAmbiguous logs, once per type in the process, through the cache's
// logger, that keys holding t stay local.
func (c *Cache) noteAmbiguous(t reflect.Type) {
	if c.e.Logger == nil {
		return
	}
	if _, done := loggedAmbiguous.LoadOrStore(t, struct{}{}); done {
		return
	}
	c.e.Logger.LogAttrs(context.Background(), slog.LevelWarn, "memo: calls not shared through the tier: another type of the program has the same name (a type declared inside a function?); give the type a name of its own at package level",
		slog.String("cache", c.e.Name), slog.String("type", keys.StableName(t)))
}
