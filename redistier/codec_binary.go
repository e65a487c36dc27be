package redistier

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Binary is memo's own codec and the default. It is built once per result
// type, at decoration, from a walk of the type, and it carries every value
// of the types it accepts exactly: what [Codec.Decode] returns is what was
// encoded, under memo's key equality with pointers followed (as with
// [memo.WithDeref]) and floats compared bit for bit:
//
//   - nil and empty slices and maps stay apart; strings and map keys keep
//     every byte, valid UTF-8 or not; integers keep all their bits; floats
//     keep their bits (-0, every NaN payload, infinities);
//   - struct fields are all carried, unexported, blank and memo:"-" ones
//     included, whatever methods the type has (MarshalJSON and the like
//     are not called: the fields are the value); but a struct of up to 64
//     bytes with unexported fields and both MarshalBinary and
//     UnmarshalBinary (netip.Addr, netip.Prefix) goes through that pair
//     whenever it brings the value back exactly, so that invariants its
//     fields do not show (netip.Addr's unique.Handle, compared by
//     identity) hold in the copy; a value it would not bring back is
//     carried field by field, or, when the fields cannot be (a
//     unique.Handle), refused (an EncodeError);
//   - a pointer is carried by the value it points to (nil stays nil); two
//     pointers to one object come back as two equal objects, and a value
//     nested deeper than 1,000 pointers, slices or maps (a cyclic value
//     among them) is not encoded: an EncodeError, never a truncated value;
//   - a time.Time (or a type defined as one) is carried as its instant, the
//     name of its location and the zone name and offset in effect; the
//     monotonic reading is dropped. UTC and fixed zones (time.FixedZone,
//     time.Parse of a numeric offset) come back as such; time.Local and
//     named locations (time.LoadLocation) are looked up in the reading
//     process, and a value whose zone name or offset differs there (another
//     TZ, other tzdata) is a miss and a DecodeError, never another wall
//     time.
//
// It refuses, at decoration, result types holding an interface (the
// dynamic type cannot be carried), a func, a channel, an unsafe.Pointer
// or a unique.Handle outside such a pair, naming the field. A pointer
// inside another package's type is carried by value too: a type whose
// unexported pointers must keep their identity, and that has no exact
// MarshalBinary, must not be a tiered result. Decoding bounds every length by the bytes left before
// it allocates: a value of n bytes allocates at most about 24n bytes
// (a slice header per byte) whatever it claims, plus the size of the
// result types themselves.
var Binary Codec = binaryCodec{}

type binaryCodec struct{}

func (binaryCodec) ID() byte { return 4 }

func (binaryCodec) Check(t reflect.Type) error {
	_, err := planOf(t)
	if err != nil {
		return fmt.Errorf("memo: redistier: result type %v cannot be stored exactly by the Binary codec: %w; return a type without it or leave WithTier out", t, err)
	}
	return nil
}

func (binaryCodec) Encode(dst []byte, vals []any) ([]byte, error) {
	e := encState{buf: dst}
	for _, v := range vals {
		if err := e.value(v); err != nil {
			return nil, err
		}
	}
	return e.buf, nil
}

func (binaryCodec) Decode(data []byte, types []reflect.Type) ([]any, error) {
	d := decState{b: data}
	out := make([]any, len(types))
	for i, t := range types {
		p, err := planOf(t)
		if err != nil {
			return nil, err
		}
		v := reflect.New(t)
		if err := p.dec(&d, v.UnsafePointer()); err != nil {
			return nil, err
		}
		out[i] = v.Elem().Interface()
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return out, nil
}

// maxNesting bounds the pointers, slices and maps one value may nest, in
// encoding (a cyclic value) and in decoding (crafted bytes), so that
// neither can exhaust the stack.
const maxNesting = 1000

// A plan encodes and decodes the values of one type, through a pointer to
// the value; the value's memory is read and written directly, so that
// unexported fields are carried too.
type plan struct {
	t reflect.Type
	// min is the least number of bytes an encoding of t takes (saturated
	// at 1<<40): a length n of elements of this type is refused unless
	// n*min bytes are left.
	min int
	enc func(e *encState, p unsafe.Pointer) error
	dec func(d *decState, p unsafe.Pointer) error
}

type planResult struct {
	p   *plan
	err error
}

var plans sync.Map // reflect.Type → planResult

// planOf returns t's plan, built on first use, or the reason t cannot be
// carried exactly.
func planOf(t reflect.Type) (*plan, error) {
	if r, ok := plans.Load(t); ok {
		r := r.(planResult)
		return r.p, r.err
	}
	b := planner{built: map[reflect.Type]*plan{}}
	p, err := b.build(t, t.String())
	r, _ := plans.LoadOrStore(t, planResult{p, err})
	return r.(planResult).p, r.(planResult).err
}

type planner struct{ built map[reflect.Type]*plan }

const minCap = 1 << 40

func satMul(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > minCap/b {
		return minCap
	}
	return a * b
}

// build returns t's plan; path names the place of t in the result type,
// for errors. A plan is registered before its parts are built, so that
// recursive types (through pointers, slices and maps) terminate.
func (b *planner) build(t reflect.Type, path string) (*plan, error) {
	if p, ok := b.built[t]; ok {
		return p, nil
	}
	p := &plan{t: t}
	if t == timeType || (t.Kind() == reflect.Struct && t.ConvertibleTo(timeType)) {
		p.min = 2
		p.enc, p.dec = encTime, decTime
		b.built[t] = p
		return p, nil
	}
	if t.PkgPath() == "unique" && strings.HasPrefix(t.Name(), "Handle[") {
		return nil, fmt.Errorf("%s is a %v, which is compared by identity: a copy is never equal to it", path, t)
	}
	// The plans built for t's parts are dropped if t fails: some may hold
	// t's unfinished plan.
	before := maps.Clone(b.built)
	b.built[t] = p
	err := b.fields(p, t, path)
	if err != nil && marshalled(t) && t.Comparable() {
		b.built = before
		b.built[t] = p
		marshalOnly(p)
		return p, nil
	}
	if err != nil {
		b.built = before
		return nil, err
	}
	if marshalled(t) {
		withMarshal(p)
	}
	return p, nil
}

// fields fills in p, t's plan, to carry t's values field by field (element
// by element, bit by bit).
func (b *planner) fields(p *plan, t reflect.Type, path string) error {
	size := t.Size()
	switch k := t.Kind(); k {
	case reflect.Bool:
		p.min = 1
		p.enc = func(e *encState, q unsafe.Pointer) error {
			e.buf = append(e.buf, *(*byte)(q))
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			c, err := d.byte()
			if err != nil {
				return err
			}
			if c > 1 {
				return errors.New("bad bool")
			}
			*(*bool)(q) = c == 1
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.min = 1
		p.enc = func(e *encState, q unsafe.Pointer) error {
			e.buf = binary.AppendVarint(e.buf, readInt(q, size))
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			v, n := binary.Varint(d.b)
			if n <= 0 {
				return errors.New("bad integer")
			}
			d.b = d.b[n:]
			if !writeInt(q, size, v) {
				return fmt.Errorf("integer %d overflows %v", v, t)
			}
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.min = 1
		p.enc = func(e *encState, q unsafe.Pointer) error {
			e.buf = binary.AppendUvarint(e.buf, readUint(q, size))
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			v, err := d.uvarint()
			if err != nil {
				return err
			}
			if !writeUint(q, size, v) {
				return fmt.Errorf("integer %d overflows %v", v, t)
			}
			return nil
		}
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		// Raw bits: -0, NaN payloads and infinities as they are.
		n := int(size)
		p.min = n
		p.enc = func(e *encState, q unsafe.Pointer) error {
			e.buf = append(e.buf, unsafe.Slice((*byte)(q), n)...)
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			if len(d.b) < n {
				return errShort
			}
			copy(unsafe.Slice((*byte)(q), n), d.b[:n])
			d.b = d.b[n:]
			return nil
		}
	case reflect.String:
		p.min = 1
		p.enc = func(e *encState, q unsafe.Pointer) error {
			s := *(*string)(q)
			e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
			e.buf = append(e.buf, s...)
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			n, err := d.length(1)
			if err != nil {
				return err
			}
			*(*string)(q) = string(d.b[:n])
			d.b = d.b[n:]
			return nil
		}
	case reflect.Pointer:
		p.min = 1
		elem, err := b.build(t.Elem(), path)
		if err != nil {
			return err
		}
		p.enc = func(e *encState, q unsafe.Pointer) error {
			ptr := *(*unsafe.Pointer)(q)
			if ptr == nil {
				e.buf = append(e.buf, 0)
				return nil
			}
			if err := e.enter(); err != nil {
				return err
			}
			e.buf = append(e.buf, 1)
			err := elem.enc(e, ptr)
			e.depth--
			return err
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			c, err := d.byte()
			if err != nil || c == 0 {
				return err
			}
			if c != 1 {
				return errors.New("bad pointer")
			}
			if len(d.b) < elem.min {
				return errShort
			}
			if err := d.enter(); err != nil {
				return err
			}
			v := reflect.New(elem.t)
			if err := elem.dec(d, v.UnsafePointer()); err != nil {
				return err
			}
			d.depth--
			*(*unsafe.Pointer)(q) = v.UnsafePointer()
			return nil
		}
	case reflect.Slice:
		p.min = 1
		elem, err := b.build(t.Elem(), path+"[i]")
		if err != nil {
			return err
		}
		esize := t.Elem().Size()
		p.enc = func(e *encState, q unsafe.Pointer) error {
			if *(*unsafe.Pointer)(q) == nil {
				e.buf = append(e.buf, 0)
				return nil
			}
			n := reflect.NewAt(t, q).Elem().Len()
			e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
			return e.elems(elem, *(*unsafe.Pointer)(q), n, esize)
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			n, err := d.uvarint()
			if err != nil || n == 0 {
				return err
			}
			m, err := d.count(n-1, elem.min)
			if err != nil {
				return err
			}
			s := reflect.MakeSlice(t, m, m)
			reflect.NewAt(t, q).Elem().Set(s)
			return d.elems(elem, s.UnsafePointer(), m, esize)
		}
	case reflect.Array:
		elem, err := b.build(t.Elem(), path+"[i]")
		if err != nil {
			return err
		}
		n, esize := t.Len(), t.Elem().Size()
		p.min = satMul(n, elem.min)
		p.enc = func(e *encState, q unsafe.Pointer) error { return e.elems(elem, q, n, esize) }
		p.dec = func(d *decState, q unsafe.Pointer) error {
			if len(d.b) < p.min {
				return errShort
			}
			return d.elems(elem, q, n, esize)
		}
	case reflect.Map:
		p.min = 1
		kp, err := b.build(t.Key(), path+"[key]")
		if err != nil {
			return err
		}
		vp, err := b.build(t.Elem(), path+"[k]")
		if err != nil {
			return err
		}
		p.enc = func(e *encState, q unsafe.Pointer) error { return e.mapValue(t, kp, vp, q) }
		p.dec = func(d *decState, q unsafe.Pointer) error { return d.mapValue(t, kp, vp, q) }
	case reflect.Struct:
		type field struct {
			off uintptr
			p   *plan
		}
		var fields []field
		for i := range t.NumField() {
			f := t.Field(i)
			fp, err := b.build(f.Type, path+"."+f.Name)
			if err != nil {
				return err
			}
			fields = append(fields, field{f.Offset, fp})
			p.min += fp.min
		}
		p.min = min(p.min, minCap)
		p.enc = func(e *encState, q unsafe.Pointer) error {
			for _, f := range fields {
				if err := f.p.enc(e, unsafe.Add(q, f.off)); err != nil {
					return err
				}
			}
			return nil
		}
		p.dec = func(d *decState, q unsafe.Pointer) error {
			for _, f := range fields {
				if err := f.p.dec(d, unsafe.Add(q, f.off)); err != nil {
					return err
				}
			}
			return nil
		}
	case reflect.Interface:
		return fmt.Errorf("%s has the interface type %v (its dynamic type cannot be carried)", path, t)
	default: // Func, Chan, UnsafePointer
		return fmt.Errorf("%s has type %v, which has no value to carry (%v is keyed by identity)", path, t, k)
	}
	return nil
}

// marshalled reports whether t's values go through t's own MarshalBinary
// and UnmarshalBinary when those bring a value back exactly: t is a small
// struct with unexported fields, whose invariants the fields alone may
// not carry (netip.Addr holds a unique.Handle, a pointer compared by
// identity: field by field, 10.1.2.3 came back as ::ffff:10.1.2.3%).
// Up to 64 bytes, so that the two bytes the marshalled form takes at
// least still bound what a length may allocate (32 bytes per byte read).
func marshalled(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || t.Size() > 64 || !pair(t, binaryMarshaler, binaryUnmarshaler) {
		return false
	}
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			return true
		}
	}
	return false
}

// withMarshal makes p, a structural plan, write each value through its
// type's MarshalBinary when UnmarshalBinary brings it back exactly (the
// canonical encodings are equal), and field by field otherwise (a
// MarshalBinary that drops fields): a tag byte says which.
func withMarshal(p *plan) {
	t := p.t
	fields := *p
	p.min = min(2, fields.min+1)
	p.enc = func(e *encState, q unsafe.Pointer) error {
		if b, ok := marshalExact(t, q, fields.enc); ok {
			e.buf = append(e.buf, 1)
			e.str(string(b))
			return nil
		}
		e.buf = append(e.buf, 0)
		return fields.enc(e, q)
	}
	p.dec = func(d *decState, q unsafe.Pointer) error {
		tag, err := d.byte()
		if err != nil {
			return err
		}
		switch tag {
		case 0:
			return fields.dec(d, q)
		case 1:
			s, err := d.str()
			if err != nil {
				return err
			}
			return reflect.NewAt(t, q).Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary([]byte(s))
		}
		return errors.New("bad marshalled value")
	}
}

// marshalOnly makes p write each value through its type's MarshalBinary,
// for a comparable type whose fields cannot be carried (a netip.Addr's
// unique.Handle): a value is refused (an EncodeError) unless
// UnmarshalBinary brings back one == to it.
func marshalOnly(p *plan) {
	t := p.t
	p.min = 1
	p.enc = func(e *encState, q unsafe.Pointer) error {
		b, ok := marshalExact(t, q, nil)
		if !ok {
			return fmt.Errorf("memo: redistier: a %v does not come back exactly through its MarshalBinary and UnmarshalBinary", t)
		}
		e.str(string(b))
		return nil
	}
	p.dec = func(d *decState, q unsafe.Pointer) error {
		s, err := d.str()
		if err != nil {
			return err
		}
		return reflect.NewAt(t, q).Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary([]byte(s))
	}
}

// marshalExact returns the MarshalBinary form of the value at q if
// UnmarshalBinary brings back a value whose fields encode as the
// original's do (or, with fields nil, one == to it); a method that panics
// or fails counts as not exact.
func marshalExact(t reflect.Type, q unsafe.Pointer, fields func(*encState, unsafe.Pointer) error) (b []byte, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	v := reflect.NewAt(t, q)
	m, isM := v.Interface().(encoding.BinaryMarshaler)
	if !isM {
		return nil, false
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, false
	}
	back := reflect.New(t)
	if back.Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(slices.Clone(b)) != nil {
		return nil, false
	}
	if fields == nil {
		return b, v.Elem().Interface() == back.Elem().Interface()
	}
	// portable: a time.Time in time.Local is not compared here, as
	// UnmarshalBinary brings back this process's Local, which another
	// process's differs from; such a value goes field by field, whose
	// decoding checks the zone.
	want, got := encState{canonical: true, portable: true}, encState{canonical: true, portable: true}
	if fields(&want, q) != nil || fields(&got, back.UnsafePointer()) != nil {
		return nil, false
	}
	return b, bytes.Equal(want.buf, got.buf)
}

func readInt(p unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(p))
	case 2:
		return int64(*(*int16)(p))
	case 4:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func writeInt(p unsafe.Pointer, size uintptr, v int64) bool {
	switch size {
	case 1:
		*(*int8)(p) = int8(v)
		return int64(int8(v)) == v
	case 2:
		*(*int16)(p) = int16(v)
		return int64(int16(v)) == v
	case 4:
		*(*int32)(p) = int32(v)
		return int64(int32(v)) == v
	}
	*(*int64)(p) = v
	return true
}

func readUint(p unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}

func writeUint(p unsafe.Pointer, size uintptr, v uint64) bool {
	switch size {
	case 1:
		*(*uint8)(p) = uint8(v)
		return uint64(uint8(v)) == v
	case 2:
		*(*uint16)(p) = uint16(v)
		return uint64(uint16(v)) == v
	case 4:
		*(*uint32)(p) = uint32(v)
		return uint64(uint32(v)) == v
	}
	*(*uint64)(p) = v
	return true
}

// encState is one encoding. canonical writes map entries sorted by their
// encoding, so that equal values encode to equal bytes (exactEqual);
// portable refuses time.Local, whose meaning differs between machines.
type encState struct {
	buf                 []byte
	depth               int
	canonical, portable bool
}

func (e *encState) value(v any) error {
	t := reflect.TypeOf(v)
	if t == nil {
		return errors.New("memo: redistier: a nil interface result cannot be encoded")
	}
	p, err := planOf(t)
	if err != nil {
		return err
	}
	// The value behind the interface is read in place of a copy.
	c := reflect.New(t)
	c.Elem().Set(reflect.ValueOf(v))
	return p.enc(e, c.UnsafePointer())
}

func (e *encState) enter() error {
	e.depth++
	if e.depth > maxNesting {
		return fmt.Errorf("memo: redistier: the value nests deeper than %d pointers, slices or maps (a cycle?)", maxNesting)
	}
	return nil
}

func (e *encState) elems(elem *plan, base unsafe.Pointer, n int, size uintptr) error {
	if n > 0 && elem.t.Kind() == reflect.Uint8 && size == 1 {
		e.buf = append(e.buf, unsafe.Slice((*byte)(base), n)...)
		return nil
	}
	if err := e.enter(); err != nil {
		return err
	}
	for i := range n {
		if err := elem.enc(e, unsafe.Add(base, uintptr(i)*size)); err != nil {
			return err
		}
	}
	e.depth--
	return nil
}

func (e *encState) mapValue(t reflect.Type, kp, vp *plan, q unsafe.Pointer) error {
	m := reflect.NewAt(t, q).Elem()
	if m.IsNil() {
		e.buf = append(e.buf, 0)
		return nil
	}
	if err := e.enter(); err != nil {
		return err
	}
	n := m.Len()
	e.buf = binary.AppendUvarint(e.buf, uint64(n)+1)
	start := len(e.buf)
	var ends []int
	k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	count := 0
	for it := m.MapRange(); it.Next(); count++ {
		k.SetIterKey(it)
		v.SetIterValue(it)
		if err := kp.enc(e, k.Addr().UnsafePointer()); err != nil {
			return err
		}
		if err := vp.enc(e, v.Addr().UnsafePointer()); err != nil {
			return err
		}
		if e.canonical {
			ends = append(ends, len(e.buf))
		}
	}
	if count != n {
		return errors.New("memo: redistier: a map changed while it was encoded")
	}
	if e.canonical && n > 1 {
		pairs := make([][]byte, n)
		from := start
		for i, end := range ends {
			pairs[i] = slices.Clone(e.buf[from:end])
			from = end
		}
		slices.SortFunc(pairs, bytes.Compare)
		e.buf = e.buf[:start]
		for _, pr := range pairs {
			e.buf = append(e.buf, pr...)
		}
	}
	e.depth--
	return nil
}

// decState is one decoding of bytes read from Redis: bad input, checked
// before each read and each allocation.
type decState struct {
	b     []byte
	depth int
}

var errShort = errors.New("truncated value")

func (d *decState) byte() (byte, error) {
	if len(d.b) == 0 {
		return 0, errShort
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c, nil
}

func (d *decState) uvarint() (uint64, error) {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, errors.New("bad length")
	}
	d.b = d.b[n:]
	return v, nil
}

// length reads a length of elements of at least min bytes each, and
// refuses it unless the bytes left can hold them.
func (d *decState) length(min int) (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	return d.count(n, min)
}

// count checks that n elements of at least min bytes each fit in the
// bytes left. Zero-size elements take no memory and are all alike, so
// any count of them is allowed, up to what an int holds.
func (d *decState) count(n uint64, min int) (int, error) {
	if min == 0 {
		if n > math.MaxInt32 {
			return 0, fmt.Errorf("%d elements", n)
		}
		return int(n), nil
	}
	if n > uint64(len(d.b)/min) {
		return 0, fmt.Errorf("%d elements of at least %d bytes in %d bytes", n, min, len(d.b))
	}
	return int(n), nil
}

func (d *decState) enter() error {
	d.depth++
	if d.depth > maxNesting {
		return fmt.Errorf("nested deeper than %d", maxNesting)
	}
	return nil
}

func (d *decState) elems(elem *plan, base unsafe.Pointer, n int, size uintptr) error {
	if n > 0 && elem.t.Kind() == reflect.Uint8 && size == 1 {
		if len(d.b) < n {
			return errShort
		}
		copy(unsafe.Slice((*byte)(base), n), d.b[:n])
		d.b = d.b[n:]
		return nil
	}
	if n > 0 && size == 0 && elem.min == 0 {
		return nil // zero-size elements: nothing to read, all alike
	}
	if err := d.enter(); err != nil {
		return err
	}
	for i := range n {
		if err := elem.dec(d, unsafe.Add(base, uintptr(i)*size)); err != nil {
			return err
		}
	}
	d.depth--
	return nil
}

func (d *decState) mapValue(t reflect.Type, kp, vp *plan, q unsafe.Pointer) error {
	n, err := d.uvarint()
	if err != nil || n == 0 {
		return err
	}
	pair := kp.min + vp.min
	if pair == 0 && n > 2 {
		return errors.New("duplicate map keys")
	}
	cnt, err := d.count(n-1, max(pair, 1))
	if err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	m := reflect.MakeMapWithSize(t, cnt)
	k, v := reflect.New(t.Key()), reflect.New(t.Elem())
	kz, vz := reflect.Zero(t.Key()), reflect.Zero(t.Elem())
	for range cnt {
		k.Elem().Set(kz)
		v.Elem().Set(vz)
		if err := kp.dec(d, k.UnsafePointer()); err != nil {
			return err
		}
		if err := vp.dec(d, v.UnsafePointer()); err != nil {
			return err
		}
		m.SetMapIndex(k.Elem(), v.Elem())
	}
	if m.Len() != cnt {
		return errors.New("duplicate map keys")
	}
	d.depth--
	reflect.NewAt(t, q).Elem().Set(m)
	return nil
}

// Locations of a time.Time.
const (
	locUTC   byte = iota // time.UTC
	locLocal             // time.Local, checked against the zone in effect
	locFixed             // time.FixedZone(name, offset)
	locNamed             // time.LoadLocation(name), checked against the zone in effect
)

func encTime(e *encState, q unsafe.Pointer) error {
	t := *(*time.Time)(q)
	sec, nsec := t.Unix(), t.Nanosecond()
	e.buf = binary.AppendVarint(e.buf, sec)
	e.buf = binary.AppendUvarint(e.buf, uint64(nsec))
	loc := t.Location()
	zone, off := t.Zone()
	switch {
	case loc == time.UTC:
		e.buf = append(e.buf, locUTC)
		return nil
	case loc == time.Local:
		if e.portable {
			return errors.New("memo: redistier: a time.Time in time.Local cannot be carried exactly by this codec (another machine's Local may differ); use the Binary codec")
		}
		e.buf = append(e.buf, locLocal)
	case isFixedZone(loc):
		e.buf = append(e.buf, locFixed)
	default:
		e.buf = append(e.buf, locNamed)
		e.str(loc.String())
	}
	e.str(zone)
	e.buf = binary.AppendVarint(e.buf, int64(off))
	return nil
}

func (e *encState) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (d *decState) str() (string, error) {
	n, err := d.length(1)
	if err != nil {
		return "", err
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s, nil
}

func decTime(d *decState, q unsafe.Pointer) error {
	sec, n := binary.Varint(d.b)
	if n <= 0 {
		return errors.New("bad time")
	}
	d.b = d.b[n:]
	nsec, err := d.uvarint()
	if err != nil {
		return err
	}
	if nsec >= 1e9 {
		return errors.New("bad time: nanoseconds past a second")
	}
	tag, err := d.byte()
	if err != nil {
		return err
	}
	t := time.Unix(sec, int64(nsec))
	if tag == locUTC {
		*(*time.Time)(q) = t.UTC()
		return nil
	}
	var name string
	if tag == locNamed {
		if name, err = d.str(); err != nil {
			return err
		}
	}
	zone, err := d.str()
	if err != nil {
		return err
	}
	off, n := binary.Varint(d.b)
	if n <= 0 || off < math.MinInt32 || off > math.MaxInt32 {
		return errors.New("bad zone offset")
	}
	d.b = d.b[n:]
	var loc *time.Location
	switch tag {
	case locLocal:
		loc = time.Local
	case locFixed:
		loc = fixedZone(zone, int(off))
	case locNamed:
		if loc, err = loadLocation(name); err != nil {
			return err
		}
	default:
		return errors.New("bad time location")
	}
	t = t.In(loc)
	if z, o := t.Zone(); z != zone || o != int(off) {
		return fmt.Errorf("the time was written in zone %q (offset %d s), which is %q (%d s) in this process's %v", zone, off, z, o, loc)
	}
	*(*time.Time)(q) = t
	return nil
}

// isFixedZone reports whether loc is what time.FixedZone(name, offset)
// returns for its own name: one zone, named as the location, and no
// transitions. The fields are read by name; should they ever change, every
// location is carried by name instead (locNamed), which stays exact.
func isFixedZone(loc *time.Location) bool {
	v := reflect.ValueOf(loc).Elem()
	zone, tx, ext := v.FieldByName("zone"), v.FieldByName("tx"), v.FieldByName("extend")
	if !zone.IsValid() || !tx.IsValid() || !ext.IsValid() || zone.Kind() != reflect.Slice || tx.Kind() != reflect.Slice || ext.Kind() != reflect.String {
		return false
	}
	if zone.Len() != 1 || tx.Len() > 1 || ext.String() != "" {
		return false
	}
	n := zone.Index(0).FieldByName("name")
	return n.IsValid() && n.Kind() == reflect.String && n.String() == loc.String()
}

var (
	fixedZones sync.Map // fixedKey → *time.Location
	namedZones sync.Map // string → *time.Location
)

type fixedKey struct {
	name string
	off  int
}

func fixedZone(name string, off int) *time.Location {
	k := fixedKey{name, off}
	if l, ok := fixedZones.Load(k); ok {
		return l.(*time.Location)
	}
	l, _ := fixedZones.LoadOrStore(k, time.FixedZone(name, off))
	return l.(*time.Location)
}

func loadLocation(name string) (*time.Location, error) {
	if l, ok := namedZones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	if l == time.UTC || l == time.Local {
		return nil, fmt.Errorf("location %q", name) // not what was written: those have tags of their own
	}
	l2, _ := namedZones.LoadOrStore(name, l)
	return l2.(*time.Location), nil
}

// exactEqual reports whether a and b, of one type the Binary codec
// accepts, are equal as the codec carries them: their canonical encodings
// (map entries sorted) are the same bytes.
func exactEqual(a, b any, portable bool) (bool, error) {
	ea := encState{canonical: true, portable: portable}
	if err := ea.value(a); err != nil {
		return false, err
	}
	eb := encState{canonical: true, portable: portable}
	if err := eb.value(b); err != nil {
		return false, err
	}
	return bytes.Equal(ea.buf, eb.buf), nil
}
