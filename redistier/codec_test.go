package redistier

import (
	"math"
	"reflect"
	"testing"
	"time"

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

// TestCodecExactness measures each codec on the cases of the default's
// choice, and logs the table; it requires the default (Msgpack) to bring
// back exactly every case it encodes.
func TestCodecExactness(t *testing.T) {
	in := exactValue()
	typ := reflect.TypeFor[exact]()
	checks := []struct {
		name string
		ok   func(out exact) bool
	}{
		{"time instant", func(o exact) bool { return o.When.Equal(in.When) }},
		{"time location", func(o exact) bool { return o.When.Location() == in.When.Location() }},
		{"[]T{} stays empty", func(o exact) bool { return o.Empty != nil && len(o.Empty) == 0 }},
		{"nil slice stays nil", func(o exact) bool { return o.Nil == nil }},
		{"empty map stays empty", func(o exact) bool { return o.EmptyM != nil }},
		{"int64 > 2^53", func(o exact) bool { return o.Big == in.Big && o.Huge == in.Huge }},
		{"NaN, -Inf", func(o exact) bool { return math.IsNaN(o.NaN) && math.IsInf(o.Inf, -1) }},
		{"nested maps", func(o exact) bool { return reflect.DeepEqual(o.Nested, in.Nested) }},
		{"pointer to zero", func(o exact) bool { return o.ZeroPtr != nil && *o.ZeroPtr == 0 }},
		{"bytes", func(o exact) bool { return reflect.DeepEqual(o.Bytes, in.Bytes) }},
	}
	for _, c := range []struct {
		name  string
		codec Codec
	}{{"msgpack", Msgpack}, {"gob", Gob}, {"json", JSON}} {
		v := in
		b, err := c.codec.Encode(nil, []any{v})
		if err != nil {
			t.Logf("%-8s encode error: %v; measured again without NaN and Inf", c.name, err)
			v.NaN, v.Inf = 0, 0
			b, err = c.codec.Encode(nil, []any{v})
			require.NoError(t, err)
		}
		vals, err := c.codec.Decode(b, []reflect.Type{typ})
		require.NoError(t, err, c.name)
		out := vals[0].(exact)
		var lost []string
		for _, ch := range checks {
			if !ch.ok(out) {
				lost = append(lost, ch.name)
			}
		}
		t.Logf("%-8s %4d bytes, lost: %v", c.name, len(b), lost)
		switch c.codec {
		case JSON: // NaN and Inf were refused at encode time, loudly
			assert.Equal(t, []string{"NaN, -Inf"}, lost, "json keeps everything it encodes")
		case Msgpack:
			assert.Equal(t, []string{"time location"}, lost)
		}
	}
}

func TestCheckRefusesLossyTypes(t *testing.T) {
	//lint:ignore U1000 the unexported field is what the check refuses
	type unexported struct{ a int }
	type skipped struct {
		A int `json:"-"`
	}
	type omitted struct {
		A []int `json:"a,omitempty"`
	}
	type rec struct{ Next *rec }
	for _, typ := range []reflect.Type{
		reflect.TypeFor[any](), reflect.TypeFor[error](), reflect.TypeFor[chan int](), reflect.TypeFor[func()](),
		reflect.TypeFor[complex128](), reflect.TypeFor[unexported](), reflect.TypeFor[skipped](), reflect.TypeFor[*rec](), reflect.TypeFor[omitted](),
		reflect.TypeFor[map[string]any](), reflect.TypeFor[[]struct{ F func() }](),
	} {
		err := checkType(JSON, typ)
		assert.Error(t, err, "%v", typ)
		if err != nil {
			assert.Contains(t, err.Error(), typ.String())
		}
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[time.Time](), reflect.TypeFor[exact](),
		reflect.TypeFor[map[int][]byte](), reflect.TypeFor[*exact](), reflect.TypeFor[[3]float32](),
	} {
		assert.NoError(t, checkType(JSON, typ), "%v", typ)
	}
}

// FuzzOpenAndDecode feeds arbitrary bytes to the envelope and the codec:
// never a panic; anything accepted decodes to the declared types.
func FuzzOpenAndDecode(f *testing.F) {
	schema := [32]byte{1, 2, 3}
	v := exactValue()
	v.NaN, v.Inf = 0, 0
	good, err := JSON.Encode(appendHeader(nil, JSON.ID(), schema, time.Unix(0, 0)), []any{v})
	require.NoError(f, err)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte("mT\x01\x01"))
	types := []reflect.Type{reflect.TypeFor[exact]()}
	f.Fuzz(func(t *testing.T, b []byte) {
		payload, err := openEnvelope(b, JSON.ID(), schema)
		if err != nil {
			return
		}
		func() {
			defer func() { _ = recover() }() // decode's own recover in the binding catches these
			vals, err := JSON.Decode(payload, types)
			if err == nil {
				_ = vals[0].(exact)
			}
		}()
	})
}
