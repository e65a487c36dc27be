package keys

import (
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Markers written before values whose shape varies.
const (
	tagNil      byte = 0 // nil pointer, slice, map, func, chan, interface
	tagValue    byte = 1 // a non-nil value follows
	tagIdentity byte = 2 // a Go object's identity id follows (never reused)
	tagForeign  byte = 3 // the raw address of memory the Go runtime does not manage
	tagBackref  byte = 4 // a container met again on its own path (a cycle): its identity follows
	TagNonce    byte = 5 // a value that cannot be identified: a fresh number, never equal to another key
)

// MaxDepth bounds the nesting the encoder follows, so that no argument can
// overflow the stack. A deeper container gets a nonce: such a value equals
// nothing, not even itself (a miss), since keying it by identity would
// return a stale result after the caller changed it in place.
const MaxDepth = 1000

// MaxKeyLen bounds the work and memory of one key. A value that shares
// sub-values (x := []any{y, y}; y := []any{z, z}; ...; or a []string of
// many copies of one long string) can be exponentially larger as a tree
// than in memory. No string, byte slice or container is appended once the
// key would pass maxKeyLen bytes, and no element of a slice, array or map
// once it has (flat slices and arrays check the least their elements
// write before the first: an int8 takes 8 bytes of key): the key gets a
// nonce instead, and the encoding stops descending, so that it costs
// O(maxKeyLen) memory and time linear in the value's memory and the key's
// length, never more: past shareFrom bytes, a part met again is copied
// rather than walked again (see keyState.shared).
const MaxKeyLen = 4 << 20

// ShareFrom and shareMin decide which containers a key records for reuse
// (see keyState.shared): once the key has passed ShareFrom bytes, each
// container whose encoding took at least shareMin bytes. Smaller keys, the
// usual ones, record nothing and pay nothing for it.
const (
	ShareFrom = 64 << 10
	shareMin  = 256
)

// NeverFID replaces the function number (the first 8 bytes) of a key that
// can never hit again (see keyState.never): no function gets that number
// and Cache keys have 0, so such a key matches no stored entry, even where
// its remaining bytes are cut short.
const NeverFID = ^uint64(0)

// An Encoder appends the encoding of v, whose type is the one the encoder
// was built for.
type Encoder func(s *State, v reflect.Value)

// State is the scratch space of one key encoding. States are pooled.
type State struct {
	Buf  []byte
	Path []Visit          // containers being encoded, for cycle detection
	Refs []unsafe.Pointer // Go objects keyed by identity in this key
	// Deref makes pointers key by the value they point to (WithDeref).
	Deref bool
	// Opaque is set when part of the key is an identity that stands for a
	// value rather than a pointer: a cycle, a func, a too-deep container.
	Opaque bool
	// cyclic is set when a container was met again on its own path.
	cyclic bool
	// Never is set when the key can never hit again: it grew past
	// maxKeyLen (tooLong is set too), or holds a value memo cannot identify
	// (a func in an unexported field, a value nested past maxDepth). Its
	// bytes are then no key; a call with it runs and stores nothing.
	Never, TooLong bool
	// depth counts the interface values being encoded.
	depth int
	// Stable writes type names instead of process-local type ids, for
	// keys shared across processes (stable.go); local is set when the key
	// holds something process-local all the same (an identity, a nonce).
	Stable, local bool
	// Ambiguous is the first type in a stable key whose name another type
	// shares (stable.go), for the log.
	Ambiguous reflect.Type
	// sortScratch holds map entry offsets while sorting, and mapScratch a
	// map's encoded pairs while they are rewritten in order.
	sortScratch []mapEntry
	mapScratch  []byte
	// shared holds, once the key has passed shareFrom bytes, where in buf
	// the encoding of each container walked to its end lies, so that a
	// container met again off its path is copied rather than walked again:
	// a value that shares its parts (x := []any{y, y}; y := []any{z, z};
	// ...) costs time linear in its memory and in the key, where walking
	// it as a tree costs a step per node of a tree that can hold 2^64
	// nodes, up to maxKeyLen of them. A copy is the bytes the walk would
	// write (see leave for when a container is recorded, and reuse for
	// when a record stands for a walk). sharedLog lists shared's keys in
	// the order recorded.
	shared    map[place]span
	sharedLog []place
	// backrefs counts the back-references written; hiPath and hiDepth are
	// the longest path and deepest interface nesting reached since the
	// innermost open container was entered (the limit checks a walk
	// passed); keyers counts the CacheKey results being encoded, which
	// may be new objects each call and are never recorded.
	backrefs, hiPath, hiDepth, keyers int
	// Share is set by tests: 1 records every container from the first
	// byte, -1 none.
	Share int8
}

// place is a container: its data, its length (slices) and its type.
type place struct {
	p unsafe.Pointer
	n int
	t reflect.Type
}

// Visit is one container on the encoding path, with the state its walk
// started from.
type Visit struct {
	P        unsafe.Pointer
	n        int
	T        reflect.Type
	start    int // len(buf) at enter
	backrefs int
	depth    int // keyState.depth at enter
	log      int // len(sharedLog) at enter
	// The enclosing walk's hiPath and hiDepth, restored at leave.
	hiPath, hiDepth int
}

// span is a recorded container: its encoding is buf[start:end], and its
// walk reached height containers and dheight interfaces below where it
// started.
type span struct {
	start, end      int
	height, dheight int
}

var statePool = sync.Pool{New: func() any { return &State{Buf: make([]byte, 0, 128)} }}

func GetState() *State {
	s := statePool.Get().(*State)
	return s
}

func PutState(s *State) {
	if cap(s.Buf) > 64<<10 || cap(s.mapScratch) > 64<<10 {
		return // let oversized buffers go
	}
	s.Buf = s.Buf[:0]
	// Drop every pointer the state ever held, not only those up to the
	// lengths (0 after a balanced encoding): a pooled state must not keep
	// an earlier key's objects alive.
	clear(s.Path[:cap(s.Path)])
	s.Path = s.Path[:0]
	clear(s.Refs[:cap(s.Refs)])
	s.Refs = s.Refs[:0]
	s.Deref = false
	s.Opaque = false
	s.cyclic = false
	s.Never, s.TooLong = false, false
	s.depth = 0
	s.Stable, s.local = false, false
	s.Ambiguous = nil
	s.sortScratch = s.sortScratch[:0]
	s.shared = nil
	clear(s.sharedLog[:cap(s.sharedLog)])
	s.sharedLog = s.sharedLog[:0]
	s.backrefs, s.hiPath, s.hiDepth, s.keyers = 0, 0, 0, 0
	s.Share = 0
	statePool.Put(s)
}

func (s *State) byte(b byte) { s.Buf = append(s.Buf, b) }

func (s *State) Uvarint(n uint64) {
	if n < 0x80 { // the common case (short lengths, small type ids), inlined
		s.Buf = append(s.Buf, byte(n))
		return
	}
	s.Buf = binary.AppendUvarint(s.Buf, n)
}

func (s *State) U64(n uint64) { s.Buf = binary.LittleEndian.AppendUint64(s.Buf, n) }

func (s *State) str(v string) {
	if len(s.Buf)+len(v) > MaxKeyLen {
		s.overflow()
		return
	}
	s.Uvarint(uint64(len(v)))
	s.Buf = append(s.Buf, v...)
}

// bytes appends b as a byte slice's value: its length and its bytes.
func (s *State) bytes(b []byte) {
	if len(s.Buf)+len(b) > MaxKeyLen {
		s.overflow()
		return
	}
	s.byte(tagValue)
	s.Uvarint(uint64(len(b)))
	s.Buf = append(s.Buf, b...)
}

// past reports whether the key can no longer hit, having marked it so if
// it has grown past maxKeyLen. Loops over elements check it before each
// one, so that elements that encode larger than they are in memory cannot
// build a key much longer than the limit.
func (s *State) past() bool {
	if len(s.Buf) > MaxKeyLen {
		s.overflow()
	}
	return s.Never
}

// overflow marks the key as past maxKeyLen, with a nonce the first time.
func (s *State) overflow() {
	if !s.Never {
		s.TooLong = true
		s.nonce()
	}
}

// identity appends the identity of the object at p (which is not nil).
func (s *State) identity(p unsafe.Pointer) {
	s.local = true
	id, ok := identityOf(p)
	if !ok {
		s.byte(tagForeign)
		s.U64(uint64(uintptr(p)))
		return
	}
	s.byte(tagIdentity)
	s.U64(id)
	s.Refs = append(s.Refs, p)
}

// enter records container (p, n, t) on the path. It reports false, having
// written a back-reference when the container is already on the path, or a
// nonce when the path is too deep or the key too long; the caller must then
// not descend.
func (s *State) enter(p unsafe.Pointer, n int, t reflect.Type) bool {
	if s.Never {
		return false // the key is lost already: do no more work on it
	}
	if len(s.Buf) > MaxKeyLen {
		s.overflow()
		return false
	}
	if len(s.Path) >= MaxDepth {
		s.nonce()
		return false
	}
	cyclic := false
	for i := range s.Path {
		e := &s.Path[i]
		if e.P == p && e.n == n && e.T == t {
			cyclic = true
			break
		}
	}
	if cyclic {
		s.Opaque = true
		s.cyclic = true
		s.backrefs++
		s.byte(tagBackref)
		s.Uvarint(uint64(n))
		s.identity(p)
		return false
	}
	if s.shared != nil && s.reuse(place{p, n, t}) {
		return false
	}
	s.push(place{p, n, t})
	return true
}

// push opens container pl on the path.
func (s *State) push(pl place) {
	s.Path = append(s.Path, Visit{
		P: pl.p, n: pl.n, T: pl.t, start: len(s.Buf), backrefs: s.backrefs, depth: s.depth,
		log: len(s.sharedLog), hiPath: s.hiPath, hiDepth: s.hiDepth,
	})
	s.hiPath, s.hiDepth = len(s.Path), s.depth
}

// Leave closes the innermost container. Once the key has passed shareFrom
// bytes, it records the container's encoding when that encoding is the
// container's alone: it is a Go object reachable from the arguments for
// the whole key (not under a CacheKey result, whose address a later
// result may reuse), the walk wrote no back-reference (none left the
// container, so the walk did not depend on the path above it) and no
// nonce, and its bytes are where they will stay.
func (s *State) Leave() {
	v := &s.Path[len(s.Path)-1]
	if s.shared != nil || len(s.Buf) > ShareFrom || s.Share > 0 {
		s.record(v)
	}
	s.hiPath, s.hiDepth = max(s.hiPath, v.hiPath), max(s.hiDepth, v.hiDepth)
	s.Path = s.Path[:len(s.Path)-1]
}

func (s *State) record(v *Visit) {
	if s.Share < 0 {
		return
	}
	if v.P != nil && v.T.Kind() == reflect.Map {
		// The map's pairs were rewritten in order: what was recorded
		// inside them has moved.
		for _, pl := range s.sharedLog[v.log:] {
			delete(s.shared, pl)
		}
		clear(s.sharedLog[v.log:])
		s.sharedLog = s.sharedLog[:v.log]
	}
	if v.P == nil || s.Never || s.keyers > 0 || s.backrefs != v.backrefs ||
		len(s.Buf)-v.start < shareMin && s.Share == 0 {
		return
	}
	if s.shared == nil {
		s.shared = make(map[place]span)
	}
	pl := place{v.P, v.n, v.T}
	if _, ok := s.shared[pl]; ok {
		return
	}
	s.shared[pl] = span{
		start: v.start, end: len(s.Buf),
		height: s.hiPath - (len(s.Path) - 1), dheight: s.hiDepth - v.depth,
	}
	s.sharedLog = append(s.sharedLog, pl)
}

// reuse appends the recorded encoding of pl, if there is one and walking
// pl from here would write it: the walk that wrote it passed the depth
// limits' checks only as deep as height containers and dheight interfaces
// below where it started, and those checks pass here too. The container's
// walk depends on nothing else: not on the path above it (it met no
// container on it), nor on buf (past maxKeyLen the key is lost either way).
func (s *State) reuse(pl place) bool {
	r, ok := s.shared[pl]
	if !ok || len(s.Path)+r.height > MaxDepth || s.depth+r.dheight > MaxDepth {
		return false
	}
	if len(s.Buf)+r.end-r.start > MaxKeyLen {
		s.overflow()
		return true
	}
	s.Buf = append(s.Buf, s.Buf[r.start:r.end]...)
	s.hiPath, s.hiDepth = max(s.hiPath, len(s.Path)+r.height), max(s.hiDepth, s.depth+r.dheight)
	return true
}

// nonce appends a number no other key contains, and marks the key as one
// that can never hit again.
func (s *State) nonce() {
	s.Opaque = true
	s.local = true
	if !s.Never {
		s.Never = true
		if len(s.Buf) >= 8 {
			binary.LittleEndian.PutUint64(s.Buf, NeverFID)
		}
	}
	s.byte(TagNonce)
	s.U64(Nonces.Add(1))
}

var Nonces atomic.Uint64

// float64 appends f's bits, with every NaN as one value. -0.0 and +0.0 keep
// their distinct bits.
func (s *State) float64(f float64) {
	if f != f {
		f = math.NaN()
	}
	s.U64(math.Float64bits(f))
}

func (s *State) float32(f float32) {
	if f != f {
		f = float32(math.NaN())
	}
	s.Buf = binary.LittleEndian.AppendUint32(s.Buf, math.Float32bits(f))
}

// mapEntry locates one encoded key/value pair in keyState.buf.
type mapEntry struct{ k, v, end int }
