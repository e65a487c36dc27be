package redistier

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exact is a result type with what users return and codecs get wrong.
type exact struct {
	When    time.Time
	Empty   []int
	Nil     []int
	EmptyM  map[string]int
	Big     int64
	Huge    uint64
	NaN     float64
	Inf     float64
	Nested  map[string]map[string][]string
	ZeroPtr *int
	Bytes   []byte
}

func exactValue() exact {
	zero := 0
	return exact{
		When:   time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
		Empty:  []int{},
		EmptyM: map[string]int{},
		Big:    1<<62 + 1, Huge: math.MaxUint64,
		NaN: math.NaN(), Inf: math.Inf(-1),
		Nested:  map[string]map[string][]string{"a": {"b": {"c"}, "e": {}}},
		ZeroPtr: &zero,
		Bytes:   []byte{0, 1, 2},
	}
}

// sameValue reports whether a and b are the same value as a codec must
// bring it back: reflect.DeepEqual, but reading unexported fields too,
// comparing floats and complex numbers by their bits (so -0 differs from
// +0 and each NaN payload from the others, where DeepEqual finds NaN
// unequal to itself), maps entry by entry (NaN keys included), and a
// time.Time (or a type defined as one) by its instant, its location's
// name, whether it is time.Local, and the zone name and offset in effect,
// not by its monotonic reading or its *Location pointer. That is memo's
// key equality for the same types with pointers followed (WithDeref),
// stricter on NaNs, and written independently of the codecs' own
// comparison (exactEqual), so that it checks them.
func sameValue(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	if a == nil {
		return true
	}
	ra, rb := reflect.New(reflect.TypeOf(a)).Elem(), reflect.New(reflect.TypeOf(b)).Elem()
	ra.Set(reflect.ValueOf(a))
	rb.Set(reflect.ValueOf(b))
	return sameAt(ra, rb)
}

// open returns the addressable v with its read-only flag (from an
// unexported field) dropped, so that map iteration can copy entries out.
func open(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), v.Addr().UnsafePointer()).Elem()
}

func sameAt(a, b reflect.Value) bool {
	t := a.Type()
	if t == timeType || (t.Kind() == reflect.Struct && t.ConvertibleTo(timeType)) {
		ta := *(*time.Time)(a.Addr().UnsafePointer())
		tb := *(*time.Time)(b.Addr().UnsafePointer())
		za, oa := ta.Zone()
		zb, ob := tb.Zone()
		return ta.Equal(tb) && za == zb && oa == ob && ta.Location().String() == tb.Location().String() &&
			(ta.Location() == time.Local) == (tb.Location() == time.Local)
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		n := int(t.Size())
		return bytes.Equal(unsafe.Slice((*byte)(a.Addr().UnsafePointer()), n), unsafe.Slice((*byte)(b.Addr().UnsafePointer()), n))
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return a.Uint() == b.Uint()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameAt(a.Elem(), b.Elem())
	case reflect.Slice:
		if a.IsNil() || b.IsNil() || a.Len() != b.Len() {
			return a.IsNil() == b.IsNil() && a.Len() == b.Len()
		}
		fallthrough
	case reflect.Array:
		for i := range a.Len() {
			if !sameAt(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if !sameAt(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.IsNil() || b.IsNil() || a.Len() != b.Len() {
			return a.IsNil() == b.IsNil() && a.Len() == b.Len()
		}
		entries := func(m reflect.Value) (ks, vs []reflect.Value) {
			for it := open(m).MapRange(); it.Next(); {
				k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
				k.SetIterKey(it)
				v.SetIterValue(it)
				ks, vs = append(ks, k), append(vs, v)
			}
			return ks, vs
		}
		ka, va := entries(a)
		kb, vb := entries(b)
		used := make([]bool, len(kb))
	next:
		for i := range ka {
			for j := range kb {
				if !used[j] && sameAt(ka[i], kb[j]) && sameAt(va[i], vb[j]) {
					used[j] = true
					continue next
				}
			}
			return false
		}
		return true
	}
	panic("sameValue: no comparison for " + t.String())
}

// TestCodecExactness measures each codec on the cases users return and
// logs what each loses: Binary (the default) loses nothing; JSON and gob
// refuse, per value, what they would change; msgpack refuses the type at
// decoration (its time.Time comes back in time.Local).
func TestCodecExactness(t *testing.T) {
	in := exactValue()
	typ := reflect.TypeFor[exact]()
	for _, c := range []struct {
		name  string
		codec Codec
		check string // the refusal at decoration, if any
		enc   string // the refusal of the value, if any
	}{
		{"binary", Binary, "", ""},
		{"json", JSON, "", "NaN"},
		{"gob", Gob, "", "would not come back exactly"},
		{"msgpack", Msgpack, "exact.When is a time.Time", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkType(c.codec, typ)
			if c.check != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.check)
				return
			}
			require.NoError(t, err)
			b, err := c.codec.Encode(nil, []any{in})
			if c.enc != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.enc)
				return
			}
			require.NoError(t, err)
			vals, err := c.codec.Decode(b, []reflect.Type{typ})
			require.NoError(t, err)
			assert.True(t, sameValue(in, vals[0]), "%+v", vals[0])
			t.Logf("%s: %d bytes", c.name, len(b))
		})
	}
}

// The types of the repros: each must round-trip exactly or be
// refused at decoration with a message naming the field.
type (
	named1 struct{ ID int }
	named2 struct{ ID int }
	// collide loses both ID fields under encoding/json (same depth).
	collide struct {
		named1
		named2
		Name string
	}
	// embedsTime is encoded by time.Time's promoted MarshalJSON alone.
	embedsTime struct {
		time.Time
		Count int
		Label string
	}
	// binaryOnly has only MarshalBinary, and unexported fields: JSON
	// stored it as {}.
	binaryOnly struct {
		user string
		n    int
	}
	withRaw struct{ Doc json.RawMessage }
	digest  struct {
		Sum  string
		Keys map[string]int
	}
)

func (b binaryOnly) MarshalBinary() ([]byte, error) { return []byte(b.user), nil }
func (b *binaryOnly) UnmarshalBinary(p []byte) error {
	b.user = string(p)
	return nil
}

// dupTags returns a struct whose two fields have one JSON name, so that
// encoding/json drops both (built by reflect: go vet refuses the literal).
func dupTags() any {
	tag := reflect.StructTag(`json:"x" msgpack:"x"`)
	typ := reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: reflect.TypeFor[int](), Tag: tag},
		{Name: "B", Type: reflect.TypeFor[int](), Tag: tag},
	})
	v := reflect.New(typ).Elem()
	v.Field(0).SetInt(1)
	v.Field(1).SetInt(2)
	return v.Interface()
}

func reproValues() map[string]any {
	return map[string]any{
		"invalid UTF-8": digest{Sum: "\x8f\x00\xff\xfe\x01\x02\x03\xc3", Keys: map[string]int{"id\xff": 1, "id\xfe": 2}},
		"collide":       collide{named1{1}, named2{2}, "n"},
		"dupTags":       dupTags(),
		"embedsTime":    embedsTime{time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600)), 7, "x"},
		"binaryOnly":    binaryOnly{"alice", 7},
		"rawMessage":    withRaw{json.RawMessage(`{ "a" : 1 }`)},
	}
}

// TestReprosRoundTripOrAreRefused runs the repro types through
// every codec: Binary brings each back exactly; the others refuse each at
// decoration naming the field, or refuse the value (invalid UTF-8 under
// JSON), and never return an altered value.
func TestReprosRoundTripOrAreRefused(t *testing.T) {
	refusals := map[string]map[string]string{
		"JSON": {
			"collide":    "collide.named2.ID share the name \"ID\"",
			"dupTags":    "share the name \"x\"",
			"embedsTime": "embedsTime.Time embeds time.Time",
			"binaryOnly": "binaryOnly.user is unexported",
			"rawMessage": "withRaw.Doc is a json.RawMessage",
		},
		"Msgpack": {
			"collide":    "collide.named2.ID share the name \"ID\"",
			"dupTags":    "share the name \"x\"",
			"embedsTime": "embedsTime.Time embeds time.Time",
			"binaryOnly": "", // msgpack calls MarshalBinary: checked per value
		},
		"Gob": {
			"collide":    "collide.named1 is unexported",
			"binaryOnly": "", // gob calls MarshalBinary: checked per value
			"embedsTime": "embedsTime.Time embeds time.Time",
		},
	}
	for _, c := range []struct {
		name  string
		codec Codec
	}{{"Binary", Binary}, {"JSON", JSON}, {"Msgpack", Msgpack}, {"Gob", Gob}} {
		for name, v := range reproValues() {
			t.Run(c.name+"/"+name, func(t *testing.T) {
				typ := reflect.TypeOf(v)
				err := checkType(c.codec, typ)
				if want, ok := refusals[c.name][name]; ok && want != "" {
					require.Error(t, err, "the check must refuse %v", typ)
					assert.Contains(t, err.Error(), want)
					assert.True(t, strings.HasPrefix(err.Error(), "memo: "))
					return
				}
				require.NoError(t, err)
				b, err := c.codec.Encode(nil, []any{v})
				if err != nil {
					require.NotEqual(t, "Binary", c.name, "Binary carries every repro: %v", err)
					assert.Contains(t, err.Error(), "would not come back exactly")
					return
				}
				out, err := c.codec.Decode(b, []reflect.Type{typ})
				require.NoError(t, err)
				require.True(t, sameValue(v, out[0]), "%s changed %#v into %#v", c.name, v, out[0])
			})
		}
	}
}

// reproResult holds every repro of the issue in one result: an 8-byte
// digest and map keys that are not valid UTF-8, colliding embedded
// fields, a struct embedding time.Time in a named zone, a type with only
// MarshalBinary and unexported fields, and a json.RawMessage.
type reproResult struct {
	D   digest
	C   collide
	E   embedsTime
	B   binaryOnly
	Raw withRaw
}

// TestReprosAcrossReplicas: with the default codec, replica B reads from
// Redis exactly what replica A's function returned, for every repro type.
// Under the old default (JSON) B read U+FFFD for the digest's bytes, one
// map key for two, zeros for the colliding and embedded-time fields, and
// the zero value for the MarshalBinary-only type.
func TestReprosAcrossReplicas(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	rv := reproValues()
	want := reproResult{
		D: rv["invalid UTF-8"].(digest), C: rv["collide"].(collide), E: rv["embedsTime"].(embedsTime),
		B: rv["binaryOnly"].(binaryOnly), Raw: rv["rawMessage"].(withRaw),
	}
	execs := 0
	fn := func(k int) reproResult { execs++; return want }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	fa(1)
	got := fb(1)
	assert.Equal(t, 1, execs, "B reads Redis")
	assert.Equal(t, uint64(1), b.Stats().Hits)
	assert.True(t, sameValue(want, got), "B read %#v", got)
}

// TestCheckRefusesTypesItCannotCarry: each codec refuses at decoration the
// types it cannot carry, naming the field, and accepts the others.
func TestCheckRefusesTypesItCannotCarry(t *testing.T) {
	type withAny struct{ Payload any }
	type withFunc struct{ F []func() }
	type skipped struct {
		A int `json:"-"`
	}
	type omitted struct {
		A []int `json:"a,omitempty"`
	}
	type complexes struct{ C complex128 }
	type floatKeys struct{ M map[float64]int }
	for _, c := range []struct {
		codec Codec
		typ   reflect.Type
		field string
	}{
		{Binary, reflect.TypeFor[any](), "interface {}"},
		{Binary, reflect.TypeFor[error](), "error"},
		{Binary, reflect.TypeFor[chan int](), "chan int"},
		{Binary, reflect.TypeFor[withAny](), "withAny.Payload"},
		{Binary, reflect.TypeFor[map[string]withFunc](), "[k].F[i]"},
		{JSON, reflect.TypeFor[skipped](), "skipped.A is tagged json:\"-\""},
		{JSON, reflect.TypeFor[omitted](), "omitted.A is tagged omitempty"},
		{JSON, reflect.TypeFor[complexes](), "complexes.C is a complex number"},
		{JSON, reflect.TypeFor[floatKeys](), "floatKeys.M is a map with float64 keys"},
		{JSON, reflect.TypeFor[*withAny](), "withAny.Payload"},
		{JSON, reflect.TypeFor[struct{ P **int }](), ".P is a pointer to a ptr"},
		{Msgpack, reflect.TypeFor[[]*[]int](), "[i] is a pointer to a slice"},
		{Gob, reflect.TypeFor[binaryOnlyBox](), "binaryOnlyBox.inner is unexported"},
	} {
		err := checkType(c.codec, c.typ)
		if assert.Error(t, err, "%T %v", c.codec, c.typ) {
			assert.Contains(t, err.Error(), c.field)
			assert.Contains(t, err.Error(), c.typ.String())
		}
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[time.Time](), reflect.TypeFor[exact](),
		reflect.TypeFor[map[int][]byte](), reflect.TypeFor[*exact](), reflect.TypeFor[[3]float32](), reflect.TypeFor[*node](),
	} {
		assert.NoError(t, checkType(JSON, typ), "%v", typ)
		assert.NoError(t, checkType(Binary, typ), "%v", typ)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[binaryOnly](), reflect.TypeFor[collide](), reflect.TypeFor[complexes](), reflect.TypeFor[floatKeys]()} {
		assert.NoError(t, checkType(Binary, typ), "%v", typ)
	}
}

type binaryOnlyBox struct {
	//lint:ignore U1000 the unexported field is what the check refuses
	inner int
}

// TestBinaryTimes: a time.Time comes back with its instant, its
// location's name and the zone in effect, and without its monotonic
// reading; a time written in a zone the reader sees otherwise is refused.
func TestBinaryTimes(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	p1, err := time.Parse(time.RFC3339, "2026-03-01T10:00:00+01:00")
	require.NoError(t, err)
	p2, err := time.Parse(time.RFC3339, "2026-03-01T11:00:00+02:00")
	require.NoError(t, err)
	now := time.Now()
	for _, tm := range []time.Time{
		{}, now, now.UTC(), now.In(paris), p1, p2,
		time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("X", -7200)),
		time.Date(-5000, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, paris),
	} {
		b, err := Binary.Encode(nil, []any{tm})
		require.NoError(t, err)
		out, err := Binary.Decode(b, []reflect.Type{timeType})
		require.NoError(t, err)
		got := out[0].(time.Time)
		assert.True(t, sameValue(tm, got), "%v came back as %v", tm, got)
		assert.Equal(t, tm.Round(0).String(), got.String(), "no monotonic reading, the same wall time and zone")
	}
	// A time written in a named zone that this process sees otherwise.
	b, err := Binary.Encode(nil, []any{time.Date(2026, 7, 1, 0, 0, 0, 0, paris)})
	require.NoError(t, err)
	b[len(b)-1] ^= 0x02 // the offset in effect: 7200 → 7201 s
	_, err = Binary.Decode(b, []reflect.Type{timeType})
	assert.ErrorContains(t, err, "Europe/Paris")
}

// TestBinaryDecodeBoundsAllocation: lengths claiming more elements than
// the bytes hold are refused before anything is allocated.
func TestBinaryDecodeBoundsAllocation(t *testing.T) {
	for _, c := range []struct {
		typ reflect.Type
		b   []byte
	}{
		{reflect.TypeFor[[]int64](), []byte{0xff, 0xff, 0xff, 0xff, 0x0f}},
		{reflect.TypeFor[[][]string](), []byte{0x80, 0x80, 0x80, 0x80, 0x08, 1, 1}},
		{reflect.TypeFor[map[int64][100]byte](), []byte{0x80, 0x80, 0x80, 0x08, 0, 0}},
		{reflect.TypeFor[string](), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{reflect.TypeFor[*[1 << 20]int64](), []byte{1, 0}},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Binary.Decode(c.b, []reflect.Type{c.typ})
		runtime.ReadMemStats(&after)
		assert.Error(t, err, "%v", c.typ)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<10), "%v: allocated beyond what %d bytes justify", c.typ, len(c.b))
	}
}

// TestMsgpackCraftedLengthsAllocateNothing guards vmihailenco/msgpack#401:
// 25 bytes whose lengths claim millions of entries made msgpack v5.4.1
// (the latest release: no safe version to pin) preallocate by the claim.
// The codec bounds every length by the bytes left before msgpack reads.
func TestMsgpackCraftedLengthsAllocateNothing(t *testing.T) {
	// A map32 of 2^32-1 entries, whose first value is another map32 of
	// 2^32-1 entries, and so on: 25 bytes in all.
	crafted := []byte{
		0xdf, 0xff, 0xff, 0xff, 0xff, 0x00,
		0xdf, 0xff, 0xff, 0xff, 0xff, 0x00,
		0xdf, 0xff, 0xff, 0xff, 0xff, 0x00,
		0xdf, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
	}
	require.Len(t, crafted, 25)
	typ := reflect.TypeFor[map[int64]map[int64]map[int64]map[int64][100]byte]()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Msgpack.Decode(crafted, []reflect.Type{typ})
	runtime.ReadMemStats(&after)
	assert.Error(t, err)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "25 bytes allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
}

// TestOneUndecodableValueCountsOnce: a value that does not decode is one
// DecodeError and one log line, not one per read of it (the GET, then the
// lease script that returned it again).
func TestOneUndecodableValueCountsOnce(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	fn := func(k int) int { return k }
	f := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	f(1)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	c := srv.Client()
	defer c.Close()
	require.NoError(t, c.Set(context.Background(), keys[0], "garbage, not a memo value", time.Minute).Err())
	var logs safeBuffer
	r := newTier(t, srv, WithLogger(logs.logger()))
	g := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(r))
	assert.Equal(t, 1, g(1))
	assert.Equal(t, uint64(1), r.Stats().DecodeErrors)
	assert.Equal(t, 1, strings.Count(logs.String(), "undecodable value treated as a miss"), logs.String())
}

// FuzzOpenAndDecode feeds arbitrary bytes to the envelope and to each
// codec: never a panic from Binary (the binding's recover is for the
// other libraries); anything accepted decodes to the declared types.
func FuzzOpenAndDecode(f *testing.F) {
	schema := [32]byte{1, 2, 3}
	v := exactValue()
	types := []reflect.Type{reflect.TypeFor[exact]()}
	for _, c := range []Codec{Binary, JSON} {
		w := v
		if c == JSON {
			w.NaN, w.Inf = 0, 0
		}
		good, err := c.Encode(appendHeader(nil, c.ID(), schema, "k", time.Unix(0, 0)), []any{w})
		require.NoError(f, err)
		f.Add(good)
		f.Add(good[:len(good)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("mT\x02\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		for _, c := range []Codec{Binary, JSON, Msgpack, Gob} {
			b[3] = c.ID()
			payload, err := openEnvelope(b, c.ID(), schema, "k")
			if err != nil {
				return
			}
			func() {
				if c != Binary {
					defer func() { _ = recover() }()
				}
				vals, err := c.Decode(payload, types)
				if err == nil {
					_ = vals[0].(exact)
				}
			}()
		}
	})
}

// fill sets v (addressable, unexported fields included) to a value drawn
// from g: every kind the codecs carry, with the edges that break codecs
// (nil and empty, NaN payloads and -0, invalid UTF-8, zones, monotonic
// readings, deep and recursive values).
func (g *gen) fill(v reflect.Value, depth int) {
	v = open(v)
	t := v.Type()
	if t == timeType || (t.Kind() == reflect.Struct && t.ConvertibleTo(timeType)) {
		reflect.NewAt(timeType, v.Addr().UnsafePointer()).Elem().Set(reflect.ValueOf(g.time()))
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(g.byte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(g.u64()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(g.u64())
	case reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		b := unsafe.Slice((*byte)(v.Addr().UnsafePointer()), t.Size())
		for i := range b {
			b[i] = g.byte()
		}
	case reflect.String:
		v.SetString(string(g.bytes()))
	case reflect.Pointer:
		if depth > 6 || g.byte()%4 == 0 {
			return
		}
		p := reflect.New(t.Elem())
		g.fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		n := g.length(depth)
		if n < 0 {
			return
		}
		v.Set(reflect.MakeSlice(t, n, n))
		for i := range n {
			g.fill(v.Index(i), depth+1)
		}
	case reflect.Array:
		for i := range v.Len() {
			g.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		n := g.length(depth)
		if n < 0 {
			return
		}
		v.Set(reflect.MakeMap(t))
		for range n {
			k, e := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			g.fill(k, depth+1)
			g.fill(e, depth+1)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			g.fill(v.Field(i), depth+1)
		}
	}
}

// gen draws values from the fuzzer's bytes (zeros once they run out).
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) u64() uint64 {
	switch c := g.byte(); c % 8 {
	case 0:
		return uint64(c >> 3)
	case 1:
		return math.MaxUint64 - uint64(c>>3) // small negatives, huge unsigned
	case 2:
		return 1<<63 + uint64(c>>3)
	}
	var x uint64
	for range 8 {
		x = x<<8 | uint64(g.byte())
	}
	return x
}

func (g *gen) bytes() []byte {
	n := int(g.byte() % 24)
	b := make([]byte, n)
	for i := range b {
		if c := g.byte(); c < 0x60 {
			b[i] = 'a' + c%26 // mostly text, so that JSON and gob values pass often
		} else {
			b[i] = c
		}
	}
	return b
}

// length returns -1 for nil, or a small length.
func (g *gen) length(depth int) int {
	c := g.byte()
	if depth > 6 || c%5 == 0 {
		return -1
	}
	return int(c % 5)
}

var fuzzZones = func() []*time.Location {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 3600), time.FixedZone("", -5*3600-1800), time.FixedZone("CET", 3600)}
	for _, name := range []string{"Europe/Paris", "America/New_York", "Asia/Kolkata"} {
		if l, err := time.LoadLocation(name); err == nil {
			zones = append(zones, l)
		}
	}
	return zones
}()

func (g *gen) time() time.Time {
	c := g.byte()
	if c == 0 {
		return time.Time{}
	}
	if c == 1 {
		return time.Now() // a monotonic reading
	}
	sec := int64(g.u64() % (400 * 365 * 86400))
	if c&2 != 0 {
		sec = int64(g.u64()%(20000*365*86400)) - 10000*365*86400 // years -8000 to 12000
	}
	tm := time.Unix(sec+946684800, int64(g.u64()%1e9))
	return tm.In(fuzzZones[int(g.byte())%len(fuzzZones)])
}

// The fuzzed result types: what the Binary codec accepts (everything but
// interfaces, funcs and channels), and a narrower set for the other
// codecs (exported fields, no promoted marshallers).
type (
	fzName string
	fzTime time.Time
	//lint:ignore U1000 the unexported fields are carried by the Binary codec
	fzInner struct {
		A int8
		b uint16
		C string
		d []byte
	}
	fzNode struct {
		V    int
		Kids []*fzNode
		Next *fzNode
	}
	//lint:ignore U1000 the unexported fields are carried by the Binary codec
	fzAll struct {
		B        bool
		I        int
		I8       int8
		I16      int16
		I32      int32
		I64      int64
		U        uint
		U8       uint8
		U16      uint16
		U32      uint32
		U64      uint64
		Uptr     uintptr
		F32      float32
		F64      float64
		C64      complex64
		C128     complex128
		S        string
		N        fzName
		Bs       []byte
		Arr      [3]uint8
		Arr2     [2]string
		Ss       []string
		Sss      [][]int16
		M        map[string]int
		MF       map[float64]string
		MK       map[[2]int8]*int
		MM       map[fzName]map[int]bool
		P        *int
		PP       **string
		T        time.Time
		TP       *time.Time
		FT       fzTime
		Inner    fzInner
		Inners   []fzInner
		Node     *fzNode
		BO       binaryOnly
		ET       embedsTime
		C        collide
		Raw      json.RawMessage
		Empty    struct{}
		Zs       []struct{}
		Ignored  int `memo:"-"`
		unexp    []map[string]*float64
		_        int32
		embedded //nolint
	}
	embedded   struct{ E1, E2 int }
	FzEmbedded struct{ E1, E2 int }
	fzPortable struct {
		B    bool
		I    int
		I8   int8
		U64  uint64
		F32  float32
		F64  float64
		S    string
		N    fzName
		Bs   []byte
		Arr  [3]uint8
		Ss   []string
		Sss  [][]int16
		M    map[string]int
		MI   map[int64]string
		MM   map[fzName]map[int]bool
		P    *int
		PS   *string
		T    time.Time
		TP   *time.Time
		Node *fzNode
		Deep []map[string]*fzPortableInner
		FzEmbedded
	}
	fzPortableInner struct {
		X []uint16
		Y *string
	}
)

// fuzzRoundTrip is the body of each codec's fuzz test: a value of each of
// types drawn from b either comes back exactly (sameValue) or is refused
// by Encode; refusable says which refusals are allowed (nil: none).
func fuzzRoundTrip(t *testing.T, c Codec, types []reflect.Type, b []byte, refusable func(any) bool) {
	g := &gen{b: b}
	for _, typ := range types {
		v := reflect.New(typ).Elem()
		g.fill(v, 0)
		in := v.Interface()
		enc, err := c.Encode(nil, []any{in})
		if err != nil {
			if refusable == nil || !refusable(in) {
				t.Fatalf("%v: %v refused: %v", typ, in, err)
			}
			continue
		}
		out, err := c.Decode(enc, []reflect.Type{typ})
		if err != nil {
			t.Fatalf("%v: %v does not decode: %v", typ, in, err)
		}
		if !sameValue(in, out[0]) {
			t.Fatalf("%v: %#v came back as %#v", typ, in, out[0])
		}
	}
}

var (
	binaryFuzzTypes = []reflect.Type{reflect.TypeFor[fzAll](), reflect.TypeFor[*fzNode](), reflect.TypeFor[map[float32][]fzInner](), reflect.TypeFor[[]*time.Time]()}
	// gob cannot encode a nil pointer at the top, nor keep a nil map
	// there: it refuses such result types at decoration (the zero value's
	// round trip).
	gobFuzzTypes      = []reflect.Type{reflect.TypeFor[fzPortable](), reflect.TypeFor[fzNode](), reflect.TypeFor[[]fzPortableInner]()}
	portableFuzzTypes = []reflect.Type{reflect.TypeFor[fzPortable](), reflect.TypeFor[*fzNode](), reflect.TypeFor[[]fzPortableInner](), reflect.TypeFor[map[string][]string]()}
)

func fuzzSeeds(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{1}, 64))
	f.Add(bytes.Repeat([]byte{0xff, 3, 7, 0x80}, 64))
	for _, typ := range append(binaryFuzzTypes, portableFuzzTypes...) {
		require.NoError(f, checkType(Binary, typ))
	}
}

// FuzzBinaryRoundTrip: every value of the fuzzed types comes back exactly
// through the Binary codec; it refuses none.
func FuzzBinaryRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, Binary, binaryFuzzTypes, b, nil)
		fuzzRoundTrip(t, Binary, portableFuzzTypes, b, nil)
	})
}

// jsonRefusable reports whether v holds what JSON cannot carry exactly:
// a string that is not valid UTF-8, NaN or ±Inf, or a time.Time outside
// UTC (its zone's name, or time.Local, is lost) or past year 9999.
func jsonRefusable(v any) bool {
	found := false
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if found {
			return
		}
		switch v.Kind() {
		case reflect.String:
			found = !utf8.ValidString(v.String())
		case reflect.Float32, reflect.Float64:
			found = math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0)
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			for it := v.MapRange(); it.Next(); {
				walk(it.Key())
				walk(it.Value())
			}
		case reflect.Struct:
			if v.Type() == timeType {
				tm := v.Interface().(time.Time)
				found = tm.Location() != time.UTC || tm.Year() < 0 || tm.Year() > 9999
				return
			}
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		}
	}
	walk(reflect.ValueOf(v))
	return found
}

// FuzzJSONRoundTrip: a value comes back exactly through JSON, or holds
// what JSON cannot carry and is refused.
func FuzzJSONRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	for _, typ := range portableFuzzTypes {
		require.NoError(f, checkType(JSON, typ))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, JSON, portableFuzzTypes, b, jsonRefusable)
	})
}

var refused = func(any) bool { return true }

// FuzzGobRoundTrip: a value comes back exactly through gob or is refused
// (gob turns empty slices into nil and loses zone names: such values are
// refused, never changed).
func FuzzGobRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	for _, typ := range gobFuzzTypes {
		require.NoError(f, checkType(Gob, typ))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, Gob, gobFuzzTypes, b, refused)
	})
}

// msgpackFuzzTypes are portableFuzzTypes without time.Time, which
// Msgpack refuses at decoration.
type fzMsgpack struct {
	B   bool
	I   int
	I8  int8
	U64 uint64
	F32 float32
	F64 float64
	S   string
	N   fzName
	Bs  []byte
	Arr [3]uint8
	Ss  []string
	Sss [][]int16
	M   map[string]int
	MI  map[int64]string
	MF  map[float64]int
	MM  map[fzName]map[int]bool
	P   *int
	PS  *string
	Nd  *fzNode
	D   []map[string]*fzPortableInner
	FzEmbedded
}

// FuzzMsgpackRoundTrip: a value comes back exactly through msgpack or is
// refused.
func FuzzMsgpackRoundTrip(f *testing.F) {
	fuzzSeeds(f)
	types := []reflect.Type{reflect.TypeFor[fzMsgpack](), reflect.TypeFor[*fzNode](), reflect.TypeFor[[]fzPortableInner]()}
	for _, typ := range types {
		require.NoError(f, checkType(Msgpack, typ), "%v", typ)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRoundTrip(t, Msgpack, types, b, refused)
	})
}

// TestFuzzedTypesMostlyPass keeps the fuzz tests honest: over many drawn
// values, each codec stores most of them (a codec refusing everything
// would pass its fuzz test).
func TestFuzzedTypesMostlyPass(t *testing.T) {
	for _, c := range []struct {
		codec Codec
		typ   reflect.Type
	}{{JSON, reflect.TypeFor[[]fzPortableInner]()}, {Gob, reflect.TypeFor[fzNode]()}, {Msgpack, reflect.TypeFor[fzMsgpack]()}, {Binary, reflect.TypeFor[fzAll]()}} {
		stored := 0
		for i := range 200 {
			b := make([]byte, 256)
			for j := range b {
				b[j] = byte(i*131 + j*j*7 + j)
			}
			v := reflect.New(c.typ).Elem()
			(&gen{b: b}).fill(v, 0)
			if _, err := c.codec.Encode(nil, []any{v.Interface()}); err == nil {
				stored++
			}
		}
		t.Logf("%T %v: %d of 200 stored", c.codec, c.typ, stored)
		assert.Greater(t, stored, 20, "%T", c.codec)
	}
}

// BenchmarkCodec encodes and decodes one result of the exact type (its
// NaN and Inf zeroed, so that JSON stores it) through Binary and JSON
// (gob and msgpack refuse it); JSON pays for its per-value round-trip
// check on encode.
func BenchmarkCodec(b *testing.B) {
	v := exactValue()
	v.NaN, v.Inf = 0, 0
	types := []reflect.Type{reflect.TypeFor[exact]()}
	for _, c := range []struct {
		name  string
		codec Codec
	}{{"binary", Binary}, {"json", JSON}} {
		enc, err := c.codec.Encode(nil, []any{v})
		require.NoError(b, err)
		b.Run(c.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				if _, err := c.codec.Encode(buf[:0], []any{v}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(enc)), "bytes")
		})
		b.Run(c.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.codec.Decode(enc, types); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
