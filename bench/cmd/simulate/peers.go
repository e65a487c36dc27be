package main

import (
	"container/heap"
	"errors"
	"math"

	"github.com/Yiling-J/theine-go"
	arc "github.com/hashicorp/golang-lru/arc/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
)

// A cache is one policy under replay: Access looks key up and, on a miss,
// inserts it, reporting whether it hit.
type cache interface {
	Access(key uint64) bool
}

// policyNames lists every policy the simulator knows, in table order.
var policyNames = []string{"memo-w-tinylfu", "memo-lru", "memo-lfu", "otter", "theine", "lru", "arc", "2q", "s3-fifo", "sieve", "opt"}

// newCache returns the named policy holding at most size entries. keys is
// the whole trace (OPT looks ahead).
func newCache(name string, size int, keys []uint64) (cache, func(), error) {
	nop := func() {}
	switch name {
	case "memo-w-tinylfu", "memo-lru", "memo-lfu":
		k, err := policies.Parse(name[len("memo-"):])
		if err != nil {
			return nil, nop, err
		}
		c, err := memo.New(memo.WithMaxSize(size), memo.WithPolicy(k))
		if err != nil {
			return nil, nop, err
		}
		return memoCache{c}, nop, nil
	case "otter":
		// Maintenance inline: the executor runs tasks on the caller, and
		// CleanUp after each Set applies the write buffer, so the cache
		// holds at most size entries at every lookup.
		c := otter.Must(&otter.Options[uint64, uint64]{MaximumSize: size, Executor: func(fn func()) { fn() }})
		return otterCache{c}, nop, nil
	case "theine":
		c, err := theine.NewBuilder[uint64, uint64](int64(size)).Build()
		if err != nil {
			return nil, nop, err
		}
		return theineCache{c}, c.Close, nil
	case "lru":
		c, err := lru.New[uint64, struct{}](size)
		if err != nil {
			return nil, nop, err
		}
		return lruCache{c}, nop, nil
	case "arc":
		c, err := arc.NewARC[uint64, struct{}](size)
		if err != nil {
			return nil, nop, err
		}
		return arcCache{c}, nop, nil
	case "2q":
		c, err := lru.New2Q[uint64, struct{}](size)
		if err != nil {
			return nil, nop, err
		}
		return twoQCache{c}, nop, nil
	case "s3-fifo":
		return newS3FIFO(size), nop, nil
	case "sieve":
		return newSieve(size), nop, nil
	case "opt":
		return newOPT(size, keys), nop, nil
	}
	return nil, nop, errors.New("unknown policy " + name)
}

type memoCache struct{ c *memo.Cache }

func (m memoCache) Access(k uint64) bool {
	if _, err := m.c.Get(k); err == nil {
		return true
	}
	m.c.Set(k, k)
	return false
}

type otterCache struct{ c *otter.Cache[uint64, uint64] }

func (o otterCache) Access(k uint64) bool {
	if _, ok := o.c.GetIfPresent(k); ok {
		return true
	}
	o.c.Set(k, k)
	o.c.CleanUp()
	return false
}

type theineCache struct{ c *theine.Cache[uint64, uint64] }

func (t theineCache) Access(k uint64) bool {
	if _, ok := t.c.Get(k); ok {
		return true
	}
	t.c.Set(k, k, 1)
	t.c.Wait()
	return false
}

type lruCache struct{ c *lru.Cache[uint64, struct{}] }

func (l lruCache) Access(k uint64) bool {
	if _, ok := l.c.Get(k); ok {
		return true
	}
	l.c.Add(k, struct{}{})
	return false
}

type arcCache struct {
	c *arc.ARCCache[uint64, struct{}]
}

func (a arcCache) Access(k uint64) bool {
	if _, ok := a.c.Get(k); ok {
		return true
	}
	a.c.Add(k, struct{}{})
	return false
}

type twoQCache struct {
	c *lru.TwoQueueCache[uint64, struct{}]
}

func (q twoQCache) Access(k uint64) bool {
	if _, ok := q.c.Get(k); ok {
		return true
	}
	q.c.Add(k, struct{}{})
	return false
}

// fifoNode is an entry of the reference S3-FIFO and SIEVE below.
type fifoNode struct {
	key        uint64
	freq       int  // S3-FIFO: 0..3
	visited    bool // SIEVE
	prev, next *fifoNode
}

// fifo is a queue: push at the head, pop at the tail.
type fifo struct {
	head, tail *fifoNode
	n          int
}

func (q *fifo) push(n *fifoNode) {
	n.prev, n.next = nil, q.head
	if q.head != nil {
		q.head.prev = n
	} else {
		q.tail = n
	}
	q.head = n
	q.n++
}

func (q *fifo) remove(n *fifoNode) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		q.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		q.tail = n.prev
	}
	n.prev, n.next = nil, nil
	q.n--
}

// s3fifo is a reference S3-FIFO (Yang, Zhang, Qiu, Yue and Vinayak, "FIFO
// queues are all you need for cache eviction", SOSP 2023), written from the
// paper's algorithm: a small FIFO of 10% of the entries, a main FIFO with
// 2-bit use counts and reinsertion, and a ghost FIFO of the keys evicted
// from the small queue, as many as main holds. An entry leaving the small
// queue moves to main if it was used again there; a miss on a ghost key
// goes straight to main.
type s3fifo struct {
	size, smallMax    int
	small, main       fifo
	index             map[uint64]*fifoNode
	ghost             map[uint64]int // key → the sequence number of its latest entry in ghostQ
	ghostQ            []ghostEntry   // a ring
	ghostHead, ghostN int
	seq               int
}

type ghostEntry struct {
	key uint64
	seq int
}

func newS3FIFO(size int) *s3fifo {
	s := &s3fifo{size: size, smallMax: max(1, size/10), index: make(map[uint64]*fifoNode, size), ghost: map[uint64]int{}}
	s.ghostQ = make([]ghostEntry, max(1, size-s.smallMax))
	return s
}

func (s *s3fifo) Access(k uint64) bool {
	if n, ok := s.index[k]; ok {
		n.freq = min(n.freq+1, 3)
		return true
	}
	for s.small.n+s.main.n >= s.size {
		s.evict()
	}
	n := &fifoNode{key: k}
	s.index[k] = n
	if _, ok := s.ghost[k]; ok {
		delete(s.ghost, k)
		s.main.push(n)
	} else {
		s.small.push(n)
	}
	return false
}

func (s *s3fifo) evict() {
	if s.small.n >= s.smallMax || s.main.n == 0 {
		for s.small.n > 0 {
			t := s.small.tail
			s.small.remove(t)
			if t.freq > 0 {
				t.freq = 0
				s.main.push(t)
				if s.main.n > s.size-s.smallMax {
					s.evictMain()
				}
				continue
			}
			delete(s.index, t.key)
			s.addGhost(t.key)
			return
		}
	}
	s.evictMain()
}

func (s *s3fifo) evictMain() {
	for s.main.n > 0 {
		t := s.main.tail
		s.main.remove(t)
		if t.freq > 0 {
			t.freq--
			s.main.push(t)
			continue
		}
		delete(s.index, t.key)
		return
	}
}

func (s *s3fifo) addGhost(k uint64) {
	if s.ghostN == len(s.ghostQ) {
		old := s.ghostQ[s.ghostHead]
		if seq, ok := s.ghost[old.key]; ok && seq == old.seq {
			delete(s.ghost, old.key)
		}
		s.ghostN--
		s.ghostHead = (s.ghostHead + 1) % len(s.ghostQ)
	}
	s.seq++
	s.ghostQ[(s.ghostHead+s.ghostN)%len(s.ghostQ)] = ghostEntry{k, s.seq}
	s.ghostN++
	s.ghost[k] = s.seq
}

// sieve is a reference SIEVE (Zhang, Yang, Yue, Vigfusson and Rashmi,
// "SIEVE is Simpler than LRU", NSDI 2024): one FIFO with a visited bit per
// entry and a hand that moves from the tail toward the head, clearing
// visited bits and evicting the first unvisited entry.
type sieve struct {
	size  int
	q     fifo
	hand  *fifoNode
	index map[uint64]*fifoNode
}

func newSieve(size int) *sieve {
	return &sieve{size: size, index: make(map[uint64]*fifoNode, size)}
}

func (s *sieve) Access(k uint64) bool {
	if n, ok := s.index[k]; ok {
		n.visited = true
		return true
	}
	if s.q.n >= s.size {
		h := s.hand
		if h == nil {
			h = s.q.tail
		}
		for h.visited {
			h.visited = false
			h = h.prev
			if h == nil {
				h = s.q.tail
			}
		}
		s.hand = h.prev
		s.q.remove(h)
		delete(s.index, h.key)
	}
	n := &fifoNode{key: k}
	s.q.push(n)
	s.index[k] = n
	return false
}

// opt is Belady's offline optimum with bypass: on a miss with the cache
// full, evict the entry used again farthest in the future, or keep out the
// missed key when its own next use is farther still.
type opt struct {
	size   int
	next   []int // next[i]: the index of keys[i]'s next request, or MaxInt
	i      int
	nextOf map[uint64]int // cached key → its next use
	h      optHeap
}

func newOPT(size int, keys []uint64) *opt {
	next := make([]int, len(keys))
	last := map[uint64]int{}
	for i := len(keys) - 1; i >= 0; i-- {
		if j, ok := last[keys[i]]; ok {
			next[i] = j
		} else {
			next[i] = math.MaxInt
		}
		last[keys[i]] = i
	}
	return &opt{size: size, next: next, nextOf: make(map[uint64]int, size)}
}

func (o *opt) Access(k uint64) bool {
	nu := o.next[o.i]
	o.i++
	if _, ok := o.nextOf[k]; ok {
		o.nextOf[k] = nu
		heap.Push(&o.h, optItem{k, nu})
		return true
	}
	if len(o.nextOf) >= o.size {
		for {
			top := o.h[0]
			if cur, ok := o.nextOf[top.key]; !ok || cur != top.next {
				heap.Pop(&o.h) // stale
				continue
			}
			if nu >= top.next {
				return false // bypass
			}
			heap.Pop(&o.h)
			delete(o.nextOf, top.key)
			break
		}
	}
	o.nextOf[k] = nu
	heap.Push(&o.h, optItem{k, nu})
	return false
}

type optItem struct {
	key  uint64
	next int
}

// optHeap is a max-heap by next use.
type optHeap []optItem

func (h optHeap) Len() int           { return len(h) }
func (h optHeap) Less(i, j int) bool { return h[i].next > h[j].next }
func (h optHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *optHeap) Push(x any)        { *h = append(*h, x.(optItem)) }
func (h *optHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
