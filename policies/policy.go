// Package policies holds memo's eviction policies: small single-goroutine
// cores that order entries and name the next one to evict. They know nothing
// about locks, time or keys (W-TinyLFU takes a hash of the key from the
// caller, see [NewSized]); the cache owns the lock and serializes every
// call, as hashicorp/golang-lru's simplelru does under its locked wrapper.
//
// [WTinyLFU] is Window TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A
// Highly Efficient Cache Admission Policy", ACM ToS 2017) laid out as
// Caffeine lays it out, with its window sized by miniature simulations
// (Waldspurger, Saemundsson, Ahmad and Park, "Cache Modeling and
// Optimization using Miniature Simulations", USENIX ATC 2017), a one-shot
// forget of its warm-up counts decided by one more simulation, and, for
// caches of 50,000 entries or more, non-resident history as CLOCK-Pro
// (Jiang, Chen and Zhang, USENIX ATC 2005) and S3-FIFO (Yang et al., SOSP
// 2023) keep it. Its memory: 8 bytes of count-min sketch per entry of
// capacity (16 up to 4,096 entries), grown with the entries; about 0.5 bytes
// of history per entry of capacity from 50,000 entries; and up to six
// simulations of at most 512 entries each.
package policies

import "fmt"

// Node is one entry's place in a policy. The cache allocates it, usually as
// part of its own entry, and keeps its data in Value, so that an entry and its
// policy bookkeeping are one allocation. The zero Node is ready to be added.
// A Node belongs to at most one policy at a time.
type Node[V any] struct {
	Value V

	prev, next *Node[V]
	// bucket is the list holding the node, nil while it is in no policy.
	// For LRU it is the policy's only list; for LFU, its use-count bucket.
	bucket *bucket[V]
}

// bucket is a ring of nodes around a sentinel, as in container/list. LRU
// uses one; LFU keeps a ring of them in increasing count order.
type bucket[V any] struct {
	root Node[V] // sentinel: root.next is the head, root.prev the tail
	// owner identifies the policy holding the bucket, so that Touch and
	// Remove can tell their own nodes from anyone else's in O(1).
	owner      *bucket[V]
	count      int        // LFU: the use count shared by the bucket's nodes
	prev, next *bucket[V] // LFU: neighbouring buckets
}

func (b *bucket[V]) init(owner *bucket[V]) {
	b.root.prev, b.root.next = &b.root, &b.root
	b.owner = owner
}

func (b *bucket[V]) empty() bool { return b.root.next == &b.root }

// pushBack links n at the tail of b.
func (b *bucket[V]) pushBack(n *Node[V]) {
	at := b.root.prev
	n.prev, n.next = at, &b.root
	at.next = n
	b.root.prev = n
	n.bucket = b
}

// moveToBack moves n, which b holds, to the tail of b: unlink and pushBack
// without clearing and rewriting the links that stay (its bucket), which
// saves three pointer writes, and their write barriers while the garbage
// collector marks, on every use the cache drains.
func (b *bucket[V]) moveToBack(n *Node[V]) {
	if n.next == &b.root {
		return // the tail already
	}
	b.relink(n)
}

// moveIn moves n from the other bucket holding it to the tail of b: unlink
// and pushBack without clearing the links that pushBack rewrites (and their
// write barriers while the garbage collector marks), as moveToBack does.
func (b *bucket[V]) moveIn(n *Node[V]) {
	b.relink(n)
	n.bucket = b
}

// relink unlinks n, which a bucket holds, and links it at the tail of b,
// leaving n.bucket as it is.
func (b *bucket[V]) relink(n *Node[V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
	at := b.root.prev
	n.prev, n.next = at, &b.root
	at.next = n
	b.root.prev = n
}

// unlink removes n from whatever bucket holds it and marks it unlinked.
func unlink[V any](n *Node[V]) {
	n.prev.next = n.next
	n.next.prev = n.prev
	n.prev, n.next, n.bucket = nil, nil, nil
}

// Policy is an eviction core. It is not safe for concurrent use: the caller
// serializes every call. Every method is O(1) except Clear, which is O(n).
type Policy[V any] interface {
	// Add inserts n, which must not be in any policy, as the most recent
	// entry (LFU: with a use count of 1). It panics if n is already linked.
	Add(n *Node[V])
	// Touch records one use of n. It is a no-op if n is not in this policy
	// (never added, removed, evicted, cleared, or in another policy).
	Touch(n *Node[V])
	// Remove unlinks n. It is a no-op if n is not in this policy.
	Remove(n *Node[V])
	// Replace puts n, which must not be in any policy, in old's place (the
	// same recency, or the same count and rank among its ties) and unlinks
	// old. If old is not in this policy, it adds n as Add does.
	Replace(old, n *Node[V])
	// Victim returns the entry to evict next, or nil when empty. It does not
	// remove it; the caller removes it before calling Victim again (W-TinyLFU
	// decides an admission in Victim, and counts its loser as evicted).
	Victim() *Node[V]
	// Len returns the number of nodes in the policy.
	Len() int
	// Clear removes every node, leaving each unlinked so that a later Touch
	// or Remove of it is a no-op.
	Clear()
}

// New returns an empty policy of kind k. It panics if k is not valid, or
// is [WTinyLFU], which needs the capacity and a hash: use [NewSized].
func New[V any](k Kind) Policy[V] {
	switch k {
	case LRU:
		return newLRU[V]()
	case LFU:
		return newLFU[V]()
	case WTinyLFU:
		panic("memo: policies.New(WTinyLFU): use policies.NewSized, which takes the capacity and a key hash")
	}
	panic(fmt.Sprintf("memo: unknown policy %v (want policies.LRU, policies.LFU or policies.WTinyLFU)", k))
}

// NewSized returns an empty policy of kind k for a cache holding at most
// capacity entries (values below 1 count as 1). hash returns a hash of the
// node's key, the same for every node of the same key and spread over all
// 64 bits; [WTinyLFU] counts key frequencies with it, LRU and LFU ignore
// capacity and hash (hash may then be nil). It panics if k is not valid.
//
// A WTinyLFU policy decides admission in Victim: the caller adds the new
// node first and then evicts Victim while Len exceeds capacity, and the
// victim may be the node just added (the cache then does not keep it).
func NewSized[V any](k Kind, capacity int, hash func(*Node[V]) uint64) Policy[V] {
	if k == WTinyLFU {
		if hash == nil {
			panic("memo: policies.NewSized(WTinyLFU) needs a hash")
		}
		return newWTinyLFU(capacity, hash)
	}
	return New[V](k)
}

// replaceNode links n where old is, in old's bucket, and unlinks old.
func replaceNode[V any](old, n *Node[V]) {
	n.prev, n.next, n.bucket = old.prev, old.next, old.bucket
	old.prev.next = n
	old.next.prev = n
	old.prev, old.next, old.bucket = nil, nil, nil
}

func mustBeUnlinked[V any](n *Node[V]) {
	if n.bucket != nil {
		panic("memo: policies: Add of a node that is already in a policy")
	}
}
