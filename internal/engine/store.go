package engine

import (
	"math"
	"time"
	"unsafe"

	"github.com/memokit/memo/policies"
)

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
	c.quiet = 0
	c.Reads.setSampling(false)
	if c.addFirst() {
		c.Reads.pause() // as a new cache, until half full again
	}
	if c.watched != nil {
		c.watched.stopAll()
	}
	c.Index.clear()
	shards := c.ShardList()
	for i := range shards {
		sh := &shards[i]
		sh.Mu.Lock()
		sh.Calls.clear() // their results are stale now
		sh.Mu.Unlock()
	}
	if c.Policy != nil {
		c.Policy.Clear()
	}
	// The expiry lists' links go too, as the policy's: an entry dropped
	// stays alive while its value does (a result held in it, see Hold),
	// and must not keep the others alive.
	for _, l := range c.expiryLists() {
		for n := l.head; n != nil; {
			x := n.Value.X()
			n, x.exp, x.expPrev, x.expNext = x.expNext, nil, nil, nil
		}
	}
	c.expiry = nil
	if c.Fresh != nil {
		c.Fresh.Heap = nil
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
		x, timed := v.(*Extra)
		if timed && (x.Expires <= 0 || c.Now() < x.Expires) {
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
		c.drainFull()
		c.Mu.Unlock()
	}
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
	if c.Policy == nil {
		c.Policy = policies.NewSized(c.Kind, c.MaxSize, nodeHash)
	}
	c.drainReads()
	// The clock is read, under c.mu (the expiry lists are in the order of
	// the stores), only when something expires: an entry with a TTL or
	// freshness options, or entries that expire already. Otherwise now
	// stays 0 and nothing below reads it: there is nothing to sweep or
	// schedule, and n gets no expiry.
	var now int64
	if ttl > 0 || c.expiry != nil || c.Fresh != nil || (fl != nil && (fl.Fo != nil || fl.AgeCap > 0)) {
		now = c.Now()
		c.Sweep(now)
	}
	var expires int64
	if ttl > 0 {
		expires = now + int64(ttl)
		if expires < now { // overflow: WithTTL(math.MaxInt64) means "for ever"
			expires = math.MaxInt64
		}
	}
	sh := c.shardOf(h)
	sh.Mu.Lock()
	if fl != nil {
		var current bool
		if fl.base != nil {
			current = c.Index.Get(UnsafeBytes(key), h) == fl.base
			sh.detach(fl)
		} else {
			current = sh.Calls.remove(fl)
		}
		if !current {
			sh.Mu.Unlock()
			return false
		}
	}
	n := entryFor(fl, key, val)
	var fx *FreshX
	if c.freshEntry(ttl, fl) {
		fx = c.NewFresh(n, ttl, fl, now)
	} else if expires != 0 {
		ext(n).Expires = PlainExpiry(expires)
	} else if fl != nil && fl.AgeCap > 0 {
		// The tier's bound on a local copy's age, for a result that has
		// no TTL: the expiry timer removes the entry, and a hit pays
		// nothing for it (see sweptTTL).
		ttl = sweptTTL(fl.AgeCap)
		ext(n).Expires = -PlainExpiry(AddTime(now, ttl))
	}
	if c.addFirst() {
		// The policy admits: n goes in, and the loser of its admission
		// (perhaps n itself) goes out.
		c.Reads.init() // before the first entry, which the first hit finds
		if old := c.Index.insertNew(n, h); old != nil {
			c.replaceEntry(old, n)
		} else {
			c.Policy.Add(n)
			if 2*c.Policy.Len() >= c.MaxSize && !c.Reads.Recording() {
				c.Reads.record()
			}
			if !c.evictTo(c.MaxSize, n) {
				c.watch(n, refs)
			} else {
				n = nil // rejected: nothing to expire
			}
		}
	} else if old := c.Index.Get(UnsafeBytes(key), h); old != nil {
		c.replaceEntry(old, n)
	} else {
		// Make room before adding n, as the original does: added first, a
		// new LFU entry (count 1) is its own victim whenever every other
		// entry has been used more than once.
		c.evictTo(c.MaxSize-1, nil)
		c.Reads.init() // before the first entry, which the first hit finds
		c.Index.insert(n, h)
		c.Policy.Add(n)
		c.watch(n, refs)
	}
	sh.Mu.Unlock()
	if n == nil {
		// rejected: nothing to expire
	} else if fx != nil {
		c.linkFresh(n, fx)
	} else if ttl > 0 {
		c.linkExpiry(n, ttl)
	}
	if now != 0 {
		c.schedule(now)
	}
	return true
}

// replaceEntry puts n, a new entry for old's key, in old's place. Entries
// are immutable for lock-free readers: the new Node takes the old one's
// place, and setting counts as a use. c.mu and the key's shard's lock are
// held.
func (c *Core) replaceEntry(old, n *Node) {
	c.Index.replace(old, n)
	c.Policy.Replace(old, n)
	c.Policy.Touch(n)
	c.unlinkExpiry(old)
}

// nodeHash is the key hash W-TinyLFU counts frequencies by: hashKey's
// mix with a fixed seed, so that a replay gives the same hit ratio in every
// process (the index's hash is seeded per process). The policy's random
// admission answers hash flooding of its sketch.
func nodeHash(n *Node) uint64 {
	a := keyAt(n)
	switch kl := keyLen(n); kl {
	case outKey:
		return hashSeeded(0, UnsafeBytes((*outside)(a).k))
	case 0:
		return hashSeeded(0, nil)
	case 16:
		return hash16(0, word(a, 0)&^lenMask, word(a, 8))
	default:
		return hashWords(0, kl, word(a, 0)&^lenMask, unsafe.Slice((*byte)(unsafe.Add(a, 8)), kl-8))
	}
}

// Remove deletes the entry for the encoded key k, and detaches any
// execution in flight for it so that it does not store its result.
func (c *Core) Remove(k []byte, h uint64) bool {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	c.drainReads()
	sh := c.shardOf(h)
	sh.Mu.Lock()
	sh.Calls.removeKey(k, h)
	sh.Mu.Unlock()
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

// freshEntry reports whether an entry stored with ttl by fl needs a freshX.
// c.mu is held.
func (c *Core) freshEntry(ttl time.Duration, fl *Call) bool {
	return (fl != nil && fl.Fo != nil && fl.Fo.Entries) || (ttl > 0 && c.Fresh != nil && c.Fresh.jitter > 0)
}

// NewFresh gives n a freshX for a result stored now with ttl by fl (see
// freshEntry). c.mu is held.
func (c *Core) NewFresh(n *Node, ttl time.Duration, fl *Call, now int64) *FreshX {
	if ttl > 0 && c.Fresh != nil && c.Fresh.jitter > 0 {
		// Uniform in [ttl×(1−f), ttl]: subtract up to f of it.
		ttl -= time.Duration(c.Fresh.rng.Float64() * c.Fresh.jitter * float64(ttl))
	}
	fx := &FreshX{Hidx: -1}
	if ttl > 0 {
		fx.TtlEnd = AddTime(now, ttl)
	}
	if fl != nil && fl.AgeCap > 0 {
		// The tier's bound on a local copy's age ends its hits too, read
		// by the lookup itself rather than left to the expiry timer (which
		// may run late); a refresh due at or past it never starts.
		if end := AddTime(now, fl.AgeCap); fx.TtlEnd == 0 || fx.TtlEnd > end {
			fx.TtlEnd = end
		}
	}
	var fo *FreshOpts
	if fl != nil {
		fo = fl.Fo
	}
	if fo != nil && fo.Refresh > 0 {
		fx.RefreshAt = AddTime(now, fo.Refresh)
		if fx.TtlEnd != 0 && fx.RefreshAt >= fx.TtlEnd { // a TTL from WithTTLFunc below the interval
			fx.RefreshAt = 0
		}
	}
	fx.RemoveAt = fx.TtlEnd
	if fo != nil && fo.Stale > 0 && fx.TtlEnd != 0 {
		fx.RemoveAt = AddTime(fx.TtlEnd, fo.Stale)
	}
	if fl != nil && fl.AgeCap > 0 { // the tier's bound on a local copy's age, stale window included
		if end := AddTime(now, fl.AgeCap); fx.RemoveAt == 0 || fx.RemoveAt > end {
			fx.RemoveAt = end
		}
	}
	first := fx.TtlEnd
	if fx.RefreshAt != 0 && (first == 0 || fx.RefreshAt < first) {
		first = fx.RefreshAt
	}
	if first != 0 {
		fx.Expires = max(first&^1, 2) // even: tagged
	}
	setExt(n, &fx.Extra)
	return fx
}

// late handles a lookup of an entry that is not live: a freshX whose
// refresh is due (due: the caller takes the miss path, where join serves
// the entry and starts the refresh, and counts the call as a hit or, if the
// entry went meanwhile, a miss), a freshX in its stale window (kept, for
// the execution to fall back on), or an expired entry (removed). It is
// lock-free until it removes. Counting the due lookup in join rather than
// here keeps a caller whose entry is evicted or invalidated between the
// two a miss, as the execution it then runs is a miss's.
func (c *Core) late(n *Node) (due bool) {
	if Tagged(n) {
		fx, now := FreshOf(n), c.Now()
		if fx.TtlEnd == 0 || now < fx.TtlEnd {
			return true
		}
		if now < fx.RemoveAt {
			return false
		}
	}
	c.expireNode(n)
	return false
}
