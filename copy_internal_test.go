package memo

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the copies an execution makes of its arguments (detach.go).

// dtCopy returns the copy an execution would get of v, a value of type T.
func dtCopy[T any](v T, deref bool) T {
	c := keys.CopierOf(reflect.TypeFor[T](), deref)
	if c == nil {
		return v
	}
	keys.OwnValue(c, &v)
	return v
}

// dtKey returns the key bytes of v as a parameter of type T.
func dtKey[T any](v T, deref bool) string {
	s := keys.GetState()
	defer keys.PutState(s)
	s.Deref = deref
	keys.EncoderOf(reflect.TypeFor[T]())(s, reflect.ValueOf(&v).Elem())
	return string(s.Buf)
}

type dtInner struct {
	S []int
}

type dtStruct struct {
	A    []int
	b    []string
	Skip []int `memo:"-"`
	P    *int
	M    map[string]dtInner
	T    time.Time
	F    func()
}

type dtKeyed struct{ ID int }

func (k *dtKeyed) CacheKey() any { return k.ID }

type dtNode struct {
	V    []int
	Next *dtNode
}

// dtAddr returns the address of a slice's array, to compare identities
// (assert.Equal on pointers compares what they point to).
func dtAddr[E any](s []E) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(s))) }

// dtCheck asserts that the copy of v has v's key, and that mutate, which
// changes memory v reaches, changes v's key but not the copy's.
func dtCheck[T any](t *testing.T, v T, deref bool, mutate func(T)) T {
	t.Helper()
	before := dtKey(v, deref)
	cp := dtCopy(v, deref)
	require.Equal(t, before, dtKey(cp, deref), "the copy has the same key")
	if mutate != nil {
		mutate(v)
		require.NotEqual(t, before, dtKey(v, deref), "the mutation changes the original's key")
		assert.Equal(t, before, dtKey(cp, deref), "and leaves the copy alone")
	}
	return cp
}

func TestCopyOwnsWhatTheKeyEncodesByValue(t *testing.T) {
	t.Parallel()
	t.Run("slice", func(t *testing.T) {
		t.Parallel()
		dtCheck(t, []int{1, 2, 3}, false, func(v []int) { v[0] = 100 })
		dtCheck(t, []byte("abc"), false, func(v []byte) { v[0] = 'x' })
		dtCheck(t, []string{"a", "b"}, false, func(v []string) { v[1] = "c" })
		var nilSlice []int
		assert.Nil(t, dtCopy(nilSlice, false), "nil stays nil")
		assert.NotNil(t, dtCopy([]int{}, false), "empty stays empty")
	})
	t.Run("nested slices keep their sharing", func(t *testing.T) {
		t.Parallel()
		x := []int{1, 2}
		cp := dtCheck(t, [][]int{x, x}, false, func(v [][]int) { v[0][0] = 9 })
		assert.Equal(t, dtAddr(cp[0]), dtAddr(cp[1]), "shared in the copy too")
		assert.NotEqual(t, dtAddr(x), dtAddr(cp[0]))
	})
	t.Run("array of slices", func(t *testing.T) {
		t.Parallel()
		dtCheck(t, [2][]int{{1}, {2}}, false, func(v [2][]int) { v[1][0] = 5 })
	})
	t.Run("map", func(t *testing.T) {
		t.Parallel()
		dtCheck(t, map[string][]int{"a": {1}}, false, func(v map[string][]int) { v["a"][0] = 2 })
		dtCheck(t, map[string]int{"a": 1}, false, func(v map[string]int) { v["b"] = 2 })
	})
	t.Run("interface", func(t *testing.T) {
		t.Parallel()
		dtCheck(t, any([]int{1}), false, func(v any) { v.([]int)[0] = 2 })
		dtCheck(t, []any{[]int{1}, "s", 3}, false, func(v []any) { v[0].([]int)[0] = 2 })
		x := any(7)
		assert.Equal(t, x, dtCopy(x, false))
	})
	t.Run("struct fields, unexported too", func(t *testing.T) {
		t.Parallel()
		n := 1
		f := func() {}
		v := dtStruct{
			A: []int{1}, b: []string{"x"}, Skip: []int{5}, P: &n,
			M: map[string]dtInner{"k": {S: []int{1}}}, T: time.Unix(5, 0), F: f,
		}
		cp := dtCheck(t, v, false, func(v dtStruct) { v.b[0] = "y" })
		dtCheck(t, v, false, func(v dtStruct) { v.A[0] = 2 })
		dtCheck(t, v, false, func(v dtStruct) { v.M["k"].S[0] = 2 })
		assert.Equal(t, dtAddr(v.Skip), dtAddr(cp.Skip), "a field left out of the key is passed as it is")
		assert.Same(t, v.P, cp.P, "a pointer keyed by identity is passed as it is")
		assert.True(t, v.T.Equal(cp.T))
		assert.NotNil(t, cp.F)
	})
	t.Run("pointees under WithDeref", func(t *testing.T) {
		t.Parallel()
		n := &dtNode{V: []int{1}}
		cp := dtCheck(t, n, true, func(v *dtNode) { v.V[0] = 2 })
		assert.NotSame(t, n, cp)
		assert.Same(t, n, dtCopy(n, false), "without WithDeref the pointer is the key")
		x := 3
		cpx := dtCheck(t, &x, true, func(v *int) { *v = 4 })
		assert.NotSame(t, &x, cpx)
		k := &dtKeyed{ID: 1}
		assert.Same(t, k, dtCopy(k, true), "a pointer with a CacheKey method is passed as it is")
	})
}

func TestCopyCycles(t *testing.T) {
	t.Parallel()
	s := []any{nil, 1}
	s[0] = s
	cs := dtCopy(s, false)
	require.Len(t, cs, 2)
	assert.NotEqual(t, dtAddr(s), dtAddr(cs))
	assert.Equal(t, dtAddr(cs), dtAddr(cs[0].([]any)), "the copy contains itself")

	m := map[string]any{"n": 1}
	m["self"] = m
	cm := dtCopy(m, false)
	assert.Equal(t, reflect.ValueOf(cm).Pointer(), reflect.ValueOf(cm["self"]).Pointer())
	assert.NotEqual(t, reflect.ValueOf(m).Pointer(), reflect.ValueOf(cm).Pointer())

	n := &dtNode{V: []int{1}}
	n.Next = n
	cn := dtCopy(n, true)
	assert.NotSame(t, n, cn)
	assert.Same(t, cn, cn.Next)
}

// Memory shared by many parts of an argument is copied once: copying
// costs at most the memory the argument reaches, however often it reaches
// it (8,192 references to one 1 MiB slice would be 8 GiB as a tree).
func TestCopySharedMemoryOnce(t *testing.T) {
	big := make([]byte, 1<<20)
	refs := make([][]byte, 8192)
	for i := range refs {
		refs[i] = big
	}
	boxed := any(dtInner{S: make([]int, 1<<17)}) // 1 MiB in one interface box
	boxes := make([]any, 8192)
	for i := range boxes {
		boxes[i] = boxed
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cr := dtCopy(refs, false)
	cb := dtCopy(boxes, false)
	runtime.ReadMemStats(&ms1)
	assert.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(4<<20), "bytes allocated by the two copies")
	assert.Equal(t, dtAddr(cr[0]), dtAddr(cr[8191]))
	assert.NotEqual(t, dtAddr(big), dtAddr(cr[0]))
	assert.Equal(t, dtAddr(cb[0].(dtInner).S), dtAddr(cb[8191].(dtInner).S))
}

func TestCopierOnlyWhereNeeded(t *testing.T) {
	t.Parallel()
	for _, typ := range []reflect.Type{
		reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[*int](),
		reflect.TypeFor[time.Time](), reflect.TypeFor[[4]int](), reflect.TypeFor[struct {
			A int
			B string
			C []int `memo:"-"`
		}](), reflect.TypeFor[chan int](), reflect.TypeFor[func()](), reflect.TypeFor[[0][]int](),
	} {
		assert.Nil(t, keys.CopierOf(typ, false), "%v", typ)
	}
	assert.NotNil(t, keys.CopierOf(reflect.TypeFor[*int](), true))
	assert.Nil(t, keys.CopierOf(reflect.TypeFor[*dtKeyed](), true))
	for _, typ := range []reflect.Type{
		reflect.TypeFor[[]int](), reflect.TypeFor[map[int]int](), reflect.TypeFor[any](),
		reflect.TypeFor[[1][]int](), reflect.TypeFor[dtInner](),
	} {
		assert.NotNil(t, keys.CopierOf(typ, false), "%v", typ)
	}
}

// FuzzCopies checks, on the values FuzzKeys generates, that copying never
// panics and that a copy has its original's key, with and without
// WithDeref (keys holding a nonce equal nothing, so they are skipped).
//
//	go test -run XXX -fuzz=FuzzCopies -fuzztime=1m .
func FuzzCopies(f *testing.F) {
	f.Add([]byte{0, 9, 3, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{4, 1, 12, 2, 7, 1, 7, 2})
	f.Add([]byte{2, 0, 5, 3, 5, 4})
	f.Add([]byte{0, 13, 3, 5, 3, 5, 4, 7, 1})
	f.Add([]byte{3, 14, 1, 2, 3, 15, 0, 1, 2, 3, 4})
	f.Add([]byte{0, 16, 1, 16, 2, 17, 3})
	f.Add([]byte("\x00\x0c\x03\x07a\x07b\x07c\x05\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 512 {
			return
		}
		a := (&fuzzGen{data: data}).value(0)
		for _, deref := range []bool{false, true} {
			key := func(v any) (string, bool) {
				s := keys.GetState()
				defer keys.PutState(s)
				s.Deref = deref
				keys.EncodeInterface(s, reflect.ValueOf(&v).Elem())
				return string(s.Buf), s.Opaque
			}
			before, opaque := key(a)
			cp := dtCopy(a, deref)
			after, _ := key(cp)
			if !opaque && before != after {
				t.Fatalf("deref %v: the copy's key differs\na  = %#v\ncp = %#v", deref, a, cp)
			}
		}
	})
}

type dtInnerPriv struct {
	xs []int
	M  map[string][]byte
}

type dtOuter struct {
	Name  string
	in    dtInnerPriv
	Arr   [2][]int
	Any   any
	P     *int
	F     func() int
	Ch    chan int
	plain [3]int
}

// A copy takes every slice, map and interface deeply, unexported fields
// too, and keeps pointers, funcs and channels as they are.
func TestCopyDeepStruct(t *testing.T) {
	t.Parallel()
	n := 7
	ch := make(chan int)
	f := func() int { return 1 }
	orig := dtOuter{
		Name:  "a",
		in:    dtInnerPriv{xs: []int{1, 2}, M: map[string][]byte{"k": []byte("v")}},
		Arr:   [2][]int{{3}, {4}},
		Any:   []string{"s"},
		P:     &n,
		F:     f,
		Ch:    ch,
		plain: [3]int{5, 6, 7},
	}
	cp := dtCopy(orig, false)
	// Change everything the caller could change.
	orig.in.xs[0] = 100
	orig.in.M["k"][0] = 'X'
	orig.in.M["new"] = nil
	orig.Arr[0][0] = 300
	orig.Any.([]string)[0] = "changed"
	assert.Equal(t, []int{1, 2}, cp.in.xs)
	assert.Equal(t, map[string][]byte{"k": []byte("v")}, cp.in.M)
	assert.Equal(t, [2][]int{{3}, {4}}, cp.Arr)
	assert.Equal(t, []string{"s"}, cp.Any)
	assert.Same(t, &n, cp.P, "a pointer keyed by identity is kept")
	assert.Equal(t, ch, cp.Ch)
	assert.Equal(t, reflect.ValueOf(f).Pointer(), reflect.ValueOf(cp.F).Pointer())
	assert.Equal(t, [3]int{5, 6, 7}, cp.plain)
	assert.Equal(t, "a", cp.Name)
}

// Memory shared by the parts of an array or a struct at the root of a
// copy, or by two arguments, is shared the same way by the copies.
func TestCopyKeepsSharingAtTheRoot(t *testing.T) {
	t.Parallel()
	shared := []int{1, 2}
	pair := dtCopy([2][]int{shared, shared}, false)
	pair[0][0] = 42
	assert.Equal(t, 42, pair[1][0], "array elements")
	assert.Equal(t, 1, shared[0])

	type two struct{ A, B []int }
	st := dtCopy(two{shared, shared}, false)
	assert.Equal(t, dtAddr(st.A), dtAddr(st.B), "struct fields")
	assert.NotEqual(t, dtAddr(shared), dtAddr(st.A))

	c := keys.CopierOf(reflect.TypeFor[[]int](), false)
	a, b := shared, shared
	keys.OwnValues2(c, c, &a, &b)
	assert.Equal(t, dtAddr(a), dtAddr(b), "two typed arguments")
	assert.NotEqual(t, dtAddr(shared), dtAddr(a))
	x, n := shared, 5
	keys.OwnValues2(c, nil, &x, &n)
	assert.NotEqual(t, dtAddr(shared), dtAddr(x), "one of two")
	assert.Equal(t, 5, n)

	f := Decorate(func(_ context.Context, a []int, b []int) int { return 0 })
	w := lookupWrapped(f)
	require.NotNil(t, w)
	args := []reflect.Value{reflect.ValueOf(t.Context()), reflect.ValueOf(shared), reflect.ValueOf(shared)}
	cp := w.own(args)
	shared[0] = 9
	assert.Equal(t, args[0].Interface(), cp[0].Interface(), "the context is kept")
	assert.Equal(t, []int{1, 2}, cp[1].Interface())
	assert.Equal(t, dtAddr(cp[1].Interface().([]int)), dtAddr(cp[2].Interface().([]int)), "two Decorate arguments")
}

// A copy goes as deep as the key takes values: the encoder bounds
// containers and interfaces apart (maxDepth each), so a []any nested past
// maxDepth/2 still has an exact key, and its innermost slice must be copied.
func TestCopyAsDeepAsTheKey(t *testing.T) {
	t.Parallel()
	leaf := []int{1}
	var v any = leaf
	for range keys.MaxDepth * 3 / 4 {
		v = []any{v}
	}
	s := keys.GetState()
	keys.EncodeInterface(s, reflect.ValueOf(&v).Elem())
	require.False(t, s.Opaque, "the key is exact at this depth")
	keys.PutState(s)
	dtCheck(t, v, false, func(any) { leaf[0] = 2 })
}

// Where no argument holds anything to copy, a function has no copiers
// (decided once, at decoration), so that neither an execution nor a
// refresh (WithRefreshAfter) copies or allocates anything for its
// arguments.
func TestNoCopiersForFlatArguments(t *testing.T) {
	t.Parallel()
	type flat struct {
		A int
		B string
		C [4]float64
	}
	type withPtr struct{ P *flat }
	type ignored struct {
		S []int `memo:"-"`
	}
	opts := []Option{WithTTL(time.Minute), WithRefreshAfter(time.Second)}
	for name, f := range map[string]any{
		"Func int":        Func(func(x int) int { return x }, opts...),
		"Func flat":       Func(func(x flat) int { return x.A }, opts...),
		"Func ptr":        Func(func(x withPtr) int { return 0 }, opts...),
		"Func2":           Func2(func(x int, s string) int { return x }, opts...),
		"FuncCtx":         FuncCtx(func(_ context.Context, x flat) (int, error) { return x.A, nil }, opts...),
		"Decorate":        Decorate(func(x int, p *flat, c chan int) int { return x }, opts...),
		"Decorate ctx":    Decorate(func(_ context.Context, x int) int { return x }, opts...),
		"Decorate keyed":  Decorate(func(k *dtKeyed) int { return 0 }, append(opts, WithDeref())...),
		"Decorate [0]":    Decorate(func(x [0][]int, s string) int { return 0 }, opts...),
		"Decorate ignore": Decorate(func(x ignored) int { return 0 }, opts...),
	} {
		w := lookupWrapped(f)
		require.NotNil(t, w, name)
		assert.Nil(t, w.copiers(), name)
		assert.True(t, w.refreshes(), name)
	}
	for name, f := range map[string]any{
		"Func deref":   Func(func(x withPtr) int { return 0 }, append(opts, WithDeref())...),
		"Func [1]":     Func(func(x [1][]int) int { return 0 }, opts...),
		"Func2 second": Func2(func(x int, m map[int]int) int { return x }, opts...),
		"Decorate any": Decorate(func(x int, a any) int { return x }, opts...),
	} {
		w := lookupWrapped(f)
		require.NotNil(t, w, name)
		assert.NotNil(t, w.copiers(), name)
	}
}

func rfSum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// Issue 8.1: caller A starts the execution with buf and a 30 ms deadline,
// leaves at its deadline, then reuses buf; caller B waits for the same
// execution. The execution must compute on its own copy: B and every later
// caller get sum([1 2 3]) = 6, never 105.
func TestExecutionOutlivesCallerMemory(t *testing.T) {
	t.Parallel()
	type sumFunc = func(context.Context, []int) (int, error)
	body := func(execs *atomic.Int32) sumFunc {
		return func(_ context.Context, xs []int) (int, error) {
			execs.Add(1)
			time.Sleep(100 * time.Millisecond)
			return rfSum(xs), nil
		}
	}
	forms := map[string]func(sumFunc) sumFunc{
		"FuncCtx":  func(f sumFunc) sumFunc { return FuncCtx(f) },
		"Decorate": func(f sumFunc) sumFunc { return Decorate(f) },
	}
	for name, memoize := range forms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var execs atomic.Int32
				f := memoize(body(&execs))

				aDone := make(chan struct{})
				go func() {
					defer close(aDone)
					buf := []int{1, 2, 3}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
					defer cancel()
					_, err := f(ctx, buf)
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					buf[0] = 100 // a caller may reuse its memory once its call has returned
				}()
				synctest.Wait() // A leads, the execution sleeps

				bGot := make(chan int, 1)
				go func() {
					v, err := f(context.Background(), []int{1, 2, 3})
					assert.NoError(t, err)
					bGot <- v
				}()
				synctest.Wait() // B waits on A's execution
				<-aDone
				assert.Equal(t, 6, <-bGot, "B")

				v, err := f(context.Background(), []int{1, 2, 3})
				require.NoError(t, err)
				assert.Equal(t, 6, v, "a later call")
				assert.EqualValues(t, 1, execs.Load())
				st := CacheOf(f).Stats()
				assert.EqualValues(t, 1, st.Hits)
				rfAssertSettled(t, st)
			})
		})
	}
}

// rfShape is a memoized function, and how callers call it: A with an
// argument it then mutates, B and later callers with a fresh equal one.
type rfShape struct {
	name   string
	decor  func(execs *atomic.Int32) any
	call   func(f any, ctx context.Context, fresh bool) (string, error)
	mutate func()
	want   string
}

// The same for the other shapes whose memory a key takes by value: maps,
// structs, interfaces, nested slices, two-argument typed functions, and
// pointees under WithDeref.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestExecutionOwnsEveryArgumentShape(t *testing.T) {
	t.Parallel()
	type rec struct {
		Name string
		Tags []string
	}
	var cases []rfShape
	// Each case builds the argument A passes, its mutation, and an equal
	// fresh argument for B.
	{
		var shared map[string][]int
		cases = append(cases, rfShape{
			name: "map of slices",
			decor: func(execs *atomic.Int32) any {
				return Decorate(func(_ context.Context, m map[string][]int) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("x", rfSum(m["a"])), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				m := map[string][]int{"a": {1, 2}}
				if !fresh {
					shared = m
				}
				return f.(func(context.Context, map[string][]int) (string, error))(ctx, m)
			},
			mutate: func() { shared["a"][0] = 5; shared["b"] = []int{1} },
			want:   "xxx",
		})
	}
	{
		var shared *rec
		cases = append(cases, rfShape{
			name: "pointee under WithDeref, typed two arguments",
			decor: func(execs *atomic.Int32) any {
				return Func2Ctx(func(_ context.Context, r *rec, sep string) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return r.Name + sep + strings.Join(r.Tags, sep), nil
				}, WithDeref())
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				r := &rec{Name: "n", Tags: []string{"a", "b"}}
				if !fresh {
					shared = r
				}
				return f.(func(context.Context, *rec, string) (string, error))(ctx, r, ",")
			},
			mutate: func() { shared.Name = "zz"; shared.Tags[0] = "q" },
			want:   "n,a,b",
		})
	}
	{
		var shared []any
		cases = append(cases, rfShape{
			name: "interfaces holding slices, variadic",
			decor: func(execs *atomic.Int32) any {
				return Decorate(func(_ context.Context, xs ...any) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("y", rfSum(xs[0].([]int))), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				xs := []any{[]int{1, 1}}
				if !fresh {
					shared = xs
				}
				return f.(func(context.Context, ...any) (string, error))(ctx, xs...)
			},
			mutate: func() { shared[0].([]int)[0] = 7; shared[0] = []int{9} },
			want:   "yy",
		})
	}
	{
		var shared [][]int
		cases = append(cases, rfShape{
			name: "typed nested slices",
			decor: func(execs *atomic.Int32) any {
				return FuncCtx(func(_ context.Context, xss [][]int) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("z", rfSum(xss[1])), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				xss := [][]int{{5}, {1, 2}}
				if !fresh {
					shared = xss
				}
				return f.(func(context.Context, [][]int) (string, error))(ctx, xss)
			},
			mutate: func() { shared[1][1] = 40 },
			want:   "zzz",
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var execs atomic.Int32
				f := tc.decor(&execs)
				aDone := make(chan struct{})
				go func() {
					defer close(aDone)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
					defer cancel()
					_, err := tc.call(f, ctx, false)
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					tc.mutate()
				}()
				synctest.Wait()
				bGot := make(chan string, 1)
				go func() {
					v, err := tc.call(f, context.Background(), true)
					assert.NoError(t, err)
					bGot <- v
				}()
				synctest.Wait()
				<-aDone
				assert.Equal(t, tc.want, <-bGot, "B")
				v, err := tc.call(f, context.Background(), true)
				require.NoError(t, err)
				assert.Equal(t, tc.want, v, "a later call")
				assert.EqualValues(t, 1, execs.Load())
			})
		})
	}
}

// A leader that cannot leave (a context that never ends) needs no copy:
// the function gets the caller's own slice.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestContextLeaderThatCannotLeaveIsNotCopied(t *testing.T) {
	t.Parallel()
	buf := []int{1, 2}
	var got []int
	f := FuncCtx(func(_ context.Context, xs []int) (int, error) {
		got = xs
		return len(xs), nil
	})
	_, err := f(context.Background(), buf)
	require.NoError(t, err)
	assert.Equal(t, dtAddr(buf), dtAddr(got))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf2 := []int{3}
	_, err = f(ctx, buf2)
	require.NoError(t, err)
	assert.NotEqual(t, dtAddr(buf2), dtAddr(got), "a caller that may leave hands over a copy")
	assert.Equal(t, buf2, got)
}
