package engine

import (
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/memokit/memo/policies"
)

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

// KeyOf returns n's encoded key. It shares n's memory: do not keep it
// beyond n (strings.Clone it).
func KeyOf(n *Node) string {
	kl := n.Value.klen
	switch {
	case kl&keyOut != 0:
		return *(*string)(keyAt(n))
	case kl == 0: // the tombstone
		return ""
	}
	return unsafe.String((*byte)(keyAt(n)), kl)
}

// Extra holds what only entries with a TTL need, so that the others stay
// small. A Node that has one holds it in its val.
type Extra struct {
	val any // the entry's value
	// Expires is when the entry Expires, since Cache.epoch; set before
	// the entry is published. Negative for an entry that only the expiry
	// timer removes, at -Expires (see sweptTTL): a hit on it reads no
	// clock.
	Expires          int64
	exp              *expList // the expiry list holding the entry
	expPrev, expNext *Node
}

// X returns n's extra, or nil for an entry that never expires.
func (n *item) X() *Extra {
	x, _ := n.val.(*Extra)
	return x
}

// Value returns the value stored.
func (n *item) Value() any {
	if x, ok := n.val.(*Extra); ok {
		return x.val
	}
	return n.val
}

// Expires returns when n Expires, since the cache's epoch; 0 = never.
func (n *item) Expires() int64 {
	if x, ok := n.val.(*Extra); ok {
		return x.at()
	}
	return 0
}

// at returns when x's entry expires, since the cache's epoch; 0 = never.
func (x *Extra) at() int64 {
	if x.Expires < 0 {
		return -x.Expires
	}
	return x.Expires
}

// ext returns n's extra, making it if needed. c.mu is held, and n is not
// published yet.
func ext(n *Node) *Extra {
	x := n.Value.X()
	if x == nil {
		x = &Extra{val: n.Value.val}
		n.Value.val = x
	}
	return x
}

// setExt makes x n's extra, holding n's value. c.mu is held, and n is not
// published yet.
func setExt(n *Node, x *Extra) {
	x.val = n.Value.Value()
	n.Value.val = x
}

// NewNode allocates an entry, its key right after it (see item): the bytes
// of a key of up to 48 bytes (a function number and an int or a short
// string argument), so that a lookup compares it in the cache line it
// reads the Node from; a longer key's string header. The allocation is 64
// bytes for keys of up to 16 bytes or longer than 48, 80 up to 32, 96 up to
// 48.
func NewNode(key string, val any) *Node {
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

// Freshness data. Entries stored by a function with WithRefreshAfter, WithStaleIfError or
// WithTTLFunc, or by a cache with WithTTLJitter, carry a FreshX instead of
// the plain extra: when they were stored, when they expire, when a refresh
// is due and when they are finally removed. They are told apart from plain
// entries without a lock by the low bit of extra.expires (even for a
// FreshX, odd for the others), and their hit path is the plain one: a
// FreshX's expires is the first moment anything must happen (a refresh is
// due or the TTL ends), so until then a hit costs what any hit costs, and
// after it the lookup takes the slow path that handles it (late). Because
// their expiry times are arbitrary (jittered, per result), they expire
// through a min-heap rather than the per-TTL FIFO lists.
//
// FreshX is the extra of an entry with freshness data. Every field is set
// before the entry is published and never changes, but hidx (under
// Cache.mu) and the outage's retryAt and backoff (under the key's shard's
// mu).
type FreshX struct {
	Extra           // expires: the first of refreshAt and ttlEnd that is not 0
	RefreshAt int64 // when a hit starts a refresh; 0: never
	TtlEnd    int64 // when the entry stops being a hit; 0: never
	RemoveAt  int64 // when it is removed: ttlEnd plus the stale window; 0: never
	Hidx      int   // its place in the heap; -1 when not in it
	// retryAt is when the next retry of an outage may start (see
	// serveStale), 0 while the entry is in none; backoff is the outage's
	// current back-off.
	retryAt int64
	backoff time.Duration
}

// Tagged reports whether n's extra is a freshX (see the top of this file).
// n has an extra.
func Tagged(n *Node) bool { return n.Value.X().Expires&1 == 0 }

func FreshOf(n *Node) *FreshX { return (*FreshX)(unsafe.Pointer(n.Value.X())) }

// PlainExpiry makes a plain entry's expiry time odd, without making it
// later.
func PlainExpiry(t int64) int64 { return (t - 1) | 1 }

// AddTime returns t+d, saturating: an overflow means "for ever".
func AddTime(t int64, d time.Duration) int64 {
	if s := t + int64(d); s >= t {
		return s
	}
	return math.MaxInt64
}

// expList holds the entries of one TTL in the order they expire: entries
// with the same TTL expire in the order they were written, so a FIFO list
// per TTL keeps expiry O(1).
type expList struct {
	ttl        time.Duration
	head, tail *Node
}
