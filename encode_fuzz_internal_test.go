package memo

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/memokit/memo/internal/keys"
)

// FuzzKeys checks the key encoder against refEqual, a slow reference
// written straight from the SPEC's key table. The fuzz bytes become two
// nested values; the second is most often built from the same bytes (an
// equal copy in fresh memory, maps filled in another order) or from the
// bytes with one changed (a near miss).
//
//	go test -run XXX -fuzz=FuzzKeys -fuzztime=2m .
func FuzzKeys(f *testing.F) {
	f.Add([]byte{0, 0, 9, 3, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{1, 4, 1, 12, 2, 7, 1, 7, 2})
	f.Add([]byte{1, 2, 0, 5, 3, 5, 4})
	f.Add([]byte{0, 0, 13, 3, 5, 3, 5, 4, 7, 1})
	f.Add([]byte{2, 3, 14, 1, 2, 3, 15, 0, 1, 2, 3, 4})
	f.Add([]byte{0, 0, 16, 1, 16, 2, 17, 3})
	f.Add([]byte{1, 1, 6, 3, 6, 4})
	f.Add([]byte{2, 0, 9, 0, 9, 1})
	f.Add([]byte("\x00\x00\x0c\x03\x07a\x07b\x07c\x05\x03"))
	c := newCompiled(f, nil, anyType)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 || len(data) > 512 {
			return
		}
		mode, pos := data[0]%3, int(data[1])
		body := data[2:]
		ga := &fuzzGen{data: body}
		a := ga.value(0)
		var b any
		switch mode {
		case 0: // an equal copy, maps filled in reverse
			b = (&fuzzGen{data: body, reverse: true}).value(0)
		case 1: // one byte changed
			mutated := append([]byte(nil), body...)
			if len(mutated) > 0 {
				mutated[pos%len(mutated)] ^= 1 << (pos / len(mutated) % 8)
			}
			b = (&fuzzGen{data: mutated}).value(0)
		default: // whatever the rest of the bytes make
			b = (&fuzzGen{data: body[min(ga.i, len(body)):]}).value(0)
		}
		want := refEqual(reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem())
		if got := MakeHashable(a) == MakeHashable(b); got != want {
			t.Fatalf("MakeHashable(a) == MakeHashable(b) is %v, the reference says %v\na = %#v\nb = %#v", got, want, a, b)
		}
		if got := c.key(a) == c.key(b); got != want {
			t.Fatalf("compiled keys equal is %v, the reference says %v\na = %#v\nb = %#v", got, want, a, b)
		}
		if MakeHashable(a) != MakeHashable(a) {
			t.Fatalf("MakeHashable(a) != MakeHashable(a)\na = %#v", a)
		}
	})
}

// Types the generator makes: a few fixed struct field sets, with
// unexported and ignored fields, a named int and a CacheKeyer.
type (
	fzInt    int
	fzFold   string
	fzStruct struct {
		X int
		y string
		Z any
	}
	fzTagged struct {
		X   int8
		Ign string `memo:"-"`
		H   any    `hash:"ignore"`
		D   any    `hash:"-"`
		f   float64
	}
	fzNested struct {
		A [2]fzStruct
		M map[fzInt]string
		P *fzStruct
	}
)

func (f fzFold) CacheKey() any { return strings.ToLower(string(f)) }

// fzPool holds the only objects pointers are drawn from, so that pointer
// identities collide often.
var fzPool = struct {
	ints    [3]int
	structs [2]fzStruct
	times   [3]time.Time
}{}

func init() {
	t := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	fzPool.times = [3]time.Time{t, t.In(time.FixedZone("Z", 3600)), t.Add(time.Nanosecond)}
}

// fuzzGen turns bytes into a value. Past the end of the bytes it reads
// zeros, so every input makes a value.
type fuzzGen struct {
	data    []byte
	i       int
	reverse bool // fill maps in reverse order
}

func (g *fuzzGen) byte() byte {
	if g.i >= len(g.data) {
		g.i++
		return 0
	}
	b := g.data[g.i]
	g.i++
	return b
}

var fzFloats = []float64{
	0, 1, -1, 1e-7, 2e-7, math.Inf(1), math.Inf(-1),
	math.NaN(), math.Float64frombits(0x7ff8000000000001), math.Float64frombits(0xfff8000000000000),
	math.Copysign(0, -1),
}

var fzStrings = []string{"", "a", "A", "ab", "b", "bc", "abc", "\x00"}

// value returns a value of a type chosen by the next byte.
func (g *fuzzGen) value(depth int) any {
	kind := g.byte() % 24
	if depth >= 4 && kind >= 9 && kind <= 16 {
		kind %= 9 // no deeper containers
	}
	b := g.byte()
	switch kind {
	case 0:
		return int(b % 4)
	case 1:
		return int8(b % 4)
	case 2:
		return int64(b % 4)
	case 3:
		return uint16(b % 4)
	case 4:
		return fzInt(b % 4)
	case 5:
		return fzFloats[int(b)%len(fzFloats)]
	case 6:
		return float32(fzFloats[int(b)%len(fzFloats)])
	case 7:
		return fzStrings[int(b)%len(fzStrings)]
	case 8:
		switch b % 3 {
		case 0:
			return []byte(nil)
		case 1:
			return []byte{}
		}
		return []byte(fzStrings[int(b/3)%len(fzStrings)])
	case 9:
		switch b % 4 {
		case 0:
			return []any(nil)
		case 1:
			return []any{}
		}
		s := make([]any, int(b/4)%3+1)
		for i := range s {
			s[i] = g.value(depth + 1)
		}
		return s
	case 10:
		if b&128 != 0 {
			s := make([]string, int(b/4)%4)
			for i := range s {
				s[i] = fzStrings[int(g.byte())%len(fzStrings)]
			}
			if b%4 == 0 {
				s = nil
			}
			return s
		}
		if b%4 == 0 {
			return []int(nil)
		}
		s := make([]int, int(b/4)%4)
		for i := range s {
			s[i] = int(g.byte() % 3)
		}
		return s
	case 11:
		return [2]int{int(b % 2), int(b / 2 % 2)}
	case 12:
		return [2]any{g.value(depth + 1), g.value(depth + 1)}
	case 13:
		if b%4 == 0 {
			return map[string]any(nil)
		}
		m := map[string]any{}
		g.fillMap(reflect.ValueOf(m), int(b/4)%4, func() any { return fzStrings[int(g.byte())%len(fzStrings)] }, depth)
		return m
	case 14:
		m := map[any]int{}
		g.fillMap(reflect.ValueOf(m), int(b)%4, func() any { return g.scalar() }, depth)
		return m
	case 15:
		return fzStruct{X: int(b % 2), y: fzStrings[int(b/2)%len(fzStrings)], Z: g.value(depth + 1)}
	case 16:
		return fzTagged{
			X:   int8(b % 2),
			Ign: fzStrings[int(b/2)%len(fzStrings)],
			H:   g.value(depth + 1),
			D:   int(b / 16 % 2),
			f:   fzFloats[int(g.byte())%len(fzFloats)],
		}
	case 17:
		switch b % 6 {
		case 0:
			return (*int)(nil)
		case 1, 2, 3:
			return &fzPool.ints[b%3]
		}
		return &fzPool.structs[b%2]
	case 18:
		return nil
	case 19:
		return b%2 == 0
	case 20:
		return complex(fzFloats[int(b%16)%len(fzFloats)], fzFloats[int(b/16)%len(fzFloats)])
	case 21:
		return fzFold(fzStrings[int(b)%len(fzStrings)])
	case 22:
		return fzPool.times[b%3]
	default:
		n := fzNested{}
		n.A[0].X = int(b % 2)
		n.A[1].Z = g.scalar()
		if b&4 != 0 {
			n.M = map[fzInt]string{}
			for k := range int(b/8) % 3 {
				n.M[fzInt(k)] = fzStrings[int(g.byte())%len(fzStrings)]
			}
		}
		if b&64 != 0 {
			n.P = &fzPool.structs[b>>7]
		}
		return n
	}
}

// scalar returns a comparable value, for map keys.
func (g *fuzzGen) scalar() any {
	for {
		v := g.value(4)
		if v == nil || reflect.TypeOf(v).Comparable() {
			return v
		}
	}
}

// fillMap adds n pairs to m, the first of equal keys winning, in reverse
// order when g.reverse (the map's content does not depend on the order).
func (g *fuzzGen) fillMap(m reflect.Value, n int, key func() any, depth int) {
	type pair struct{ k, v reflect.Value }
	var pairs []pair
	seen := reflect.MakeMap(m.Type())
	for range n {
		k := reflect.ValueOf(key())
		var v reflect.Value
		if m.Type().Elem().Kind() == reflect.Interface {
			x := g.value(depth + 1)
			v = reflect.ValueOf(&x).Elem()
		} else {
			v = reflect.ValueOf(int(g.byte() % 3))
		}
		if !k.IsValid() {
			k = reflect.Zero(m.Type().Key())
		}
		if seen.MapIndex(k).IsValid() {
			continue
		}
		seen.SetMapIndex(k, v)
		pairs = append(pairs, pair{k, v})
	}
	for i := range pairs {
		p := pairs[i]
		if g.reverse {
			p = pairs[len(pairs)-1-i]
		}
		m.SetMapIndex(p.k, p.v)
	}
}

// refEqual is the SPEC's key equality, written for clarity, not speed:
// a and b have static types, as parameters do.
func refEqual(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	t := a.Type()
	if t.Implements(keys.KeyerType) && t.Kind() != reflect.Interface && a.CanInterface() {
		ka := a.Interface().(CacheKeyer).CacheKey()
		kb := b.Interface().(CacheKeyer).CacheKey()
		if reflect.TypeOf(ka) != t {
			return refEqual(reflect.ValueOf(&ka).Elem(), reflect.ValueOf(&kb).Elem())
		}
		a, b = reflect.ValueOf(ka), reflect.ValueOf(kb)
	}
	if t == reflect.TypeFor[time.Time]() {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		return ta.Equal(tb) && ta.Location() == tb.Location()
	}
	switch t.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.Float32:
		return refFloat32(float32(a.Float()), float32(b.Float()))
	case reflect.Float64:
		return refFloat64(a.Float(), b.Float())
	case reflect.Complex64:
		ca, cb := a.Complex(), b.Complex()
		return refFloat32(float32(real(ca)), float32(real(cb))) && refFloat32(float32(imag(ca)), float32(imag(cb)))
	case reflect.Complex128:
		ca, cb := a.Complex(), b.Complex()
		return refFloat64(real(ca), real(cb)) && refFloat64(imag(ca), imag(cb))
	case reflect.String:
		return a.String() == b.String()
	case reflect.Array:
		for i := range a.Len() {
			if !refEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !refEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Len() != b.Len() {
			return false
		}
		// Pair equality is an equivalence, so matching each pair of a
		// with any unused equal pair of b decides multiset equality.
		type pair struct{ k, v reflect.Value }
		var bs []pair
		for it := b.MapRange(); it.Next(); {
			bs = append(bs, pair{it.Key(), it.Value()})
		}
		used := make([]bool, len(bs))
	pairs:
		for it := a.MapRange(); it.Next(); {
			for j, p := range bs {
				if !used[j] && refEqual(it.Key(), p.k) && refEqual(it.Value(), p.v) {
					used[j] = true
					continue pairs
				}
			}
			return false
		}
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Tag.Get("memo") == "-" || f.Tag.Get("hash") == "ignore" || f.Tag.Get("hash") == "-" {
				continue
			}
			if !refEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return refEqual(a.Elem(), b.Elem())
	case reflect.Pointer, reflect.Chan, reflect.UnsafePointer:
		return a.UnsafePointer() == b.UnsafePointer()
	}
	panic("refEqual: the generator made a " + t.String())
}

func refFloat64(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

func refFloat32(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return math.Float32bits(a) == math.Float32bits(b)
}
