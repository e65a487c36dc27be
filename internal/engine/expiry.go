package engine

import (
	"runtime"
	"strings"
	"time"
	"unsafe"
	"weak"
)

// evictTo evicts the policy's victims until at most size entries remain,
// and reports whether one of them was added (an entry just added that the
// policy did not admit). c.mu is held.
func (c *Core) evictTo(size int, added *Node) bool {
	var evicted uint64
	rejected := false
	for c.Policy.Len() > size {
		v := c.Policy.Victim()
		rejected = rejected || v == added
		c.removeNode(v)
		evicted++
	}
	if evicted > 0 {
		c.Rec.Evicted(evicted)
	}
	return rejected
}

// watch registers cleanups that drop n when an object its key refers to
// by identity is collected. c.mu is held.
func (c *Core) watch(n *Node, refs []unsafe.Pointer) {
	if len(refs) == 0 {
		return
	}
	// A copy of the key: a short key lives in the Node's allocation, and a
	// cleanup's argument must not keep the Node, and so its value (which
	// may refer to the very object watched), alive.
	key := strings.Clone(KeyOf(n))
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
	if n := c.Index.Get(UnsafeBytes(a.key), HashString(a.key)); n != nil {
		c.dropNode(n)
	}
}

// removeNode unlinks n from its shard, the policy and the expiry lists.
// c.mu is held, and the read buffers were drained since the lock was
// taken (see dropNode).
func (c *Core) removeNode(n *Node) {
	c.Index.remove(n)
	c.Policy.Remove(n)
	c.unlinkExpiry(n)
	if c.watched != nil {
		c.watched.stop(KeyOf(n))
	}
}

// dropNode removes n outside a store or Remove (which drain the read
// buffers before they remove anything): it drains them first, so that the
// uses recorded there do not keep n, and the result it holds, alive after
// it is removed. Without the drain, a cache that is only read from after
// an entry is dropped (its key's object collected, its time up) would keep
// the entry until its next write. (A use recorded after the drain, by a
// reader that found n before it was removed, stays until the next drain:
// at most a stripe's worth per stripe.) c.mu is held.
func (c *Core) dropNode(n *Node) {
	c.drainReads()
	c.removeNode(n)
}

// expireNode removes n, found expired by a lookup, unless it has been
// replaced or removed since.
func (c *Core) expireNode(n *Node) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if _, in := c.Index.t.Load().find(n); in && !Live(n, c) {
		c.dropNode(n)
		c.Rec.Expired(1)
	}
}

func (c *Core) linkExpiry(n *Node, ttl time.Duration) {
	var l *expList
	for _, e := range c.expiryLists() {
		if e.ttl == ttl {
			l = e
			break
		}
	}
	if l == nil {
		l = &expList{ttl: ttl}
		if c.expiry == nil {
			c.expiry = new([]*expList)
		}
		*c.expiry = append(*c.expiry, l)
	}
	x := ext(n)
	x.exp, x.expPrev, x.expNext = l, l.tail, nil
	if l.tail != nil {
		l.tail.Value.X().expNext = n
	} else {
		l.head = n
	}
	l.tail = n
}

func (c *Core) unlinkExpiry(n *Node) {
	x := n.Value.X()
	if x != nil && Tagged(n) {
		c.unlinkFresh(n)
		return
	}
	if x == nil || x.exp == nil {
		return
	}
	l := x.exp
	if x.expPrev != nil {
		x.expPrev.Value.X().expNext = x.expNext
	} else {
		l.head = x.expNext
	}
	if x.expNext != nil {
		x.expNext.Value.X().expPrev = x.expPrev
	} else {
		l.tail = x.expPrev
	}
	x.exp, x.expPrev, x.expNext = nil, nil, nil
}

// Sweep removes every entry that has expired by now. If one has, it drains
// the read buffers first (see dropNode): Len and Stats sweep too. c.mu is
// held.
func (c *Core) Sweep(now int64) {
	if !c.expiredBy(now) {
		return
	}
	c.drainReads()
	var expired uint64
	for _, l := range c.expiryLists() {
		for l.head != nil && l.head.Value.X().at() <= now {
			c.removeNode(l.head)
			expired++
		}
	}
	expired += c.sweepFresh(now)
	if expired > 0 {
		c.Rec.Expired(expired)
	}
}

// expiredBy reports whether an entry has expired by now: the head of an
// expiry list, or the top of the expiry heap. c.mu is held.
func (c *Core) expiredBy(now int64) bool {
	for _, l := range c.expiryLists() {
		if l.head != nil && l.head.Value.X().at() <= now {
			return true
		}
	}
	return c.Fresh != nil && len(c.Fresh.Heap) > 0 && c.Fresh.Heap[0].At <= now
}

// schedule arms the timer for the earliest expiry, so that expired entries
// are freed even when nobody uses the cache. The timer does not keep the
// cache alive; it starts no goroutine until it fires.
func (c *Core) schedule(now int64) {
	var next int64
	for _, l := range c.expiryLists() {
		if l.head != nil && (next == 0 || l.head.Value.X().at() < next) {
			next = l.head.Value.X().at()
		}
	}
	if f := c.nextFresh(); f != 0 && (next == 0 || f < next) {
		next = f
	}
	if next == 0 || (c.TimerAt != 0 && c.TimerAt <= next) {
		return
	}
	c.TimerAt = next
	d := time.Duration(next - now)
	if c.Timer == nil {
		// The timer holds the cache weakly: a dropped cache is collected
		// with its entries, and its pending timer then fires into nothing.
		// (It is not stopped by a cleanup: cleanups run outside any
		// testing/synctest bubble, and stopping a bubble's timer from
		// outside it is a fatal error.)
		self := c.weak()
		c.Timer = time.AfterFunc(d, func() {
			if c := self.Value(); c != nil {
				c.onTimer()
			}
		})
	} else {
		c.Timer.Reset(d)
	}
}

func (c *Core) onTimer() {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	now := c.Now()
	c.TimerAt = 0
	c.drainReads()
	c.Sweep(now)
	c.schedule(now)
}

// linkFresh puts n, just stored, in the expiry heap if it expires. c.mu is
// held.
func (c *Core) linkFresh(n *Node, fx *FreshX) {
	if fx.RemoveAt == 0 {
		return
	}
	if c.Fresh == nil {
		c.Fresh = new(freshState)
	}
	fs := c.Fresh
	fx.Hidx = len(fs.Heap)
	fs.Heap = append(fs.Heap, HeapItem{fx.RemoveAt, n})
	fs.up(fx.Hidx)
}

// unlinkFresh takes n out of the expiry heap. c.mu is held.
func (c *Core) unlinkFresh(n *Node) {
	fx := FreshOf(n)
	i := fx.Hidx
	if i < 0 {
		return
	}
	fx.Hidx = -1
	fs := c.Fresh
	last := len(fs.Heap) - 1
	if i != last {
		fs.Heap[i] = fs.Heap[last]
		FreshOf(fs.Heap[i].N).Hidx = i
	}
	fs.Heap[last] = HeapItem{}
	fs.Heap = fs.Heap[:last]
	if i != last {
		fs.down(i)
		fs.up(i)
	}
}

func (fs *freshState) up(i int) {
	h := fs.Heap
	for i > 0 {
		p := (i - 1) / 2
		if h[p].At <= h[i].At {
			break
		}
		fs.swap(i, p)
		i = p
	}
}

func (fs *freshState) down(i int) {
	h := fs.Heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].At < h[l].At {
			m = r
		}
		if h[i].At <= h[m].At {
			return
		}
		fs.swap(i, m)
		i = m
	}
}

func (fs *freshState) swap(i, j int) {
	h := fs.Heap
	h[i], h[j] = h[j], h[i]
	FreshOf(h[i].N).Hidx = i
	FreshOf(h[j].N).Hidx = j
}

// sweepFresh removes the freshX entries whose time is up and returns how
// many. c.mu is held.
func (c *Core) sweepFresh(now int64) uint64 {
	if c.Fresh == nil {
		return 0
	}
	var n uint64
	for len(c.Fresh.Heap) > 0 && c.Fresh.Heap[0].At <= now {
		c.removeNode(c.Fresh.Heap[0].N)
		n++
	}
	return n
}

// nextFresh returns when the next freshX entry is to be removed; 0: none.
// c.mu is held.
func (c *Core) nextFresh() int64 {
	if c.Fresh == nil || len(c.Fresh.Heap) == 0 {
		return 0
	}
	return c.Fresh.Heap[0].At
}
