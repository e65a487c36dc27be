package engine

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// index maps encoded keys to entries. Reads take no lock: open addressing
// with linear probing over a table of atomic slots, which readers load and
// probe. Writes come from one goroutine at a time (the cache's writers hold
// Cache.mu): a writer inserts by storing a new Node into a free slot,
// replaces an entry by storing its new Node into its slot, deletes by
// storing a tombstone, and grows by filling a new table and publishing it.
// A published Node is never modified where readers look (key, hash, value,
// expiry), so a reader sees a whole entry or none.
//
// Compared with a Go map behind a RWMutex, a hit costs no atomic
// read-modify-write and parallel readers share cache lines read-only; a
// slot costs 8 bytes.
type index struct {
	t atomic.Pointer[table]
}

type table struct {
	slots []atomic.Pointer[Node]
	mask  uint64
	live  int // entries; written by the writer only
	used  int // entries and tombstones; written by the writer only
	// limit is the most slots in use (entries and tombstones) before the
	// table is rebuilt, set when it is made (see denseSlots).
	limit int
}

// tombstone marks a deleted slot, so that probes go on past it. Its key
// area is zero: the empty key (see lenByte), which no lookup matches.
var tombstone = &new(struct {
	n Node
	k [16]byte
}).n

const minTable = 16

// A table made for up to denseSlots/4 entries (up to denseSlots slots, 256
// KiB) is made at most a quarter full of entries and rebuilt when entries
// and tombstones fill half of it; one made for more at most half full,
// rebuilt at three quarters (see table.limit). A full small cache has 4
// to 8 slots per entry (32 to 64 bytes), where the large ones' sizing would
// give it 2 to 4 (16 to 32 bytes); in return a lookup of a missing key,
// which probes until a free slot, reads fewer entries, each a cache line
// of its own. In a full cache every miss is such a lookup and every
// eviction leaves a tombstone: on the Zipf benchmark at capacity 1,000,
// cachegrind counted 0.73 data-cache misses per call in key compares,
// where the large ones' sizing gave 1.56. In a large cache the slots
// would cost as much as the entries' keys.
const denseSlots = 1 << 15

// emptyTable is the table of every empty index: one free slot, which
// lookups find at once. No writer ever writes to it: the first insert finds
// it full and publishes a table of its own.
var emptyTable = newTable(1)

func (x *index) init() { x.t.Store(emptyTable) }

func newTable(size int) *table {
	return &table{slots: make([]atomic.Pointer[Node], size), mask: uint64(size - 1)}
}

// Get returns the entry for key k with hash h, or nil. Safe for any
// goroutine.
func (x *index) Get(k []byte, h uint64) *Node {
	t := x.t.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		n := t.slots[i].Load()
		if n == nil {
			return nil
		}
		if keyEqual(n, k) { // a tombstone's key is empty; keys never are
			return n
		}
	}
}

// getString returns the entry whose key is fid, byte(len(s)), s (len(s) <
// 128, h = hashFidString(fid, s)), or nil, comparing each candidate's key
// with fid and s where they lie: the key is not made, and a lookup does not
// read bytes it has just written (which stalls the load until the stores
// retire).
func (x *index) getString(fid uint64, s string, h uint64) *Node {
	t := x.t.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		n := t.slots[i].Load()
		if n == nil {
			return nil
		}
		if keyEqualFidString(n, fid, s) {
			return n
		}
	}
}

// keyEqualFidString reports whether n's key is fid, byte(len(s)), s.
func keyEqualFidString(n *Node, fid uint64, s string) bool {
	a := keyAt(n)
	switch keyLen(n) {
	case 9 + len(s): // inline: its 8th byte, the length, stands for fid's top byte, 0 (see lenByte)
		kb := unsafe.Slice((*byte)(a), 9+len(s))
		return binary.LittleEndian.Uint64(kb)&^lenMask == fid && kb[8] == byte(len(s)) && string(kb[9:]) == s
	case outKey:
		k := (*outside)(a).k
		return len(k) == 9+len(s) && binary.LittleEndian.Uint64(UnsafeBytes(k)) == fid && k[8] == byte(len(s)) && k[9:] == s
	}
	return false
}

// lenMask is the bits of an inline key's first 8 bytes, read
// little-endian, that hold its length (see lenByte).
const lenMask = 0xff << (8 * lenByte)

// slot returns the slot holding n in t, or nil. Writer only.
func (t *table) slot(n *Node) *atomic.Pointer[Node] {
	if i, ok := t.find(n); ok {
		return &t.slots[i]
	}
	return nil
}

// find returns the index of the slot holding n in t, and whether there is
// one. Writer only.
func (t *table) find(n *Node) (uint64, bool) {
	for i := indexHash(n) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i].Load()
		if s == n {
			return i, true
		}
		if s == nil {
			return 0, false
		}
	}
}

// insert adds n, whose key is not in the index. Writer only.
func (x *index) insert(n *Node, h uint64) {
	t := x.t.Load()
	if t.crowded() {
		t = x.rebuild(t, t.live+1)
	}
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i].Load()
		if s == nil || s == tombstone {
			if s == nil {
				t.used++
			}
			t.live++
			t.slots[i].Store(n)
			return
		}
	}
}

// insertNew adds n unless an entry with its key is in the index, in one
// probe, and returns that entry (nil when it added n). h is the key's
// hash. Writer only.
func (x *index) insertNew(n *Node, h uint64) *Node {
	t := x.t.Load()
	if t.crowded() {
		t = x.rebuild(t, t.live+1)
	}
	var b [maxInline]byte
	k := keyIn(n, &b)
	free := int64(-1) // the first tombstone on the way
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i].Load()
		switch {
		case s == nil:
			if free < 0 {
				free = int64(i)
				t.used++
			}
			t.live++
			t.slots[free].Store(n)
			return nil
		case s == tombstone:
			if free < 0 {
				free = int64(i)
			}
		case keyEqual(s, k):
			return s
		}
	}
}

// crowded reports whether one more slot in use (an entry or a tombstone)
// would take t past its limit. Writer only.
func (t *table) crowded() bool { return t.used+1 > t.limit }

// rebuild publishes a table sized for live entries (see denseSlots) with
// the entries of t, dropping its tombstones. Its bound is the one its size
// was chosen by: a table sized for a large cache is not held to the small
// ones' half, which could leave it no room past live (16,384 entries in
// 32,768 slots), and rebuilt at every insertion that follows a tombstone.
func (x *index) rebuild(t *table, live int) *table {
	size := minTable
	dense := live*4 <= denseSlots
	for size < live*2 || (dense && size < live*4) {
		size *= 2
	}
	nt := newTable(size)
	nt.limit = size * 3 / 4
	if dense {
		nt.limit = size / 2
	}
	for i := range t.slots {
		n := t.slots[i].Load()
		if n == nil || n == tombstone {
			continue
		}
		j := indexHash(n) & nt.mask
		for nt.slots[j].Load() != nil {
			j = (j + 1) & nt.mask
		}
		nt.slots[j].Store(n)
		nt.live++
		nt.used++
	}
	x.t.Store(nt)
	return nt
}

// replace puts n, an entry with old's key, in old's place. Writer only.
func (x *index) replace(old, n *Node) {
	if s := x.t.Load().slot(old); s != nil {
		s.Store(n)
	}
}

// remove deletes n and reports whether it was in the index. Writer only.
//
// The slot becomes a tombstone, or free again when the slot after it is
// free: no probe that goes on past a slot followed by a free one finds
// anything, so the free slot ends every probe where the tombstone would
// have let it go on to nothing. The tombstones just before it are freed
// too. Every probe chain stays unbroken for readers at all times (each
// slot freed has a free slot after it when it is freed), and with fewer
// tombstones the table is rebuilt less often: in a full cache, where every
// insertion follows an eviction, about half as often.
func (x *index) remove(n *Node) bool {
	t := x.t.Load()
	i, ok := t.find(n)
	if !ok {
		return false
	}
	if t.slots[(i+1)&t.mask].Load() != nil {
		t.slots[i].Store(tombstone)
	} else {
		for {
			t.slots[i].Store(nil)
			t.used--
			i = (i - 1) & t.mask
			if t.slots[i].Load() != tombstone {
				break
			}
		}
	}
	t.live--
	if t.live*8 < len(t.slots) && len(t.slots) > minTable {
		x.rebuild(t, t.live) // shrink after many deletions
	}
	return true
}

// Len returns the number of entries. Writer only.
func (x *index) Len() int { return x.t.Load().live }

// clear drops every entry. Writer only.
func (x *index) clear() { x.t.Store(emptyTable) }

// keyHashSeed and keyHashSeed16 key hashKey, so that hashes differ from one
// process to the next.
var (
	keyHashSeed   = maphash.MakeSeed()
	keyHashSeed16 = maphash.Comparable(keyHashSeed, 16) | 1
)

// HashKey hashes an encoded key for the index: a 16-byte key (a function
// number and one 8-byte argument, the commonest) with hashSeeded's two
// multiply-mixes (2 ns), any other with the runtime's map hash (hash/maphash,
// AES-based where the processor has it: 3.6 ns at 20 bytes where the
// mixes take 5.9), seeded per process. It spreads keys over index slots and
// shards; it decides nothing about equality (the index compares whole
// keys), and nothing about eviction (W-TinyLFU counts by hashSeeded with a
// fixed seed, the same in every process).
func HashKey(k []byte) uint64 {
	if len(k) >= 9 && len(k) < 9+128 && int(k[8]) == len(k)-9 {
		// The shape of a typed function's string argument (a function
		// number, the string's length in one byte, its bytes), checked
		// first whatever the length: hashed in two parts, so that
		// hashFidString gives the same hash from the string where it
		// lies (see index.getString). (Any other key of this shape is
		// hashed so too: the hash is a function of the bytes alone.)
		return HashFidString(binary.LittleEndian.Uint64(k), unsafe.String(unsafe.SliceData(k[9:]), len(k)-9))
	}
	if len(k) == 16 {
		return hashSeeded(keyHashSeed16, k)
	}
	return maphash.Bytes(keyHashSeed, k)
}

// HashFidString is hashKey of the key fid, byte(len(s)), s, for len(s) <
// 128, computed without making the key.
func HashFidString(fid uint64, s string) uint64 {
	return mix(maphash.String(keyHashSeed, s)^fid, 0x9e3779b97f4a7c15)
}

// hashSeeded hashes an encoded key with a fixed seed: a multiply-mix over
// 8-byte words, in the style of wyhash, the same in every process, so that
// W-TinyLFU's decisions (nodeHash) replay exactly.
func hashSeeded(seed uint64, k []byte) uint64 {
	if len(k) == 16 {
		// The common key (a function number and one 8-byte argument),
		// hashed once per lookup and per recorded W-TinyLFU hit.
		return hash16(seed, binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[8:16]))
	}
	if len(k) < 8 {
		h := seed ^ uint64(len(k))*0x9e3779b97f4a7c15
		if len(k) > 0 {
			h = mix(h^littleEndian(k), 0x94d049bb133111eb)
		}
		return mix(h, 0x2545f4914f6cdd1d)
	}
	return hashWords(seed, len(k), binary.LittleEndian.Uint64(k), k[8:])
}

// hashWords is hashSeeded of a key of kl >= 8 bytes: the word w0 (its
// first 8 bytes, little-endian), then rest, the others; so that a key
// whose first word is not in memory as such (an inline key's, see
// lenByte) is hashed where it lies.
func hashWords(seed uint64, kl int, w0 uint64, rest []byte) uint64 {
	if len(rest) == 8 {
		return hash16(seed, w0, binary.LittleEndian.Uint64(rest))
	}
	h := seed ^ uint64(kl)*0x9e3779b97f4a7c15
	h = mix(h^w0, 0xbf58476d1ce4e5b9)
	k := rest
	for len(k) >= 8 {
		h = mix(h^binary.LittleEndian.Uint64(k), 0xbf58476d1ce4e5b9)
		k = k[8:]
	}
	if tail := len(k); tail > 0 {
		// The tail's bytes, little-endian: the last 8 bytes of the key,
		// shifted down past those the words above took (rest may be
		// shorter than 8 bytes: w0's bytes precede it).
		var t uint64
		if len(rest) >= 8 {
			t = binary.LittleEndian.Uint64(rest[len(rest)-8:]) >> (8 * (8 - tail))
		} else {
			t = littleEndian(k)
		}
		h = mix(h^t, 0x94d049bb133111eb)
	}
	return mix(h, 0x2545f4914f6cdd1d)
}

// littleEndian reads k, of fewer than 8 bytes, as a little-endian word.
func littleEndian(k []byte) uint64 {
	var t uint64
	for i, b := range k {
		t |= uint64(b) << (8 * i)
	}
	return t
}

// hash16 is hashWords of a 16-byte key, words w0 and w1: its loop,
// unrolled.
func hash16(seed, w0, w1 uint64) uint64 {
	h := seed ^ 0xe3779b97f4a7c150 // 16 * 0x9e3779b97f4a7c15, as hashWords's uint64(kl)*... wraps
	h = mix(h^w0, 0xbf58476d1ce4e5b9)
	h = mix(h^w1, 0xbf58476d1ce4e5b9)
	return mix(h, 0x2545f4914f6cdd1d)
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func HashString(k string) uint64 {
	return HashKey(UnsafeBytes(k))
}

// UnsafeBytes views s as bytes, which the caller must not modify.
func UnsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// keyEqual reports whether n's key is k. A short key lies right after the
// Node, in the cache line the lookup has just read. An inline key's first
// 8 bytes are compared as one word, its length byte masked (see lenByte:
// the word matches only a k whose 8th byte is 0); the rest of a key of up
// to 24 bytes (a function number and an int, or a short string argument)
// as one or two 8-byte words, overlapping where the key is shorter, with no
// branch on the length: memequal's branches on length and alignment
// mispredicted on keys of mixed lengths.
func keyEqual(n *Node, k []byte) bool {
	a := keyAt(n)
	kl := keyLen(n)
	if kl != len(k) {
		return kl == outKey && (*outside)(a).k == string(k)
	}
	if kl == 16 { // the commonest: a function number and an 8-byte argument
		k = k[:16]
		return word(a, 0)&^lenMask == binary.LittleEndian.Uint64(k) && word(a, 8) == binary.LittleEndian.Uint64(k[8:])
	}
	return inlineEqual(a, kl, k)
}

// inlineEqual is keyEqual of an inline key of kl bytes (but 16) at a and
// k, of the same length; or of a key kept outside whose length is outKey.
func inlineEqual(a unsafe.Pointer, kl int, k []byte) bool {
	switch kl {
	case 0: // the tombstone (a lookup's key is never empty)
		return false
	case outKey: // kept outside, though as long as the tag says
		return (*outside)(a).k == string(k)
	}
	if word(a, 0)&^lenMask != binary.LittleEndian.Uint64(k) {
		return false
	}
	switch {
	case kl < 16:
		// The word ending the key, its bytes before the 9th shifted out
		// (all of them for an 8-byte key: a shift by 64 gives 0).
		sh := 8 * (16 - kl)
		return word(a, kl-8)>>sh == binary.LittleEndian.Uint64(k[kl-8:])>>sh
	case kl <= 24:
		return (word(a, 8)^binary.LittleEndian.Uint64(k[8:]))|
			(word(a, kl-8)^binary.LittleEndian.Uint64(k[kl-8:])) == 0
	}
	return unsafe.String((*byte)(unsafe.Add(a, 8)), kl-8) == string(k[8:])
}

// word reads 8 bytes at a+off, little-endian.
func word(a unsafe.Pointer, off int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(unsafe.Add(a, off))[:])
}

// indexHash is HashKey of n's key, read where it lies (see lenByte).
func indexHash(n *Node) uint64 {
	a := keyAt(n)
	switch kl := keyLen(n); {
	case kl == outKey:
		return HashString((*outside)(a).k)
	case kl >= 9 && kl < 9+128 && int(*(*byte)(unsafe.Add(a, 8))) == kl-9:
		return HashFidString(word(a, 0)&^lenMask, unsafe.String((*byte)(unsafe.Add(a, 9)), kl-9))
	case kl == 16:
		return hash16(keyHashSeed16, word(a, 0)&^lenMask, word(a, 8))
	}
	var b [maxInline]byte
	return HashKey(keyIn(n, &b))
}
