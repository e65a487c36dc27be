package keys

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The key encoding.
//
// A key is a byte string: a canonical, type-tagged, length-prefixed encoding
// of the arguments. Given the static type of a value the encoding is
// prefix-free, so concatenating the encodings of several values is
// injective: two argument lists get the same bytes exactly when they are
// equal under the rules of the SPEC's key table. Interface values carry the
// id of their dynamic type, so int(1), int64(1) and MyInt(1) differ.
//
// Encoders are built once per type and cached (as encoding/json's
// typeEncoder), and once per signature by Decorate, so a call pays only for
// walking its values.

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

// shareFrom and shareMin decide which containers a key records for reuse
// (see keyState.shared): once the key has passed shareFrom bytes, each
// container whose encoding took at least shareMin bytes. Smaller keys, the
// usual ones, record nothing and pay nothing for it.
const (
	shareFrom = 64 << 10
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
	path []visit          // containers being encoded, for cycle detection
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
	// share is set by tests: 1 records every container from the first
	// byte, -1 none.
	share int8
}

// place is a container: its data, its length (slices) and its type.
type place struct {
	p unsafe.Pointer
	n int
	t reflect.Type
}

// visit is one container on the encoding path, with the state its walk
// started from.
type visit struct {
	p        unsafe.Pointer
	n        int
	t        reflect.Type
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
	clear(s.path[:cap(s.path)])
	s.path = s.path[:0]
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
	s.share = 0
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
	if len(s.path) >= MaxDepth {
		s.nonce()
		return false
	}
	cyclic := false
	for i := range s.path {
		e := &s.path[i]
		if e.p == p && e.n == n && e.t == t {
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
	s.path = append(s.path, visit{
		p: pl.p, n: pl.n, t: pl.t, start: len(s.Buf), backrefs: s.backrefs, depth: s.depth,
		log: len(s.sharedLog), hiPath: s.hiPath, hiDepth: s.hiDepth,
	})
	s.hiPath, s.hiDepth = len(s.path), s.depth
}

// leave closes the innermost container. Once the key has passed shareFrom
// bytes, it records the container's encoding when that encoding is the
// container's alone: it is a Go object reachable from the arguments for
// the whole key (not under a CacheKey result, whose address a later
// result may reuse), the walk wrote no back-reference (none left the
// container, so the walk did not depend on the path above it) and no
// nonce, and its bytes are where they will stay.
func (s *State) leave() {
	v := &s.path[len(s.path)-1]
	if s.shared != nil || len(s.Buf) > shareFrom || s.share > 0 {
		s.record(v)
	}
	s.hiPath, s.hiDepth = max(s.hiPath, v.hiPath), max(s.hiDepth, v.hiDepth)
	s.path = s.path[:len(s.path)-1]
}

func (s *State) record(v *visit) {
	if s.share < 0 {
		return
	}
	if v.p != nil && v.t.Kind() == reflect.Map {
		// The map's pairs were rewritten in order: what was recorded
		// inside them has moved.
		for _, pl := range s.sharedLog[v.log:] {
			delete(s.shared, pl)
		}
		clear(s.sharedLog[v.log:])
		s.sharedLog = s.sharedLog[:v.log]
	}
	if v.p == nil || s.Never || s.keyers > 0 || s.backrefs != v.backrefs ||
		len(s.Buf)-v.start < shareMin && s.share == 0 {
		return
	}
	if s.shared == nil {
		s.shared = make(map[place]span)
	}
	pl := place{v.p, v.n, v.t}
	if _, ok := s.shared[pl]; ok {
		return
	}
	s.shared[pl] = span{
		start: v.start, end: len(s.Buf),
		height: s.hiPath - (len(s.path) - 1), dheight: s.hiDepth - v.depth,
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
	if !ok || len(s.path)+r.height > MaxDepth || s.depth+r.dheight > MaxDepth {
		return false
	}
	if len(s.Buf)+r.end-r.start > MaxKeyLen {
		s.overflow()
		return true
	}
	s.Buf = append(s.Buf, s.Buf[r.start:r.end]...)
	s.hiPath, s.hiDepth = max(s.hiPath, len(s.path)+r.height), max(s.hiDepth, s.depth+r.dheight)
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

// typeInfo is what the encoder cache holds for one type.
type typeInfo struct {
	id  uint64 // small and unique per type, written before interface values
	enc Encoder
}

var (
	typeCache sync.Map // reflect.Type → *typeInfo
	typeIDs   atomic.Uint64
)

// infoOf returns the cached encoder of t, building it on first use. As in
// encoding/json, a placeholder that waits for the real encoder is stored
// first so that recursive types terminate.
func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	var (
		wg sync.WaitGroup
		f  Encoder
	)
	wg.Add(1)
	ti := &typeInfo{id: typeIDs.Add(1) + nonceTypeID, enc: func(s *State, v reflect.Value) {
		wg.Wait()
		f(s, v)
	}}
	if actual, loaded := typeCache.LoadOrStore(t, ti); loaded {
		return actual.(*typeInfo)
	}
	f = newEncoder(t)
	wg.Done()
	// Return the built encoder, not the placeholder: callers keep what
	// they get (Decorate's per-signature encoders, element encoders), and
	// the placeholder would cost them a WaitGroup check on every call.
	built := &typeInfo{id: ti.id, enc: f}
	typeCache.Store(t, built)
	return built
}

func EncoderOf(t reflect.Type) Encoder { return infoOf(t).enc }

var (
	keyerType = reflect.TypeFor[keyer]()
	TimeType  = reflect.TypeFor[time.Time]()
)

func newEncoder(t reflect.Type) Encoder {
	if t == TimeType {
		return encodeTime
	}
	// An interface type that includes CacheKey is keyed as any interface:
	// its dynamic type first, then that type's own key. Keying it by
	// CacheKey alone would let two types with equal CacheKeys share entries.
	if t.Kind() != reflect.Interface && t.Implements(keyerType) {
		return keyerEncoder(t, newKindEncoder(t))
	}
	generic := newKindEncoder(t)
	switch t.Kind() {
	case reflect.Struct, reflect.Array, reflect.Slice:
		if flat := newFlatEncoder(t, 0); flat != nil {
			return withFlat(flat, generic)
		}
	}
	return generic
}

func newKindEncoder(t reflect.Type) Encoder {
	switch t.Kind() {
	case reflect.Bool:
		return func(s *State, v reflect.Value) {
			if v.Bool() {
				s.byte(1)
			} else {
				s.byte(0)
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(s *State, v reflect.Value) { s.U64(uint64(v.Int())) }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(s *State, v reflect.Value) { s.U64(v.Uint()) }
	case reflect.Float32:
		return func(s *State, v reflect.Value) { s.float32(float32(v.Float())) }
	case reflect.Float64:
		return func(s *State, v reflect.Value) { s.float64(v.Float()) }
	case reflect.Complex64:
		return func(s *State, v reflect.Value) {
			c := v.Complex()
			s.float32(float32(real(c)))
			s.float32(float32(imag(c)))
		}
	case reflect.Complex128:
		return func(s *State, v reflect.Value) {
			c := v.Complex()
			s.float64(real(c))
			s.float64(imag(c))
		}
	case reflect.String:
		return func(s *State, v reflect.Value) { s.str(v.String()) }
	case reflect.Interface:
		return EncodeInterface
	case reflect.Pointer:
		return pointerEncoder(t)
	case reflect.UnsafePointer, reflect.Chan:
		return func(s *State, v reflect.Value) {
			p := v.UnsafePointer()
			if p == nil {
				s.byte(tagNil)
				return
			}
			s.identity(p)
		}
	case reflect.Func:
		return encodeFunc
	case reflect.Slice:
		return sliceEncoder(t)
	case reflect.Array:
		return arrayEncoder(t)
	case reflect.Map:
		return mapEncoder(t)
	case reflect.Struct:
		return structEncoder(t)
	default:
		// reflect.Invalid cannot be a type; every other kind is above.
		panic("memo: no key encoding for type " + t.String())
	}
}

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

// EncodeInterface writes the dynamic type's id and then its value, or
// tagNil for a nil interface.
func EncodeInterface(s *State, v reflect.Value) {
	if v.IsNil() {
		s.Uvarint(0)
		return
	}
	EncodeDynamic(s, v.Elem())
}

// EncodeDynamic writes v prefixed by the id of its type.
func EncodeDynamic(s *State, v reflect.Value) {
	// Interfaces are the one way to nest without a container that enter
	// sees (type B struct{ V any }; x = B{x} ...): count them too.
	if s.Never {
		return
	}
	if s.depth >= MaxDepth || len(s.Buf) > MaxKeyLen {
		s.Uvarint(nonceTypeID)
		if len(s.Buf) > MaxKeyLen {
			s.overflow()
		} else {
			s.nonce()
		}
		return
	}
	ti := infoOf(v.Type())
	if s.Stable {
		s.stableType(v.Type())
	} else {
		s.Uvarint(ti.id)
	}
	s.depth++
	s.hiDepth = max(s.hiDepth, s.depth)
	ti.enc(s, v)
	s.depth--
}

// nonceTypeID is the type id no type gets: written where a type id goes, it
// says a nonce follows instead of a value.
const nonceTypeID = 1

func pointerEncoder(t reflect.Type) Encoder {
	var elem Encoder
	var once sync.Once
	return func(s *State, v reflect.Value) {
		p := v.UnsafePointer()
		if p == nil {
			s.byte(tagNil)
			return
		}
		if !s.Deref {
			s.identity(p)
			return
		}
		if !s.enter(p, 0, t) {
			return
		}
		once.Do(func() { elem = EncoderOf(t.Elem()) })
		s.byte(tagValue)
		elem(s, v.Elem())
		s.leave()
	}
}

// encodeFunc keys a func by its closure: the same code with the same
// captured variables. A func read from an unexported field cannot be reached
// without unsafe tricks, so it gets a key no other call has: a miss, never a
// wrong hit.
func encodeFunc(s *State, v reflect.Value) {
	if v.IsNil() {
		s.byte(tagNil)
		return
	}
	s.Opaque = true
	var p unsafe.Pointer
	switch {
	case v.CanInterface():
		x := v.Interface()
		p = (*[2]unsafe.Pointer)(unsafe.Pointer(&x))[1]
	case v.CanAddr():
		p = *(*unsafe.Pointer)(v.Addr().UnsafePointer())
	default:
		s.nonce()
		return
	}
	s.identity(p)
}

func sliceEncoder(t reflect.Type) Encoder {
	if et := t.Elem(); et.Kind() == reflect.Uint8 && !et.Implements(keyerType) {
		return func(s *State, v reflect.Value) {
			if v.IsNil() {
				s.byte(tagNil)
				return
			}
			s.bytes(v.Bytes())
		}
	}
	if et := t.Elem(); et.Kind() == reflect.String && !et.Implements(keyerType) {
		// The encoding of the general case below, without reflect per
		// element; strings cannot lead back to the slice, so there is no
		// cycle to watch for.
		return func(s *State, v reflect.Value) {
			if v.IsNil() {
				s.byte(tagNil)
				return
			}
			s.byte(tagValue)
			s.Uvarint(uint64(v.Len()))
			for _, e := range unsafe.Slice((*string)(v.UnsafePointer()), v.Len()) {
				if s.Never {
					break
				}
				s.str(e)
			}
		}
	}
	var elem Encoder
	var once sync.Once
	zero := t.Elem().Size() == 0
	return func(s *State, v reflect.Value) {
		if v.IsNil() {
			s.byte(tagNil)
			return
		}
		n := v.Len()
		if n > 0 && !s.enter(v.UnsafePointer(), n, t) {
			return
		}
		once.Do(func() { elem = EncoderOf(t.Elem()) })
		s.byte(tagValue)
		s.Uvarint(uint64(n))
		if zero {
			zeroSizeElems(s, n, func(i int) { elem(s, v.Index(i)) })
		} else {
			for i := range n {
				if s.past() {
					break
				}
				elem(s, v.Index(i))
			}
			s.past()
		}
		if n > 0 {
			s.leave()
		}
	}
}

func arrayEncoder(t reflect.Type) Encoder {
	var elem Encoder
	var once sync.Once
	n := t.Len()
	zero := t.Elem().Size() == 0
	return func(s *State, v reflect.Value) {
		once.Do(func() { elem = EncoderOf(t.Elem()) })
		if zero {
			zeroSizeElems(s, n, func(i int) { elem(s, v.Index(i)) })
			return
		}
		for i := range n {
			if s.past() {
				break
			}
			elem(s, v.Index(i))
		}
		s.past()
	}
}

// zeroSizeElems encodes n elements of a zero-size type with enc. Such
// elements take no memory, so a slice or array can hold more of them than
// a key could ever spell out: when the first one encodes as nothing, so do
// all the others (zero-size values are all alike) and they are skipped;
// otherwise the key limit stops the loop.
func zeroSizeElems(s *State, n int, enc func(i int)) {
	if n == 0 {
		return
	}
	start := len(s.Buf)
	enc(0)
	if len(s.Buf) == start {
		return
	}
	for i := 1; i < n && !s.Never; i++ {
		if len(s.Buf) > MaxKeyLen {
			s.overflow()
			return
		}
		enc(i)
	}
}

// mapEntry locates one encoded key/value pair in keyState.buf.
type mapEntry struct{ k, v, end int }

// mapEncoder writes the pairs sorted by their encoded bytes, so the encoding
// does not depend on iteration order.
func mapEncoder(t reflect.Type) Encoder {
	var kenc, venc Encoder
	var once sync.Once
	return func(s *State, v reflect.Value) {
		if v.IsNil() {
			s.byte(tagNil)
			return
		}
		if !s.enter(v.UnsafePointer(), 0, t) {
			return
		}
		once.Do(func() { kenc, venc = EncoderOf(t.Key()), EncoderOf(t.Elem()) })
		s.byte(tagValue)
		n := v.Len()
		s.Uvarint(uint64(n))
		start := len(s.Buf)
		mark := len(s.sortScratch)
		it := v.MapRange()
		if v.CanInterface() {
			// Copy each pair into two reusable values (SetIterKey) rather
			// than allocate two per pair (Key, Value); an unexported map
			// cannot be copied from and takes the allocating path.
			kv, vv := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			for !s.past() && it.Next() {
				kv.SetIterKey(it)
				vv.SetIterValue(it)
				k := len(s.Buf)
				kenc(s, kv)
				val := len(s.Buf)
				venc(s, vv)
				s.sortScratch = append(s.sortScratch, mapEntry{k, val, len(s.Buf)})
			}
		} else {
			for !s.past() && it.Next() {
				k := len(s.Buf)
				kenc(s, it.Key())
				val := len(s.Buf)
				venc(s, it.Value())
				s.sortScratch = append(s.sortScratch, mapEntry{k, val, len(s.Buf)})
			}
		}
		if s.past() {
			// The key can never hit: its bytes no longer matter, so do
			// not sort them.
			s.sortScratch = s.sortScratch[:mark]
			s.leave()
			return
		}
		entries := s.sortScratch[mark:]
		buf := s.Buf
		slices.SortFunc(entries, func(a, b mapEntry) int {
			if c := bytes.Compare(buf[a.k:a.v], buf[b.k:b.v]); c != 0 {
				return c
			}
			return bytes.Compare(buf[a.v:a.end], buf[b.v:b.end])
		})
		// Nested maps finish with the scratch before this one uses it.
		s.mapScratch = append(s.mapScratch[:0], s.Buf[start:]...)
		region := s.mapScratch
		s.Buf = s.Buf[:start]
		for _, e := range entries {
			s.Buf = append(s.Buf, region[e.k-start:e.end-start]...)
		}
		s.sortScratch = s.sortScratch[:mark]
		s.leave()
	}
}

// ignoredField reports whether a struct field is left out of keys.
func ignoredField(f reflect.StructField) bool {
	if f.Tag.Get("memo") == "-" {
		return true
	}
	h := f.Tag.Get("hash")
	return h == "ignore" || h == "-"
}

func structEncoder(t reflect.Type) Encoder {
	type field struct {
		index int
		t     reflect.Type
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if ignoredField(f) || f.Type.Size() == 0 {
			continue
		}
		fields = append(fields, field{i, f.Type})
	}
	encs := make([]Encoder, len(fields))
	var once sync.Once
	return func(s *State, v reflect.Value) {
		once.Do(func() {
			for i, f := range fields {
				encs[i] = EncoderOf(f.t)
			}
		})
		for i, f := range fields {
			encs[i](s, v.Field(f.index))
		}
	}
}

// keyerEncoder keys values of a CacheKeyer type by their CacheKey(). Values
// that cannot be reached as an interface (unexported fields) are keyed by
// their structure, which is finer: a possible miss, never a wrong hit.
func keyerEncoder(t reflect.Type, structural Encoder) Encoder {
	return func(s *State, v reflect.Value) {
		if s.Never {
			return // the key is lost already: call no CacheKey
		}
		if (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && v.IsNil() {
			s.byte(tagNil)
			return
		}
		k, ok := callCacheKey(v)
		if !ok {
			s.byte(TagNonce + 1)
			structural(s, v)
			return
		}
		if len(s.path) >= MaxDepth {
			// In place of the value marker, so that the nonce cannot read
			// as a type id after it.
			s.nonce()
			return
		}
		s.byte(tagValue)
		if k == nil {
			s.Uvarint(0)
			return
		}
		kv := reflect.ValueOf(k)
		if kv.Type() == t {
			// CacheKey returned its own type: key it by its structure
			// rather than call CacheKey forever.
			if s.Stable {
				s.stableType(t)
			} else {
				s.Uvarint(infoOf(t).id)
			}
			s.hiPath = max(s.hiPath, len(s.path)+1) // the check above, as for a push
			s.keyers++
			structural(s, kv)
			s.keyers--
			return
		}
		s.keyers++
		s.push(place{t: t})
		EncodeDynamic(s, kv)
		s.leave()
		s.keyers--
	}
}

// callCacheKey returns v.CacheKey(), or false when v cannot be reached as
// an interface (an unexported field) or CacheKey panics. A struct that
// embeds a nil pointer to a type with a value-receiver CacheKey has that
// method too, and calling it panics: an argument must not crash the caller,
// so such values are keyed by their structure.
func callCacheKey(v reflect.Value) (k any, ok bool) {
	if !v.CanInterface() {
		return nil, false
	}
	defer func() {
		if recover() != nil {
			k, ok = nil, false
		}
	}()
	return v.Interface().(keyer).CacheKey(), true
}

// wallToInternal mirrors the time package's offset between the wall clock
// seconds and its internal seconds.
const wallToInternal int64 = (1884*365 + 1884/4 - 1884/100 + 1884/400) * 86400

// encodeTime keys a time.Time by its instant and its location, ignoring the
// monotonic reading. It reads the fields with reflect, which works for
// unexported fields too.
func encodeTime(s *State, v reflect.Value) {
	wall := v.Field(0).Uint()
	ext := v.Field(1).Int()
	sec := ext
	if wall&(1<<63) != 0 {
		sec = wallToInternal + int64(wall<<1>>31)
	}
	s.U64(uint64(sec))
	s.Buf = binary.LittleEndian.AppendUint32(s.Buf, uint32(wall&(1<<30-1)))
	loc := v.Field(2).UnsafePointer()
	if loc == nil || loc == unsafe.Pointer(time.UTC) {
		s.byte(tagNil)
		return
	}
	if s.Stable && s.stableLoc((*time.Location)(loc), sec) {
		return
	}
	s.identity(loc)
}

// BasicKinds returns the kinds of t's parameters (after a leading context
// when ctx is set) if every one is a basic kind that appendKind encodes
// exactly as the parameter's encoder would, and nil otherwise.
func BasicKinds(t reflect.Type, ctx bool) []reflect.Kind {
	var kinds []reflect.Kind
	for i := range t.NumIn() {
		if i == 0 && ctx {
			continue
		}
		p := t.In(i)
		if p.Implements(keyerType) {
			return nil
		}
		switch k := p.Kind(); k {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float64, reflect.String:
			kinds = append(kinds, k)
		default:
			return nil
		}
	}
	if len(kinds) == 0 || t.IsVariadic() {
		return nil
	}
	return kinds
}

// AppendKind appends v's encoding for a basic kind, byte-for-byte as
// newKindEncoder's encoder for that kind, without a keyState.
func AppendKind(b []byte, k reflect.Kind, v reflect.Value) []byte {
	switch k {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.LittleEndian.AppendUint64(b, v.Uint())
	case reflect.Float64:
		f := v.Float()
		if f != f {
			f = math.NaN()
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	default: // reflect.String
		str := v.String()
		b = binary.AppendUvarint(b, uint64(len(str)))
		return append(b, str...)
	}
}

// basicIDs are the type ids of the types appendDynamicBasic handles,
// fixed at init.
var basicIDs = struct{ int, int64, uint64, string, bool, float64 uint64 }{
	infoOf(reflect.TypeFor[int]()).id,
	infoOf(reflect.TypeFor[int64]()).id,
	infoOf(reflect.TypeFor[uint64]()).id,
	infoOf(reflect.TypeFor[string]()).id,
	infoOf(reflect.TypeFor[bool]()).id,
	infoOf(reflect.TypeFor[float64]()).id,
}

// AppendDynamicBasic appends the encoding of key as an interface value,
// byte-for-byte as encodeDynamic does, when its dynamic type is one of the
// common basic types, without reflection; it reports false otherwise.
func AppendDynamicBasic(b []byte, key any) ([]byte, bool) {
	switch v := key.(type) {
	case int:
		b = binary.AppendUvarint(b, basicIDs.int)
		return binary.LittleEndian.AppendUint64(b, uint64(v)), true
	case int64:
		b = binary.AppendUvarint(b, basicIDs.int64)
		return binary.LittleEndian.AppendUint64(b, uint64(v)), true
	case uint64:
		b = binary.AppendUvarint(b, basicIDs.uint64)
		return binary.LittleEndian.AppendUint64(b, v), true
	case string:
		b = binary.AppendUvarint(b, basicIDs.string)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...), true
	case bool:
		b = binary.AppendUvarint(b, basicIDs.bool)
		if v {
			return append(b, 1), true
		}
		return append(b, 0), true
	case float64:
		b = binary.AppendUvarint(b, basicIDs.float64)
		if v != v {
			v = math.NaN()
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v)), true
	}
	return b, false
}

// keyer is memo.CacheKeyer's method set: a type has it exactly when it
// implements that interface (this package knows nothing of memo's API).
type keyer interface{ CacheKey() any }
