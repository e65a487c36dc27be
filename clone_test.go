package memo

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type cloneInner struct {
	xs []int
	M  map[string][]byte
}

type cloneOuter struct {
	Name  string
	in    cloneInner
	Arr   [2][]int
	Any   any
	P     *int
	F     func() int
	Ch    chan int
	plain [3]int
}

// cloneArg copies every slice, map and interface deeply, unexported fields
// too, and keeps pointers, funcs and channels as they are.
func TestCloneArgDeep(t *testing.T) {
	n := 7
	ch := make(chan int)
	f := func() int { return 1 }
	orig := cloneOuter{
		Name:  "a",
		in:    cloneInner{xs: []int{1, 2}, M: map[string][]byte{"k": []byte("v")}},
		Arr:   [2][]int{{3}, {4}},
		Any:   []string{"s"},
		P:     &n,
		F:     f,
		Ch:    ch,
		plain: [3]int{5, 6, 7},
	}
	cp := cloneArg(orig, false)
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
}

// Under WithDeref pointees are copied too; cycles and shared parts are
// copied once.
func TestCloneArgDerefAndCycles(t *testing.T) {
	type node struct {
		V    []int
		Next *node
	}
	a := &node{V: []int{1}}
	a.Next = a
	cp := cloneArg(a, true)
	require.NotSame(t, a, cp)
	assert.Same(t, cp, cp.Next, "the cycle is kept in the copy")
	a.V[0] = 9
	assert.Equal(t, []int{1}, cp.V)

	kept := cloneArg(a, false)
	assert.Same(t, a, kept, "without WithDeref a pointer is kept")

	// A slice that contains itself through an interface.
	s := make([]any, 2)
	s[0] = s
	s[1] = 5
	cs := cloneArg(s, false)
	s[1] = 6
	assert.Equal(t, 5, cs[1])
	inner := cs[0].([]any)
	assert.Equal(t, 5, inner[1], "the inner reference is to the copy")

	// Shared backing arrays stay shared in the copy.
	shared := []int{1, 2}
	pair := [2][]int{shared, shared}
	cp2 := cloneArg(pair, false)
	cp2[0][0] = 42
	assert.Equal(t, 42, cp2[1][0])
	assert.Equal(t, 1, shared[0])

	// A map that contains itself.
	m := map[string]any{}
	m["self"] = m
	cm := cloneArg(m, false)
	assert.Equal(t, reflect.ValueOf(cm).Pointer(), reflect.ValueOf(cm["self"]).Pointer())
	assert.NotEqual(t, reflect.ValueOf(m).Pointer(), reflect.ValueOf(cm).Pointer())
}

// Types with nothing to copy are returned without reflection; needsClone
// tells them apart.
func TestNeedsClone(t *testing.T) {
	type flat struct {
		A int
		B string
		C [4]float64
	}
	type withPtr struct{ P *flat }
	for _, tc := range []struct {
		v     any
		deref bool
		want  bool
	}{
		{0, false, false},
		{"s", false, false},
		{flat{}, false, false},
		{withPtr{}, false, false},
		{withPtr{}, true, true},
		{[0][]int{}, false, false},
		{[1][]int{}, false, true},
		{[]int{}, false, true},
		{map[int]int{}, false, true},
		{struct{ X any }{}, false, true},
	} {
		assert.Equal(t, tc.want, needsClone(reflect.TypeOf(tc.v), tc.deref), "%T deref=%v", tc.v, tc.deref)
	}
	assert.Equal(t, 0.0, testing.AllocsPerRun(100, func() { _ = cloneArg(flat{A: 1}, false) }))
}

// cloneArgs keeps the context and copies the rest.
func TestCloneArgs(t *testing.T) {
	w := &wrapped{ctx: true}
	xs := []int{1}
	args := []reflect.Value{reflect.ValueOf(t.Context()), reflect.ValueOf(xs)}
	cp := w.cloneArgs(args)
	xs[0] = 2
	assert.Equal(t, []int{1}, cp[1].Interface())
	assert.Equal(t, args[0].Interface(), cp[0].Interface())
}
