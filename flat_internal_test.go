package memo

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"unsafe"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type flatName string

type flatInner struct {
	B   bool
	I8  int8
	U16 uint16
	F32 float32
	C   complex128
	S   flatName
}

type flatOuter struct {
	ID      int64
	Name    string
	Tags    []string
	Raw     []byte
	Inner   flatInner
	Arr     [3]uint8
	Nested  [][]int32
	Items   []flatInner
	F       float64
	skipped int `memo:"-"`
	hidden  uint
	Empty   struct{}
}

// TestFlatMatchesGeneric checks that a flat encoder writes exactly the bytes
// of the reflective encoder, on random values of a type that uses every
// flat kind, so that keys do not depend on which of the two ran.
func TestFlatMatchesGeneric(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[flatOuter]()
	flat := keys.NewFlatEncoder(typ, 0)
	require.NotNil(t, flat, "flatOuter is flat")
	generic := keys.NewKindEncoder(typ)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		v := randomFlatOuter(r)
		a, b := keys.GetState(), keys.GetState()
		generic(a, reflect.ValueOf(v))
		flat(b, unsafe.Pointer(&v))
		require.Equal(t, a.Buf, b.Buf, "value %d: %+v", i, v)
		keys.PutState(a)
		keys.PutState(b)
	}
}

// TestFlatEncoderUsedAndEqual checks the combined encoder: the same value
// reached addressably, through an interface, and from an unexported field
// of a non-addressable struct (which needs the reflective fallback) keys
// alike, and differing values key apart.
func TestFlatEncoderUsedAndEqual(t *testing.T) {
	t.Parallel()
	type holder struct{ v flatOuter }
	r := rand.New(rand.NewPCG(3, 4))
	v := randomFlatOuter(r)
	enc := keys.EncoderOf(reflect.TypeFor[flatOuter]())
	key := func(rv reflect.Value) string {
		s := keys.GetState()
		defer keys.PutState(s)
		enc(s, rv)
		return string(s.Buf)
	}
	direct := key(reflect.ValueOf(v))
	assert.Equal(t, direct, key(reflect.ValueOf(&v).Elem()), "addressable")
	assert.Equal(t, direct, key(reflect.ValueOf(holder{v}).Field(0)), "unexported field, not addressable")
	w := v
	w.Nested = append([][]int32{{1}}, w.Nested...)
	assert.NotEqual(t, direct, key(reflect.ValueOf(w)))
	assert.True(t, MakeHashable(v) == MakeHashable(v))
	assert.False(t, MakeHashable(v) == MakeHashable(w))
}

func TestFlatTypes(t *testing.T) {
	t.Parallel()
	type withPtr struct{ P *int }
	type withMap struct{ M map[string]int }
	type withAny struct{ A any }
	type recursive struct{ C []recursive }
	for _, typ := range []reflect.Type{
		reflect.TypeFor[withPtr](), reflect.TypeFor[withMap](), reflect.TypeFor[withAny](),
		reflect.TypeFor[recursive](), reflect.TypeFor[struct{ T [2]flatTimeHolder }](),
	} {
		assert.Nil(t, keys.NewFlatEncoder(typ, 0), "%v is not flat", typ)
	}
	assert.NotNil(t, keys.NewFlatEncoder(reflect.TypeFor[[]flatInner](), 0))
}

type flatTimeHolder struct{ K keyedByLen }

type keyedByLen string

func (k keyedByLen) CacheKey() any { return len(k) }

func randomFlatOuter(r *rand.Rand) flatOuter {
	str := func() string {
		b := make([]byte, r.IntN(4))
		for i := range b {
			b[i] = byte('a' + r.IntN(3))
		}
		return string(b)
	}
	float := func() float64 {
		switch r.IntN(6) {
		case 0:
			return math.NaN()
		case 1:
			return math.Copysign(0, -1)
		case 2:
			return math.Inf(1)
		}
		return float64(r.IntN(5)) / 2
	}
	inner := func() flatInner {
		return flatInner{
			B: r.IntN(2) == 0, I8: int8(r.IntN(256) - 128), U16: uint16(r.Uint32()),
			F32: float32(float()), C: complex(float(), float()), S: flatName(str()),
		}
	}
	v := flatOuter{ID: r.Int64N(5) - 2, Name: str(), F: float(), skipped: r.Int(), hidden: uint(r.IntN(3))}
	if n := r.IntN(4); n > 0 {
		v.Tags = make([]string, n-1)
		for i := range v.Tags {
			v.Tags[i] = str()
		}
	}
	if n := r.IntN(4); n > 0 {
		v.Raw = []byte(str())[:0:0]
		v.Raw = append(v.Raw, str()...)
	}
	v.Inner = inner()
	for i := range v.Arr {
		v.Arr[i] = uint8(r.IntN(3))
	}
	for range r.IntN(3) {
		var row []int32
		if r.IntN(3) > 0 {
			row = []int32{}
			for range r.IntN(3) {
				row = append(row, int32(r.IntN(5)-2))
			}
		}
		v.Nested = append(v.Nested, row)
	}
	for range r.IntN(3) {
		v.Items = append(v.Items, inner())
	}
	return v
}

// TestDynamicBasicMatchesEncoder checks Cache.Get's reflection-free key
// for common basic types against the reflective encoding of an interface.
func TestDynamicBasicMatchesEncoder(t *testing.T) {
	t.Parallel()
	for _, k := range []any{0, -1, math.MaxInt, int64(-7), uint64(math.MaxUint64), "", "ab", true, false,
		0.5, math.Copysign(0, -1), math.NaN(), math.Float64frombits(0x7ff8000000000001), math.Inf(-1)} {
		s := keys.GetState()
		encodeKey(s, k)
		fast, ok := keys.AppendDynamicBasic(make([]byte, 8), k)
		require.True(t, ok, "%T", k)
		assert.Equal(t, s.Buf, fast, "%T %v", k, k)
		keys.PutState(s)
	}
	for _, k := range []any{int8(1), uint(1), float32(1), []int{1}, nil, flatName("x")} {
		_, ok := keys.AppendDynamicBasic(nil, k)
		assert.False(t, ok, "%T takes the reflective path", k)
	}
}

type r2Flat struct {
	A int16
	S string
	B []byte
	T []string
	N [][2]float32
	E struct{}
	u uint8
}

type r2Holder struct {
	X r2Flat
	y r2Flat
}

// TestFlatAllAccessPaths: the flat/generic combined encoder gives the
// same bytes for one value whatever way reflect reached it (addressable,
// interface Elem, map value, map key, unexported field of an addressable
// and of a non-addressable struct, array element, MakeFunc argument).
func TestFlatAllAccessPaths(t *testing.T) {
	v := r2Flat{A: -3, S: "x", B: []byte{1, 2}, T: []string{"a", ""}, N: [][2]float32{{1, -0}}, u: 7}
	typ := reflect.TypeFor[r2Flat]()
	enc := keys.EncoderOf(typ)
	gen := keys.NewKindEncoder(typ)
	key := func(e keys.Encoder, rv reflect.Value) string {
		s := keys.GetState()
		defer keys.PutState(s)
		e(s, rv)
		return string(s.Buf)
	}
	want := key(gen, reflect.ValueOf(v))
	var anyv any = v
	h := r2Holder{v, v}
	m := map[int]r2Flat{1: v}
	paths := map[string]reflect.Value{
		"value":            reflect.ValueOf(v),
		"addr":             reflect.ValueOf(&v).Elem(),
		"iface elem":       reflect.ValueOf(&anyv).Elem().Elem(),
		"map value":        reflect.ValueOf(m).MapIndex(reflect.ValueOf(1)),
		"unexp addr":       reflect.ValueOf(&h).Elem().Field(1),
		"unexp nonaddr":    reflect.ValueOf(h).Field(1),
		"exp nonaddr":      reflect.ValueOf(h).Field(0),
		"array elem":       reflect.ValueOf([2]r2Flat{v, v}).Index(1),
		"slice elem":       reflect.ValueOf([]r2Flat{v}).Index(0),
		"converted":        reflect.ValueOf(v).Convert(typ),
		"zero then set":    func() reflect.Value { z := reflect.New(typ).Elem(); z.Set(reflect.ValueOf(v)); return z }(),
		"interface result": reflect.ValueOf(reflect.ValueOf(v).Interface()),
	}
	it := reflect.ValueOf(m).MapRange()
	for it.Next() {
		paths["map iter value"] = it.Value()
	}
	for name, rv := range paths {
		assert.Equal(t, want, key(enc, rv), name)
	}
	// MakeFunc argument: Decorate keys through MakeFunc's args.
	calls := 0
	f := Decorate(func(x r2Flat) int { calls++; return int(x.A) })
	f(v)
	w := v
	w.T = []string{"a", "", ""}
	f(w)
	f(v)
	assert.Equal(t, 2, calls)
	assert.True(t, Invalidate(f, v))
}
