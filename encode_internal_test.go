package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Types for the key table. Their names start with k so that they do not
// clash with the other test files of the package.
type (
	kInt   int
	kPoint struct{ X, Y int }
	kPair  struct{ X, Y int } // kPoint's twin: same fields, another type
	kPriv  struct {
		a int
		b string
	}
	kTagged struct {
		N int
		A string `memo:"-"`
		B string `hash:"ignore"`
		C string `hash:"-"`
	}
	kStamp struct {
		at time.Time
		n  int
	}
	kNode struct {
		V    int
		Next *kNode
	}
	kSelfSlice []kSelfSlice
)

// kFold is a CacheKeyer that ignores case, as a __hash__/__eq__ pair might.
type kFold string

func (f kFold) CacheKey() any { return strings.ToLower(string(f)) }

// kSelfKey's CacheKey returns its own type, normalized: keying it must not
// call CacheKey forever.
type kSelfKey struct{ ID, Noise int }

func (k kSelfKey) CacheKey() any { return kSelfKey{ID: k.ID} }

// kSame's CacheKey returns the receiver itself.
type kSame struct{ N int }

func (k kSame) CacheKey() any { return k }

// kEmbedsKeyer has kSelfKey's CacheKey, promoted through a pointer that
// may be nil: calling it then panics.
type kEmbedsKeyer struct{ *kSelfKey }

type kStringer struct{ s string }

func (k kStringer) String() string { return k.s }

func kNamedFunc() int { return 1 }

// compiled is the per-signature encoder Decorate builds, driven through a
// real reflect.MakeFunc func so that the encoder sees arguments exactly as a
// decorated function's body does (not addressable, variadic as a slice).
type compiled struct {
	w    *wrapped
	fn   reflect.Value
	last string
}

func newCompiled(t testing.TB, opts []Option, in ...reflect.Type) *compiled {
	t.Helper()
	cfg, err := newConfig(opts, true)
	require.NoError(t, err)
	c := &compiled{}
	c.fn = reflect.MakeFunc(reflect.FuncOf(in, nil, false), func(args []reflect.Value) []reflect.Value {
		s := keys.GetState()
		c.w.encode(s, args)
		c.last = string(s.Buf)
		keys.PutState(s)
		return nil
	})
	c.w = newWrapped(c.fn, cfg)
	return c
}

// key returns the key of a call with args, converted to the parameters'
// types (a nil arg is the parameter's zero value).
func (c *compiled) key(args ...any) string {
	ft := c.fn.Type()
	in := make([]reflect.Value, len(args))
	for i, a := range args {
		in[i] = reflect.New(ft.In(i)).Elem()
		if a != nil {
			in[i].Set(reflect.ValueOf(a))
		}
	}
	c.fn.Call(in)
	return c.last
}

var anyType = reflect.TypeFor[any]()

type keyCase struct {
	name  string
	a, b  any
	equal bool
	// static, when set, is a parameter type to key a and b as, besides
	// any and their own type.
	static reflect.Type
}

// keyTable has cases for every row of the SPEC's key table.
func keyTable() []keyCase {
	nan1 := math.Float64frombits(0x7ff8000000000001)
	nan2 := math.Float64frombits(0xfff8000000000000)
	nanSignal := math.Float64frombits(0x7ff0000000000001)
	nan32a := math.Float32frombits(0x7fc00001)
	nan32b := math.Float32frombits(0xffc00000)
	negZero := math.Copysign(0, -1)

	now := time.Now()
	instant := time.Date(2024, 2, 29, 12, 30, 0, 5, time.UTC)
	zone := time.FixedZone("X", 3600)

	x, y := 7, 7
	px, py := &x, &y
	var nilIntPtr *int
	ch1, ch2 := make(chan int), make(chan int)
	var nilChan chan int
	u1, u2 := unsafe.Pointer(px), unsafe.Pointer(py)

	n := 0
	closure1 := func() int { n++; return n }
	closure2 := func() int { n++; return n }
	var nilFunc func() int

	err1 := errors.New("boom")
	err2 := errors.New("boom")

	mapAB := map[string]int{}
	mapBA := map[string]int{}
	for i := range 32 {
		mapAB[fmt.Sprint("k", i)] = i
	}
	for i := 31; i >= 0; i-- {
		mapBA[fmt.Sprint("k", i)] = i
	}

	errType := reflect.TypeFor[error]()
	stringerType := reflect.TypeFor[fmt.Stringer]()

	return []keyCase{
		// bool, ints, uints, complex
		{"bool same", true, true, true, nil},
		{"bool differ", true, false, false, nil},
		{"bool vs int8", true, int8(1), false, nil},
		{"int same", 1, 1, true, nil},
		{"int differ", 1, 2, false, nil},
		{"int negative", -1, 1, false, nil},
		{"int vs int64", 1, int64(1), false, nil},
		{"int vs named int", 1, kInt(1), false, nil},
		{"int64 vs named int", int64(1), kInt(1), false, nil},
		{"named int same", kInt(1), kInt(1), true, nil},
		{"int8 vs uint8", int8(-1), uint8(255), false, nil},
		{"int32 vs rune-like int32", int32('a'), int32('a'), true, nil},
		{"uint same", uint64(math.MaxUint64), uint64(math.MaxUint64), true, nil},
		{"uint vs uintptr", uint(1), uintptr(1), false, nil},
		{"uint16 differ", uint16(1), uint16(256), false, nil},
		{"complex same", 1 + 2i, 1 + 2i, true, nil},
		{"complex differ", 1 + 2i, 2 + 1i, false, nil},
		{"complex64 vs complex128", complex64(1 + 2i), 1 + 2i, false, nil},
		{"complex NaN", complex(nan1, 1), complex(nan2, 1), true, nil},
		{"complex -0", complex(negZero, 0), complex(0, 0), false, nil},

		// floats
		{"float same", 1.5, 1.5, true, nil},
		{"float differ", 1.5, 1.25, false, nil},
		{"float 1e-7 vs 2e-7", 1e-7, 2e-7, false, nil},
		{"float 0.1+0.2 vs 0.3", 0.1 + fTwo(), 0.3, false, nil},
		{"float NaN", math.NaN(), math.NaN(), true, nil},
		{"float NaN payloads", nan1, nan2, true, nil},
		{"float NaN signalling", nanSignal, math.NaN(), true, nil},
		{"float32 NaN payloads", nan32a, nan32b, true, nil},
		{"float32 NaN vs float64 NaN", nan32a, nan1, false, nil},
		{"float -0 vs +0", negZero, 0.0, false, nil},
		{"float32 -0 vs +0", float32(negZero), float32(0), false, nil},
		{"float -0 same", negZero, math.Copysign(0, -1), true, nil},
		{"float Inf", math.Inf(1), math.Inf(-1), false, nil},
		{"float32 vs float64", float32(1), 1.0, false, nil},

		// string, []byte
		{"string same", "ab", "a" + fB(), true, nil},
		{"string differ", "ab", "ba", false, nil},
		{"string empty", "", "", true, nil},
		{"string prefix", "a", "a\x00", false, nil},
		{"string vs []byte", "ab", []byte("ab"), false, nil},
		{"[]byte same", []byte("ab"), []byte("ab"), true, nil},
		{"[]byte differ", []byte("ab"), []byte("abc"), false, nil},
		{"[]byte nil vs empty", []byte(nil), []byte{}, false, nil},
		{"string vs named string", "ab", kFold("zz"), false, nil},
		{"string tuple split", [2]string{"ab", "c"}, [2]string{"a", "bc"}, false, nil},
		{"[]byte tuple split", [2][]byte{[]byte("ab"), []byte("c")}, [2][]byte{[]byte("a"), []byte("bc")}, false, nil},

		// arrays
		{"array same", [3]int{1, 2, 3}, [3]int{1, 2, 3}, true, nil},
		{"array differ", [3]int{1, 2, 3}, [3]int{1, 3, 2}, false, nil},
		{"array length", [3]int{1, 2, 0}, [2]int{1, 2}, false, nil},
		{"array elem type", [2]int{1, 2}, [2]int64{1, 2}, false, nil},
		{"array of any", [2]any{1, "a"}, [2]any{1, "a"}, true, nil},
		{"array of any types", [2]any{1, "a"}, [2]any{int64(1), "a"}, false, nil},
		{"array empty", [0]int{}, [0]int{}, true, nil},
		{"array [0]int vs [0]string", [0]int{}, [0]string{}, false, nil},

		// slices
		{"slice same", []int{1, 2}, []int{1, 2}, true, nil},
		{"slice differ", []int{1, 2}, []int{2, 1}, false, nil},
		{"slice length", []int{1, 2}, []int{1, 2, 0}, false, nil},
		{"slice nil vs empty", []int(nil), []int{}, false, nil},
		{"slice nil same", []int(nil), []int(nil), true, nil},
		{"slice vs array", []int{1, 2}, [2]int{1, 2}, false, nil},
		{"slice elem type", []int{}, []string{}, false, nil},
		{"slice nested split", [][]int{{1}, {2, 3}}, [][]int{{1, 2}, {3}}, false, nil},
		{"slice strings split", []string{"ab", "c"}, []string{"a", "bc"}, false, nil},
		{"slice of any", []any{1, "x", nil}, []any{1, "x", nil}, true, nil},
		{"slice of any nil vs typed nil", []any{nil}, []any{[]int(nil)}, false, nil},
		{"slice shared backing", []int{1, 2, 3}[:2], []int{1, 2}, true, nil},

		// maps
		{"map order", mapAB, mapBA, true, nil},
		{"map nil vs empty", map[string]int(nil), map[string]int{}, false, nil},
		{"map nil same", map[string]int(nil), map[string]int(nil), true, nil},
		{"map values differ", map[string]int{"a": 1}, map[string]int{"a": 2}, false, nil},
		{"map keys differ", map[string]int{"a": 1}, map[string]int{"b": 1}, false, nil},
		{"map pairs swapped", map[string]string{"a": "b", "b": "a"}, map[string]string{"a": "a", "b": "b"}, false, nil},
		{"map size", map[string]int{"a": 1}, map[string]int{"a": 1, "b": 2}, false, nil},
		{"map elem type", map[string]int{}, map[string]int64{}, false, nil},
		{"map any keys types", map[any]int{1: 1}, map[any]int{int64(1): 1}, false, nil},
		{"map NaN key", map[float64]int{math.NaN(): 1}, map[float64]int{nan1: 1}, true, nil},
		{"map NaN keys order", nanMap(1, 2), nanMap(2, 1), true, nil},
		{"map NaN keys values", nanMap(1, 2), nanMap(1, 3), false, nil},
		{"map NaN keys count", nanMap(1), nanMap(1, 1), false, nil},
		{"map -0 key", map[float64]int{negZero: 1}, map[float64]int{0: 1}, false, nil},
		{"map nested", map[string][]int{"a": {1}}, map[string][]int{"a": {1}}, true, nil},

		// structs
		{"struct same", kPoint{1, 2}, kPoint{1, 2}, true, nil},
		{"struct differ", kPoint{1, 2}, kPoint{2, 1}, false, nil},
		{"struct twin type", kPoint{1, 2}, kPair{1, 2}, false, nil},
		{"struct unexported same", kPriv{1, "x"}, kPriv{1, "x"}, true, nil},
		{"struct unexported differ", kPriv{1, "x"}, kPriv{1, "y"}, false, nil},
		{"struct tags ignored", kTagged{1, "a", "b", "c"}, kTagged{1, "x", "y", "z"}, true, nil},
		{"struct tags kept field", kTagged{1, "a", "b", "c"}, kTagged{2, "a", "b", "c"}, false, nil},
		{"struct anonymous", struct{ A []int }{[]int{1}}, struct{ A []int }{[]int{1}}, true, nil},
		{"struct anonymous nil", struct{ A []int }{nil}, struct{ A []int }{[]int{}}, false, nil},

		// interfaces
		{"interface nil", nil, nil, true, nil},
		{"interface nil vs zero", nil, 0, false, nil},
		{"interface nil vs typed nil ptr", nil, nilIntPtr, false, nil},
		{"interface same error", err1, err1, true, errType},
		{"interface distinct errors", err1, err2, false, errType},
		{"interface nil error", error(nil), error(nil), true, errType},
		{"interface nil vs error", error(nil), err1, false, errType},
		{"interface stringer same", kStringer{"a"}, kStringer{"a"}, true, stringerType},
		{"interface stringer differ", kStringer{"a"}, kStringer{"b"}, false, stringerType},

		// pointers, channels, unsafe.Pointer: identity
		{"pointer same", px, px, true, nil},
		{"pointer equal pointees", px, py, false, nil},
		{"pointer nil", nilIntPtr, nilIntPtr, true, nil},
		{"pointer nil vs non-nil", nilIntPtr, px, false, nil},
		{"chan same", ch1, ch1, true, nil},
		{"chan differ", ch1, ch2, false, nil},
		{"chan nil", nilChan, nilChan, true, nil},
		{"chan direction type", ch1, (<-chan int)(ch1), false, nil},
		{"unsafe.Pointer same", u1, u1, true, nil},
		{"unsafe.Pointer differ", u1, u2, false, nil},
		{"unsafe.Pointer nil", unsafe.Pointer(nil), unsafe.Pointer(nil), true, nil},

		// funcs: identity
		{"func same closure", closure1, closure1, true, nil},
		{"func two closures", closure1, closure2, false, nil},
		{"func named", kNamedFunc, kNamedFunc, true, nil},
		{"func named vs closure", kNamedFunc, func() int { return 1 }, false, nil},
		{"func nil", nilFunc, nilFunc, true, nil},
		{"func nil vs non-nil", nilFunc, closure1, false, nil},

		// time.Time
		{"time same", instant, time.Date(2024, 2, 29, 12, 30, 0, 5, time.UTC), true, nil},
		{"time monotonic stripped", now, now.Round(0), true, nil},
		{"time differ", instant, instant.Add(time.Nanosecond), false, nil},
		{"time location", instant, instant.In(zone), false, nil},
		{"time same location", instant.In(zone), instant.In(zone), true, nil},
		{"time local vs UTC", now, now.UTC(), false, nil},
		{"time unexported field", kStamp{now, 1}, kStamp{now.Round(0), 1}, true, nil},
		{"time unexported field differ", kStamp{instant, 1}, kStamp{instant.Add(1), 1}, false, nil},
		{"time unexported field location", kStamp{instant, 1}, kStamp{instant.In(zone), 1}, false, nil},

		// CacheKeyer
		{"keyer equal keys", kFold("Ab"), kFold("aB"), true, nil},
		{"keyer differ", kFold("Ab"), kFold("b"), false, nil},
		{"keyer own type", kSelfKey{1, 5}, kSelfKey{1, 7}, true, nil},
		{"keyer own type differ", kSelfKey{1, 5}, kSelfKey{2, 5}, false, nil},
		{"keyer returns receiver", kSame{1}, kSame{1}, true, nil},
		{"keyer returns receiver differ", kSame{1}, kSame{2}, false, nil},
		{"keyer vs its key", kFold("a"), "a", false, nil},
		{"keyer in slice", []kFold{"A"}, []kFold{"a"}, true, nil},
		{"keyer pointer", &[]kSelfKey{{1, 2}}[0], &[]kSelfKey{{1, 3}}[0], true, nil},
		{"keyer promoted through nil pointer", kEmbedsKeyer{}, kEmbedsKeyer{}, true, nil},
		{"keyer promoted", kEmbedsKeyer{&kSelfKey{1, 2}}, kEmbedsKeyer{&kSelfKey{1, 3}}, true, nil},
		{"keyer promoted nil vs not", kEmbedsKeyer{}, kEmbedsKeyer{&kSelfKey{1, 3}}, false, nil},
	}
}

// fTwo and fB keep the compiler from folding constants, so that equal
// values are computed, not shared.
func fTwo() float64 { return 0.2 }
func fB() string    { return strings.Repeat("b", 1) }

// nanMap returns a map with one NaN key per value.
func nanMap(vals ...int) map[float64]int {
	m := map[float64]int{}
	for _, v := range vals {
		m[math.NaN()] = v
	}
	return m
}

// TestKeyTable checks every row of the SPEC's key table through
// MakeHashable, through a compiled encoder with an any parameter, and,
// where a and b have one type, through one with that parameter type.
func TestKeyTable(t *testing.T) {
	t.Parallel()
	for _, tc := range keyTable() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.equal, MakeHashable(tc.a) == MakeHashable(tc.b), "MakeHashable")
			assert.True(t, MakeHashable(tc.a) == MakeHashable(tc.a), "MakeHashable(a) == MakeHashable(a)")

			c := newCompiled(t, nil, anyType)
			assert.Equal(t, tc.equal, c.key(tc.a) == c.key(tc.b), "func(any)")

			types := []reflect.Type{tc.static}
			if ta, tb := reflect.TypeOf(tc.a), reflect.TypeOf(tc.b); ta != nil && ta == tb {
				types = append(types, ta)
			}
			for _, typ := range types {
				if typ == nil {
					continue
				}
				c := newCompiled(t, nil, typ)
				assert.Equal(t, tc.equal, c.key(tc.a) == c.key(tc.b), "func(%v)", typ)
				assert.Equal(t, c.key(tc.a), c.key(tc.a), "func(%v) a twice", typ)
			}
		})
	}
}

// TestKeyTableTwoParams checks that arguments do not run into each other:
// ("ab", "c") and ("a", "bc") are different calls.
func TestKeyTableTwoParams(t *testing.T) {
	t.Parallel()
	str := reflect.TypeFor[string]()
	bs := reflect.TypeFor[[]byte]()
	cases := []struct {
		name  string
		in    []reflect.Type
		a, b  [2]any
		equal bool
	}{
		{"strings split", []reflect.Type{str, str}, [2]any{"ab", "c"}, [2]any{"a", "bc"}, false},
		{"strings same", []reflect.Type{str, str}, [2]any{"ab", "c"}, [2]any{"ab", "c"}, true},
		{"bytes split", []reflect.Type{bs, bs}, [2]any{[]byte("ab"), []byte("c")}, [2]any{[]byte("a"), []byte("bc")}, false},
		{"any split", []reflect.Type{anyType, anyType}, [2]any{"ab", "c"}, [2]any{"a", "bc"}, false},
		{"any string vs bytes", []reflect.Type{anyType, anyType}, [2]any{"ab", "c"}, [2]any{[]byte("ab"), "c"}, false},
		{"any types", []reflect.Type{anyType, anyType}, [2]any{1, 2}, [2]any{1, int64(2)}, false},
		{"any nils", []reflect.Type{anyType, anyType}, [2]any{nil, 1}, [2]any{nil, 1}, true},
		{"any nil moved", []reflect.Type{anyType, anyType}, [2]any{nil, ""}, [2]any{"", nil}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCompiled(t, nil, tc.in...)
			assert.Equal(t, tc.equal, c.key(tc.a[0], tc.a[1]) == c.key(tc.b[0], tc.b[1]))
			assert.Equal(t, tc.equal, MakeHashable(tc.a) == MakeHashable(tc.b), "MakeHashable of the tuple")
		})
	}
}

func TestKeyContextNotInKey(t *testing.T) {
	t.Parallel()
	c := newCompiled(t, nil, reflect.TypeFor[context.Context](), reflect.TypeFor[string]())
	ctx1 := context.Background()
	ctx2, cancel := context.WithCancel(context.WithValue(ctx1, kInt(1), "v"))
	defer cancel()
	assert.Equal(t, c.key(ctx1, "a"), c.key(ctx2, "a"))
	assert.Equal(t, c.key(nil, "a"), c.key(ctx2, "a"), "a nil context")
	assert.NotEqual(t, c.key(ctx1, "a"), c.key(ctx1, "b"))

	// A context.Context parameter in any position is left out.
	c2 := newCompiled(t, nil, reflect.TypeFor[string](), reflect.TypeFor[context.Context]())
	assert.Equal(t, c2.key("a", ctx1), c2.key("a", ctx2))
	assert.NotEqual(t, c2.key("a", ctx1), c2.key("b", ctx1))
}

func TestKeyDeref(t *testing.T) {
	t.Parallel()
	deref := []Option{WithDeref()}
	ptr := reflect.TypeFor[*kNode]()

	a, b, c := &kNode{V: 1}, &kNode{V: 1}, &kNode{V: 2}
	d := newCompiled(t, deref, ptr)
	assert.Equal(t, d.key(a), d.key(b), "equal pointees")
	assert.NotEqual(t, d.key(a), d.key(c), "different pointees")
	assert.NotEqual(t, d.key(a), d.key(nil), "nil")
	assert.Equal(t, d.key(nil), d.key(nil), "nil")

	chainA := &kNode{V: 1, Next: &kNode{V: 2}}
	chainB := &kNode{V: 1, Next: &kNode{V: 2}}
	assert.Equal(t, d.key(chainA), d.key(chainB), "equal chains")
	chainB.Next.V = 3
	assert.NotEqual(t, d.key(chainA), d.key(chainB), "chains that differ at the end")

	// Without WithDeref the same pointers are keyed by identity.
	id := newCompiled(t, nil, ptr)
	assert.NotEqual(t, id.key(a), id.key(b))
	assert.Equal(t, id.key(a), id.key(a))

	// Through an any parameter too.
	da := newCompiled(t, deref, anyType)
	assert.Equal(t, da.key(a), da.key(b))
	assert.NotEqual(t, da.key(a), da.key(c))
	assert.NotEqual(t, da.key(a), da.key(*a), "a pointer and its pointee")

	// A cyclic list returns promptly; it is keyed by identity.
	p := &kNode{V: 1}
	p.Next = p
	q := &kNode{V: 1}
	q.Next = q
	assert.Equal(t, d.key(p), d.key(p))
	assert.NotEqual(t, d.key(p), d.key(q))
	assert.Equal(t, da.key(p), da.key(p))
}

// TestKeyCyclic checks that values that contain themselves return
// promptly, through MakeHashable and compiled encoders, and are keyed by
// identity.
func TestKeyCyclic(t *testing.T) {
	t.Parallel()
	selfSlice := func() []any {
		s := []any{nil, 1}
		s[0] = s
		return s
	}
	selfMap := func() map[string]any {
		m := map[string]any{"n": 1}
		m["self"] = m
		return m
	}
	namedSlice := func() kSelfSlice {
		s := kSelfSlice{nil}
		s[0] = s
		return s
	}
	mutual := func() []any {
		a := []any{nil}
		b := map[int]any{1: a}
		a[0] = b
		return a
	}
	inStruct := func() struct{ M map[string]any } { return struct{ M map[string]any }{selfMap()} }
	cases := []struct {
		name string
		make func() any
	}{
		{"slice in its own element", func() any { return selfSlice() }},
		{"map in its own value", func() any { return selfMap() }},
		{"named self slice", func() any { return namedSlice() }},
		{"slice and map in each other", func() any { return mutual() }},
		{"struct holding a cyclic map", func() any { return inStruct() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v1, v2 := tc.make(), tc.make()
			typ := reflect.TypeOf(v1)
			assert.True(t, MakeHashable(v1) == MakeHashable(v1), "the same cyclic value")
			assert.False(t, MakeHashable(v1) == MakeHashable(v2), "two cyclic values")
			assert.IsType(t, HashableWrapper{}, MakeHashable(v1))
			for _, in := range []reflect.Type{anyType, typ} {
				c := newCompiled(t, nil, in)
				assert.Equal(t, c.key(v1), c.key(v1), "func(%v): the same cyclic value", in)
				assert.NotEqual(t, c.key(v1), c.key(v2), "func(%v): two cyclic values", in)
			}
			d := newCompiled(t, []Option{WithDeref()}, anyType)
			assert.Equal(t, d.key(v1), d.key(v1), "WithDeref")
		})
	}
}

// TestKeyCyclicDeep checks that deeply nested acyclic values do not
// overflow the stack.
func TestKeyCyclicDeep(t *testing.T) {
	t.Parallel()
	var deepSlice any
	for range 10000 {
		deepSlice = []any{deepSlice}
	}
	var deepMap any
	for range 10000 {
		deepMap = map[string]any{"m": deepMap}
	}
	var deepList *kNode
	for i := range 10000 {
		deepList = &kNode{V: i, Next: deepList}
	}
	// Nesting beyond maxDepth is not followed: the key gets a nonce, so a
	// value that deep equals nothing, not even itself (always a miss, never
	// a stale hit after the caller changed it in place).
	for _, v := range []any{deepSlice, deepMap, deepList} {
		_, isPtr := v.(*kNode) // without WithDeref a pointer keys by identity
		assert.Equal(t, isPtr, MakeHashable(v) == MakeHashable(v))
		c := newCompiled(t, []Option{WithDeref()}, anyType)
		assert.NotEqual(t, c.key(v), c.key(v))
	}
	// Just within the limit, a deep value keys by its structure.
	var ok any
	for range keys.MaxDepth - 1 {
		ok = []any{ok}
	}
	assert.True(t, MakeHashable(ok) == MakeHashable(ok))
	var again any
	for range keys.MaxDepth - 1 {
		again = []any{again}
	}
	assert.True(t, MakeHashable(ok) == MakeHashable(again), "equal structure, equal keys")
}

// TestKeyCyclicShared checks an acyclic value that shares its parts so
// that, as a tree, it has 2^64 leaves: keying it must give up, not hang.
func TestKeyCyclicShared(t *testing.T) {
	t.Parallel()
	var dag any = 1
	for range 64 {
		dag = []any{dag, dag}
	}
	var pdag *kPair2
	for range 64 {
		pdag = &kPair2{pdag, pdag}
	}
	// The key passes 4 MiB: it matches nothing, not even itself. (How
	// long giving up takes is BenchmarkKeyShared's: parts met again are
	// copied, not walked again.)
	h1, h2 := MakeHashable(dag), MakeHashable(dag)
	assert.False(t, h1 == h2)
	w1, w2 := NewHashableWrapper(dag), NewHashableWrapper(dag)
	assert.False(t, w1 == w2)
	w1.Hash()
	c := newCompiled(t, nil, anyType)
	assert.NotEqual(t, c.key(dag), c.key(dag))
	d := newCompiled(t, []Option{WithDeref()}, anyType)
	assert.NotEqual(t, d.key(pdag), d.key(pdag))
	// Without WithDeref, pointers are keyed by identity.
	p1, p2 := NewHashableWrapper(pdag), NewHashableWrapper(pdag)
	assert.True(t, p1 == p2)
	p1.Hash()
}

type kPair2 struct{ L, R *kPair2 }

func TestIsIterable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    any
		want bool
	}{
		{nil, false},
		{1, false},
		{"ab", false},
		{[]byte("ab"), false},
		{[]uint8(nil), false},
		{[]int{1}, true},
		{[]int(nil), true},
		{[]any{}, true},
		{[2]int{}, true},
		{[0]int{}, true},
		{[4]byte{}, true},
		{map[string]int{}, false},
		{&[]int{1}, false},
		{kSelfSlice{}, true},
		{struct{ A []int }{}, false},
		{make(chan int), false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, IsIterable(tc.v), "IsIterable(%T)", tc.v)
	}
}

type lkBig struct{ b [lkMiB]byte }

// A pooled key state must not keep objects of earlier keys alive: with one
// processor, a 1 MiB object used once as a []*lkBig argument stayed alive
// (and its entry stayed) while other decorated functions were called.
//
// Guards the reported leaks of issue 8 (item 2: memory that must be freed).
func TestLeakPooledKeyState(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := Decorate(func(xs []*lkBig) int { return len(xs) + int(xs[0].b[0]) })
	g := Decorate(func(k int) int { return k }, WithMaxSize(1))
	collected := make(chan struct{})
	func() {
		big := new(lkBig)
		runtime.AddCleanup(big, func(ch chan struct{}) { close(ch) }, collected)
		require.Equal(t, 1, f([]*lkBig{big}))
	}()
	ok := dtGCUntil(func() bool {
		for i := range 10 {
			g(i) // a miss: takes and returns a pooled state
		}
		select {
		case <-collected:
			return CacheOf(f).Len() == 0
		default:
			return false
		}
	})
	assert.True(t, ok, "the argument's object (or its entry) outlived its only call; Len=%d", CacheOf(f).Len())
}

// putState drops every pointer the state held, beyond its lengths too.
//
// Guards the reported leaks of issue 8 (item 2: memory that must be freed).
func TestPutStateClearsPointers(t *testing.T) {
	s := keys.GetState()
	x := new(int)
	s.Path = append(s.Path, keys.Visit{P: unsafe.Pointer(x)}, keys.Visit{P: unsafe.Pointer(x)})
	s.Leave()
	s.Leave()
	keys.PutState(s)
	for _, v := range s.Path[:cap(s.Path)] {
		assert.Nil(t, v.P)
		assert.Nil(t, v.T)
	}
	for _, p := range s.Refs[:cap(s.Refs)] {
		assert.Nil(t, p)
	}
}

type rmBox struct{ V any }

// Nesting through interface values used to escape both the depth limit
// (only containers counted) and the 4 MiB limit (a byte or two per level):
// a few million levels overflowed the stack. Past maxDepth interfaces now
// get a nonce, like too-deep containers.
func TestDeepInterfaceNesting(t *testing.T) {
	t.Parallel()
	deep := func(n int) any {
		var x any
		for range n {
			x = rmBox{x}
		}
		return x
	}
	tooDeep := deep(keys.MaxDepth + 10)
	assert.False(t, MakeHashable(tooDeep) == MakeHashable(tooDeep), "past the limit a key matches nothing")
	ok := deep(keys.MaxDepth - 10)
	assert.True(t, MakeHashable(ok) == MakeHashable(deep(keys.MaxDepth-10)), "within it, equal structure, equal keys")
}

// Cache.Get/Set keys and decorated functions' keys shared a cache through
// WithCache, and a 1-byte namespace for Cache keys was a prefix of the
// 8-byte number of every function whose low byte is 0: an int Set into the
// cache could be returned by the function, and the reverse.
func TestCacheKeysApartFromFunctionKeys(t *testing.T) {
	for funcIDs.Load()%65536 != 511 {
		funcIDs.Add(1)
	}
	c := MustNew(WithMaxSize(10))
	f := Decorate(func(s string) string { return "f:" + s }, WithCache(c))
	w := lookupWrapped(f)
	require.Equal(t, uint64(512), w.fid%65536)
	require.Equal(t, "f:c", f("c"))

	s := keys.GetState()
	w.encode(s, []reflect.Value{reflect.ValueOf("c")})
	k := slices.Clone(s.Buf)
	keys.PutState(s)
	require.Len(t, k, 10)
	// The int whose key, under a 1-byte namespace 00 and int's type id 02,
	// was exactly f("c")'s key.
	require.Equal(t, []byte{0, 2}, k[:2])
	require.Equal(t, uint64(2), keys.BasicIDs.Int)
	n := int(binary.LittleEndian.Uint64(k[2:10]))
	_, err := c.Get(n)
	assert.ErrorIs(t, err, ErrNotFound, "a Cache key must not reach a function's entry")
	c.Set(n, 42)
	assert.Equal(t, "f:c", f("c"), "and a Set must not replace it")
}

// rvDeep keys negative values by a string and others by themselves.
type rvDeep int64

func (k rvDeep) CacheKey() any {
	if k < 0 {
		return "negative"
	}
	return k
}

type (
	rvPad1 struct{ A int8 }
	rvPad2 struct{ A int16 }
	rvPad3 struct{ A int32 }
	rvPad4 struct{ A int64 }
)

func rvNest(depth int, inner any) any {
	v := []any{inner}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

// keyerEncoder writes tagValue and then either uvarint(type id) and a value,
// or, at maxDepth, tagNonce (5) and a u64 nonce. For the type whose id is 5,
// "tagValue 05 <u64 n>" is both rvDeep(n) keyed by itself and the nonce n:
// the nonce is not "never equal to another key". Type ids depend on the order
// types are first keyed, so this runs in a child process that makes rvDeep's
// id 5.
func TestKeyerDepthNonceCollision(t *testing.T) {
	if os.Getenv("MEMO_NONCE_CHILD") == "1" {
		// Package init already numbered a few basic types (Cache.Get's fast
		// path); this throwaway process encodes none of them, so it may
		// hand out their ids again to arrange rvDeep's.
		if keys.TypeIDs.Load() > 3 {
			keys.TypeIDs.Store(0)
		}
		for _, p := range []reflect.Type{reflect.TypeFor[rvPad1](), reflect.TypeFor[rvPad2](), reflect.TypeFor[rvPad3](), reflect.TypeFor[rvPad4]()} {
			if keys.TypeIDs.Load() < 3 {
				keys.InfoOf(p)
			}
		}
		require.Equal(t, uint64(3), keys.TypeIDs.Load(), "cannot arrange type ids in this process")
		require.Equal(t, uint64(5), keys.InfoOf(reflect.TypeFor[rvDeep]()).Id)

		calls := 0
		f := Decorate(func(v any) int { calls++; return calls })
		// 1000 nested slices put the keyer at maxDepth: it gets a nonce.
		next := keys.Nonces.Load() + 1
		require.Equal(t, 1, f(rvNest(keys.MaxDepth, rvDeep(-1))))
		require.Equal(t, next, keys.Nonces.Load(), "the first call used one nonce")
		// rvDeep(next) is keyed by its own structure at the same place.
		assert.Equal(t, 2, f(rvNest(keys.MaxDepth, rvDeep(int64(next)))), "wrong hit: a different argument matched the nonce key")
		return
	}
	// The child has a liveness watchdog of its own (-test.timeout), which
	// reports a hang with every goroutine; nothing here bounds its speed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeyerDepthNonceCollision$", "-test.count=1", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "MEMO_NONCE_CHILD=1")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s", tail(out))
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
