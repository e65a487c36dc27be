package engine

import (
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/memokit/memo/policies"
)

// Node is a cache entry: the policy's node holding an item.
type Node = policies.Node[item]

// item is what the cache keeps for one entry. The key lives right after
// the Node, in the same allocation (see NewNode and keyIn). The key, the
// value and the expiry time never change once the entry is in the index (a
// Set of an existing key makes a new Node), so lookups read them without a
// lock; the rest of an extra is written under Cache.mu.
type item struct {
	// val is the value, or, for an entry with a TTL, an *extra holding it
	// (no value stored by memo is an *extra, which is unexported). Entries
	// that never expire so pay nothing for expiry, and a Node is 40 bytes.
	// A typed function's value may lie in the Node's own allocation, right
	// after the key (see NewValueNode).
	val any
}

// A key lies right after its Node in one of two forms, told apart by the
// key area's 8th byte (lenByte):
//   - inline: the key's bytes, in an array of 16, 32 or 48 bytes, except
//     the 8th byte, which holds the key's length (8 to 48). Every key memo
//     builds starts with a function number (0 for Cache's own keys) as 8
//     bytes little-endian, whose top byte, the 8th, is 0 for every number
//     below 2^56: a key of 8 to 48 bytes whose 8th byte is 0 is kept so,
//     that byte standing for its length.
//   - outside: 8 bytes, the 8th 0xff (outKey), then the key's string
//     header. Every other key.
//
// A zeroed area (the tombstone's) holds length 0: the empty key, which no
// lookup uses. Keeping the length in the key, rather than in a word of the
// Node, makes an entry of a function of an int with an 8-byte result
// (Node, key and value) 64 bytes, one size class.
const (
	lenByte   = 7    // the key area's byte holding an inline key's length
	outKey    = 0xff // lenByte's value for a key kept outside
	maxInline = 48   // the longest key kept inline
)

// outside is the key area of a key kept in a string of its own.
type outside struct {
	tag [8]byte // tag[lenByte] is outKey
	k   string
}

// ownKey returns key, kept outside, as the entry may keep it: a copy when
// it is short enough to lie in memory that its caller reuses (an
// in-flight Call's own key, see newCall and Recycle: an entry that kept
// it would find its key changed under it, a wrong hit for the next key),
// else key itself, which its caller made for the entry (Call.Key of a long
// key, Cache.Set's).
func ownKey(key string) string {
	if len(key) <= maxInline {
		return strings.Clone(key)
	}
	return key
}

// inlines reports whether key is kept inline (see lenByte).
func inlines(key string) bool {
	return len(key) >= 8 && len(key) <= maxInline && key[lenByte] == 0
}

// nodeSize is the size of a Node, where its key starts.
const nodeSize = unsafe.Sizeof(Node{})

// keyAt returns where n's key area lies.
func keyAt(n *Node) unsafe.Pointer { return unsafe.Add(unsafe.Pointer(n), nodeSize) }

// keyLen returns n's key area's length byte: an inline key's length,
// outKey, or 0 for the tombstone.
func keyLen(n *Node) int { return int(*(*byte)(unsafe.Add(keyAt(n), lenByte))) }

// keyIn returns n's encoded key: an inline key's bytes copied into buf, a
// key kept outside in its own string's bytes (which the caller must not
// modify), nil for the tombstone.
func keyIn(n *Node, buf *[maxInline]byte) []byte {
	a := keyAt(n)
	switch l := keyLen(n); l {
	case outKey:
		return UnsafeBytes((*outside)(a).k)
	case 0:
		return nil
	default:
		k := buf[:l]
		copy(k, unsafe.Slice((*byte)(a), l))
		k[lenByte] = 0
		return k
	}
}

// KeyOf returns a copy of n's encoded key ("" for the tombstone).
func KeyOf(n *Node) string {
	var b [maxInline]byte
	return string(keyIn(n, &b))
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

// NewNode allocates an entry, its key right after it (see lenByte): the
// bytes of a key of up to 48 bytes (a function number and an int or a short
// string argument), so that a lookup compares it in the cache line it reads
// the Node from; any other key's string header. The allocation is 56 bytes
// (a 64-byte size class) for keys of up to 16 bytes or kept outside, 72 up
// to 32, 88 up to 48.
func NewNode(key string, val any) *Node {
	var n *Node
	if inlines(key) {
		switch {
		case len(key) <= 16:
			n = inlineNode[[16]byte](key)
		case len(key) <= 32:
			n = inlineNode[[32]byte](key)
		default:
			n = inlineNode[[48]byte](key)
		}
	} else {
		nk := &struct {
			n Node
			k outside
		}{}
		nk.k.tag[lenByte] = outKey
		nk.k.k = ownKey(key)
		n = &nk.n
	}
	n.Value.val = val
	return n
}

// inlineNode allocates a Node followed by a K-sized array holding key (see
// lenByte).
func inlineNode[K [16]byte | [32]byte | [48]byte](key string) *Node {
	nk := &struct {
		n Node
		k K
	}{}
	fillKey(unsafe.Pointer(&nk.k), key)
	return &nk.n
}

// fillKey writes key, kept inline, at a (see lenByte).
func fillKey(a unsafe.Pointer, key string) {
	kb := unsafe.Slice((*byte)(a), len(key))
	copy(kb, key)
	kb[lenByte] = byte(len(key))
}

// NewValueNode allocates an entry for key, as NewNode does, with room for
// a T right after the key, and returns it with that room's address. The
// caller stores the value there and makes n.Value.val an interface holding
// it (see Hold), so that the entry and its value are one allocation.
func NewValueNode[T any](key string) (n *Node, v *T) { return newNode[T](key) }

// newNode allocates a Node, its key area sized for key and filled (see
// lenByte), and a T after it; it returns the Node and the T's address.
// (NewNode has no T: a zero-sized last field would be padded.)
func newNode[T any](key string) (*Node, *T) {
	if inlines(key) {
		switch {
		case len(key) <= 16:
			return valueNode[[16]byte, T](key)
		case len(key) <= 32:
			return valueNode[[32]byte, T](key)
		default:
			return valueNode[[48]byte, T](key)
		}
	}
	nk := &struct {
		n Node
		k outside
		v T
	}{}
	nk.k.tag[lenByte] = outKey
	nk.k.k = ownKey(key)
	return &nk.n, &nk.v
}

// valueNode allocates a Node followed by a K-sized array holding key (see
// lenByte) and a T.
func valueNode[K [16]byte | [32]byte | [48]byte, T any](key string) (*Node, *T) {
	nk := &struct {
		n Node
		k K
		v T
	}{}
	fillKey(unsafe.Pointer(&nk.k), key)
	return &nk.n, &nk.v
}

// A HeldType is what Hold needs of a type T: its type word, as in an
// interface holding a T; nil where T's values are not boxed apart (an
// interface type, a pointer-shaped type, a zero-sized one), which Hold
// then stores as they are. Made once per memoized function (see HeldFor).
type HeldType struct {
	ptr unsafe.Pointer // the type word of *T, which tells the Ts apart
	typ unsafe.Pointer
}

// eface is the layout of an interface value of type any.
type eface struct{ typ, data unsafe.Pointer }

// HeldFor returns ht if it was made for T, else a new HeldType for T. A
// zero T is boxed to see how an interface holds a T: with its value's
// address (data not nil), or the value itself (pointer-shaped: a zero
// value is nil), or not at all (an interface type: typ nil).
func HeldFor[T any](ht *HeldType) *HeldType {
	p := any((*T)(nil))
	ptr := (*eface)(unsafe.Pointer(&p)).typ
	if ht != nil && ht.ptr == ptr {
		return ht
	}
	ht = &HeldType{ptr: ptr}
	var z T
	if unsafe.Sizeof(z) == 0 {
		return ht
	}
	e := any(z)
	if ef := (*eface)(unsafe.Pointer(&e)); ef.typ != nil && ef.data != nil {
		ht.typ = ef.typ
	}
	return ht
}

// Hold returns v, the result of cl's execution, as an interface: one whose
// value lies in a new entry for cl's key (see NewValueNode), which cl
// keeps for Store to take, when ht has a type word; else v boxed as Go
// does. A miss of a typed function with a result Go would box on its own
// (an int, a string, a struct) so allocates once: the entry. ht must be
// HeldFor[T]'s.
func Hold[T any](cl *Call, v T, ht *HeldType) any {
	if ht.typ == nil {
		return v
	}
	n, p := NewValueNode[T](cl.Key)
	*p = v
	var e any
	ef := (*eface)(unsafe.Pointer(&e))
	ef.typ, ef.data = ht.typ, unsafe.Pointer(p)
	n.Value.val = e
	cl.held = n
	return e
}

// entryFor returns the entry to store val under key in: the one Hold made
// for val, if cl is its call (cl may be nil), else a new one.
func entryFor(cl *Call, key string, val any) *Node {
	if cl != nil && cl.held != nil {
		n := cl.held
		cl.held = nil
		if *(*eface)(unsafe.Pointer(&n.Value.val)) == *(*eface)(unsafe.Pointer(&val)) && cl.Key == key {
			return n
		}
	}
	return NewNode(key, val)
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
