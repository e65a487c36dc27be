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

// typeInfo is what the encoder cache holds for one type.
type typeInfo struct {
	Id  uint64 // small and unique per type, written before interface values
	enc Encoder
}

var (
	typeCache sync.Map // reflect.Type → *typeInfo
	TypeIDs   atomic.Uint64
)

// InfoOf returns the cached encoder of t, building it on first use. As in
// encoding/json, a placeholder that waits for the real encoder is stored
// first so that recursive types terminate.
func InfoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	var (
		wg sync.WaitGroup
		f  Encoder
	)
	wg.Add(1)
	ti := &typeInfo{Id: TypeIDs.Add(1) + nonceTypeID, enc: func(s *State, v reflect.Value) {
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
	built := &typeInfo{Id: ti.Id, enc: f}
	typeCache.Store(t, built)
	return built
}

func EncoderOf(t reflect.Type) Encoder { return InfoOf(t).enc }

func newEncoder(t reflect.Type) Encoder {
	if t == TimeType {
		return encodeTime
	}
	// An interface type that includes CacheKey is keyed as any interface:
	// its dynamic type first, then that type's own key. Keying it by
	// CacheKey alone would let two types with equal CacheKeys share entries.
	if t.Kind() != reflect.Interface && t.Implements(KeyerType) {
		return keyerEncoder(t, NewKindEncoder(t))
	}
	generic := NewKindEncoder(t)
	switch t.Kind() {
	case reflect.Struct, reflect.Array, reflect.Slice:
		if flat := NewFlatEncoder(t, 0); flat != nil {
			return withFlat(flat, generic)
		}
	}
	return generic
}

func NewKindEncoder(t reflect.Type) Encoder {
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
	ti := InfoOf(v.Type())
	if s.Stable {
		s.stableType(v.Type())
	} else {
		s.Uvarint(ti.Id)
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
		s.Leave()
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
	if et := t.Elem(); et.Kind() == reflect.Uint8 && !et.Implements(KeyerType) {
		return func(s *State, v reflect.Value) {
			if v.IsNil() {
				s.byte(tagNil)
				return
			}
			s.bytes(v.Bytes())
		}
	}
	if et := t.Elem(); et.Kind() == reflect.String && !et.Implements(KeyerType) {
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
			s.Leave()
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
			s.Leave()
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
		s.Leave()
	}
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
		if len(s.Path) >= MaxDepth {
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
				s.Uvarint(InfoOf(t).Id)
			}
			s.hiPath = max(s.hiPath, len(s.Path)+1) // the check above, as for a push
			s.keyers++
			structural(s, kv)
			s.keyers--
			return
		}
		s.keyers++
		s.push(place{t: t})
		EncodeDynamic(s, kv)
		s.Leave()
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
		if p.Implements(KeyerType) {
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

// BasicIDs are the type ids of the types appendDynamicBasic handles,
// fixed at init.
var BasicIDs = struct{ Int, Int64, Uint64, String, Bool, Float64 uint64 }{
	InfoOf(reflect.TypeFor[int]()).Id,
	InfoOf(reflect.TypeFor[int64]()).Id,
	InfoOf(reflect.TypeFor[uint64]()).Id,
	InfoOf(reflect.TypeFor[string]()).Id,
	InfoOf(reflect.TypeFor[bool]()).Id,
	InfoOf(reflect.TypeFor[float64]()).Id,
}

// AppendDynamicBasic appends the encoding of key as an interface value,
// byte-for-byte as encodeDynamic does, when its dynamic type is one of the
// common basic types, without reflection; it reports false otherwise.
func AppendDynamicBasic(b []byte, key any) ([]byte, bool) {
	switch v := key.(type) {
	case int:
		b = binary.AppendUvarint(b, BasicIDs.Int)
		return binary.LittleEndian.AppendUint64(b, uint64(v)), true
	case int64:
		b = binary.AppendUvarint(b, BasicIDs.Int64)
		return binary.LittleEndian.AppendUint64(b, uint64(v)), true
	case uint64:
		b = binary.AppendUvarint(b, BasicIDs.Uint64)
		return binary.LittleEndian.AppendUint64(b, v), true
	case string:
		b = binary.AppendUvarint(b, BasicIDs.String)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...), true
	case bool:
		b = binary.AppendUvarint(b, BasicIDs.Bool)
		if v {
			return append(b, 1), true
		}
		return append(b, 0), true
	case float64:
		b = binary.AppendUvarint(b, BasicIDs.Float64)
		if v != v {
			v = math.NaN()
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v)), true
	}
	return b, false
}

// stableType writes t where a type id goes in a stable key: the uvarint
// 2+len(name), then the name (0 and 1 are the nil and nonce ids). A type
// whose name another type of the program shares (types declared inside
// functions: two `type ID struct{ N int }` in two functions are both
// "main.ID") cannot be told apart by name: its key is marked local (never
// shared, still cached in this process) and holds the process-local type
// id after the nonce id and tagIdentity, which no name encoding starts
// with. Which names are shared is read from the program's own type table
// (ambiguousType), so every replica of a build decides alike, whatever
// order it meets the types in.
func (s *State) stableType(t reflect.Type) {
	if AmbiguousType(t) {
		s.local = true
		if s.Ambiguous == nil {
			s.Ambiguous = t
		}
		s.Uvarint(nonceTypeID)
		s.byte(tagIdentity)
		s.Uvarint(InfoOf(t).Id)
		return
	}
	name := StableName(t)
	s.Uvarint(uint64(len(name)) + 2)
	s.Buf = append(s.Buf, name...)
}
