package keys

import (
	"reflect"
	"unsafe"
)

// Flat encoders.
//
// Most arguments that are not of a basic type are structs, arrays and
// slices of basic types: a query struct with strings, ints and a []string.
// Walking them with reflect (Value.Field, Value.Index, an encoder call per
// field) costs more than the rest of a hit. For such "flat" types memo
// builds a second encoder that reads the value's memory at the offsets
// reflect reports, and writes exactly the bytes the reflective encoder
// writes: the two are interchangeable, and the reflective one is used
// whenever the value's address cannot be had (a value read from an
// unexported field of a non-addressable struct).
//
// A flat type holds no pointer, map, chan, func, interface or unsafe
// pointer (those need identity or dynamic types), no time.Time and no
// CacheKeyer, and nests at most maxFlatDepth levels.

// A flatEncoder appends the encoding of the value at p.
type flatEncoder func(s *State, p unsafe.Pointer)

const maxFlatDepth = 6

// sliceHeader is the layout of every slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// NewFlatEncoder returns the flat encoder of t, or nil if t is not flat.
func NewFlatEncoder(t reflect.Type, depth int) flatEncoder {
	if depth > maxFlatDepth || t == TimeType || t.Implements(KeyerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(s *State, p unsafe.Pointer) {
			if *(*bool)(p) {
				s.byte(1)
			} else {
				s.byte(0)
			}
		}
	case reflect.Int:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*int)(p))) }
	case reflect.Int8:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*int8)(p))) }
	case reflect.Int16:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*int16)(p))) }
	case reflect.Int32:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*int32)(p))) }
	case reflect.Int64:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*int64)(p))) }
	case reflect.Uint:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*uint)(p))) }
	case reflect.Uint8:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*uint8)(p))) }
	case reflect.Uint16:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*uint16)(p))) }
	case reflect.Uint32:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*uint32)(p))) }
	case reflect.Uint64:
		return func(s *State, p unsafe.Pointer) { s.U64(*(*uint64)(p)) }
	case reflect.Uintptr:
		return func(s *State, p unsafe.Pointer) { s.U64(uint64(*(*uintptr)(p))) }
	case reflect.Float32:
		return func(s *State, p unsafe.Pointer) { s.float32(*(*float32)(p)) }
	case reflect.Float64:
		return func(s *State, p unsafe.Pointer) { s.float64(*(*float64)(p)) }
	case reflect.Complex64:
		return func(s *State, p unsafe.Pointer) {
			c := *(*complex64)(p)
			s.float32(real(c))
			s.float32(imag(c))
		}
	case reflect.Complex128:
		return func(s *State, p unsafe.Pointer) {
			c := *(*complex128)(p)
			s.float64(real(c))
			s.float64(imag(c))
		}
	case reflect.String:
		return func(s *State, p unsafe.Pointer) { s.str(*(*string)(p)) }
	case reflect.Array:
		return flatArray(t, depth)
	case reflect.Struct:
		return flatStruct(t, depth)
	case reflect.Slice:
		return flatSlice(t, depth)
	}
	return nil
}

func flatArray(t reflect.Type, depth int) flatEncoder {
	elem := NewFlatEncoder(t.Elem(), depth+1)
	if elem == nil {
		return nil
	}
	n, size := t.Len(), t.Elem().Size()
	if size == 0 {
		return func(*State, unsafe.Pointer) {} // as flatSlice's
	}
	least, fixed := flatLen(t.Elem())
	need := satMul(n, least)
	return func(s *State, p unsafe.Pointer) {
		if len(s.Buf)+need > MaxKeyLen {
			s.overflow() // as arrayEncoder's loop would find
			return
		}
		for i := range n {
			elem(s, unsafe.Add(p, uintptr(i)*size))
		}
		if !fixed {
			s.past()
		}
	}
}

// flatLen returns the least number of bytes the flat encoding of a value
// of type t writes, and whether every value of t writes exactly that many
// (no string or slice in it). Slice and array encoders check it against
// the key limit before their loop, so that a key of small elements that
// each encode larger than they are in memory (an int8 takes 8 bytes) is
// refused before it is built rather than after.
func flatLen(t reflect.Type) (least int, fixed bool) {
	switch t.Kind() {
	case reflect.Bool:
		return 1, true
	case reflect.Float32:
		return 4, true
	case reflect.Complex64:
		return 8, true
	case reflect.Complex128:
		return 16, true
	case reflect.String, reflect.Slice:
		return 1, false // a length or a nil tag, then what it holds
	case reflect.Array:
		if t.Elem().Size() == 0 {
			return 0, true
		}
		m, f := flatLen(t.Elem())
		return satMul(t.Len(), m), f
	case reflect.Struct:
		least, fixed = 0, true
		for i := range t.NumField() {
			f := t.Field(i)
			if ignoredField(f) || f.Type.Size() == 0 {
				continue
			}
			m, fx := flatLen(f.Type)
			least = min(least+m, MaxKeyLen+1)
			fixed = fixed && fx
		}
		return least, fixed
	}
	return 8, true // the integers and float64, as u64
}

// satMul returns n*m, or maxKeyLen+1 if that is more, for n, m >= 0.
func satMul(n, m int) int {
	if m != 0 && n > (MaxKeyLen+1)/m {
		return MaxKeyLen + 1
	}
	return min(n*m, MaxKeyLen+1)
}

func flatStruct(t reflect.Type, depth int) flatEncoder {
	type field struct {
		off uintptr
		enc flatEncoder
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if ignoredField(f) || f.Type.Size() == 0 {
			continue // as structEncoder
		}
		enc := NewFlatEncoder(f.Type, depth+1)
		if enc == nil {
			return nil
		}
		fields = append(fields, field{f.Offset, enc})
	}
	return func(s *State, p unsafe.Pointer) {
		for _, f := range fields {
			f.enc(s, unsafe.Add(p, f.off))
		}
	}
}

// flatSlice mirrors sliceEncoder's three cases: bytes, strings, and the
// general one with its enter/leave (which can write a nonce for a key grown
// past maxKeyLen).
func flatSlice(t reflect.Type, depth int) flatEncoder {
	et := t.Elem()
	if et.Kind() == reflect.Uint8 && !et.Implements(KeyerType) {
		return func(s *State, p unsafe.Pointer) {
			h := (*sliceHeader)(p)
			if h.data == nil {
				s.byte(tagNil)
				return
			}
			s.bytes(unsafe.Slice((*byte)(h.data), h.len))
		}
	}
	if et.Kind() == reflect.String && !et.Implements(KeyerType) {
		return func(s *State, p unsafe.Pointer) {
			h := (*sliceHeader)(p)
			if h.data == nil {
				s.byte(tagNil)
				return
			}
			s.byte(tagValue)
			s.Uvarint(uint64(h.len))
			for _, e := range unsafe.Slice((*string)(h.data), h.len) {
				if s.Never {
					break
				}
				s.str(e)
			}
		}
	}
	elem := NewFlatEncoder(et, depth+1)
	if elem == nil {
		return nil
	}
	size := et.Size()
	least, fixed := flatLen(et)
	if size == 0 {
		// A flat zero-size value encodes as nothing, and a slice of them
		// can be longer than any key: write what the loop would.
		return func(s *State, p unsafe.Pointer) {
			h := (*sliceHeader)(p)
			if h.data == nil {
				s.byte(tagNil)
				return
			}
			s.byte(tagValue)
			s.Uvarint(uint64(h.len))
		}
	}
	return func(s *State, p unsafe.Pointer) {
		h := (*sliceHeader)(p)
		if h.data == nil {
			s.byte(tagNil)
			return
		}
		n := h.len
		if n > 0 && !s.enter(h.data, n, t) {
			return
		}
		s.byte(tagValue)
		s.Uvarint(uint64(n))
		if n > 0 && least > 0 && (n > MaxKeyLen || len(s.Buf)+n*least > MaxKeyLen) {
			s.overflow() // as sliceEncoder's loop would find
			s.Leave()
			return
		}
		for i := range n {
			elem(s, unsafe.Add(h.data, uintptr(i)*size))
		}
		if !fixed {
			s.past()
		}
		if n > 0 {
			s.Leave()
		}
	}
}

// withFlat returns an encoder that uses flat when v's address can be had
// and generic otherwise.
func withFlat(flat flatEncoder, generic Encoder) Encoder {
	return func(s *State, v reflect.Value) {
		if p := addressOf(v); p != nil {
			flat(s, p)
			return
		}
		generic(s, v)
	}
}

// addressOf returns the address of v's value, or nil when it cannot be had
// without copying: v is addressable, or v is a non-addressable value that
// reflect holds indirectly, whose interface then points at reflect's own
// copy (flat types are never pointer-shaped, so they are held indirectly).
func addressOf(v reflect.Value) unsafe.Pointer {
	if v.CanAddr() {
		return v.Addr().UnsafePointer()
	}
	if v.CanInterface() {
		x := v.Interface()
		return (*[2]unsafe.Pointer)(unsafe.Pointer(&x))[1]
	}
	return nil
}
