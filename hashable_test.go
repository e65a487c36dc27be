package memo

import (
	"math"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kObj is big enough not to come from the tiny allocator, so that freed
// objects' addresses are reused by objects of the same size class.
type kObj struct {
	p *int
	n [5]int
}

// TestIdentityGC checks that a pointer key never outlives its object:
// after an object is collected, objects allocated at the same address get
// new keys, and the identity registry forgets the old object.
func TestIdentityGC(t *testing.T) {
	const n = 2000
	before := identities()

	oldKeys := make(map[any]bool, n)
	oldAddrs := make(map[uintptr]bool, n)
	func() {
		objs := make([]*kObj, n)
		for i := range objs {
			objs[i] = &kObj{n: [5]int{i}}
			oldKeys[MakeHashable(objs[i])] = true
			oldAddrs[uintptr(unsafe.Pointer(objs[i]))] = true
		}
		require.Len(t, oldKeys, n, "distinct objects have distinct keys")
		assert.GreaterOrEqual(t, identities(), before+n)
		runtime.KeepAlive(objs)
	}()

	// The registry shrinks back once the objects are collected. This
	// waits for the collector's cleanups, not for other goroutines.
	dtGCUntil(func() bool { return identities() <= before+n/10 })
	assert.LessOrEqual(t, identities(), before+n/10, "identities after GC")

	// New objects of the same size reuse the old addresses; none may get
	// an old key.
	reused := 0
	var keep [][]*kObj
	for round := 0; round < 20 && reused < 10; round++ {
		objs := make([]*kObj, n)
		for i := range objs {
			objs[i] = &kObj{n: [5]int{i}}
			if oldAddrs[uintptr(unsafe.Pointer(objs[i]))] {
				reused++
			}
			assert.False(t, oldKeys[MakeHashable(objs[i])], "a new object got a collected object's key")
		}
		keep = append(keep, objs)
	}
	t.Logf("%d new objects at reused addresses", reused)
	require.Positive(t, reused, "no address was reused; the test proved nothing")
	runtime.KeepAlive(keep)
}

// TestIdentityStable checks that a live object keeps its key across
// collections.
func TestIdentityStable(t *testing.T) {
	o := &kObj{}
	k := MakeHashable(o)
	for range 3 {
		runtime.GC()
	}
	assert.True(t, k == MakeHashable(o))
	runtime.KeepAlive(o)
}

var kGlobal [4]int

// kForeign makes an unsafe.Pointer to an address the Go runtime does not
// manage. It reads the uintptr's memory as a pointer, which go vet accepts
// (a plain conversion is what vet warns about, rightly).
func kForeign(addr uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&addr))
}

// TestIdentityForeign checks pointers that are not to the Go heap: an
// address made up with unsafe, and pointers into a global.
func TestIdentityForeign(t *testing.T) {
	t.Parallel()
	bogus, other := kForeign(0xdeadbeef), kForeign(0xdeadbeef+8)
	assert.True(t, MakeHashable(bogus) == MakeHashable(bogus))
	assert.False(t, MakeHashable(bogus) == MakeHashable(other))

	g1, g2 := &kGlobal[1], &kGlobal[2]
	assert.True(t, MakeHashable(g1) == MakeHashable(&kGlobal[1]))
	assert.False(t, MakeHashable(g1) == MakeHashable(g2))
	assert.True(t, MakeHashable(unsafe.Pointer(g1)) == MakeHashable(unsafe.Pointer(g1)))
	runtime.GC()
	assert.True(t, MakeHashable(g1) == MakeHashable(&kGlobal[1]), "after GC")

	c := newCompiled(t, nil, anyType)
	assert.Equal(t, c.key(bogus), c.key(bogus))
	assert.Equal(t, c.key(g1), c.key(g1))
	assert.NotEqual(t, c.key(g1), c.key(g2))
}

func TestHashableWrapper(t *testing.T) {
	t.Parallel()
	a := NewHashableWrapper([]int{1, 2})
	b := NewHashableWrapper([]int{1, 2})
	assert.True(t, a == b, "equal slices")
	assert.Equal(t, a.Hash(), b.Hash())
	assert.Equal(t, []int{1, 2}, a.Value())

	assert.False(t, a == NewHashableWrapper([]int{2, 1}))
	assert.False(t, a == NewHashableWrapper([2]int{1, 2}), "slice vs array")
	assert.False(t, NewHashableWrapper(1) == NewHashableWrapper(int64(1)))
	assert.False(t, NewHashableWrapper(1) == NewHashableWrapper(kInt(1)))
	assert.True(t, NewHashableWrapper(math.NaN()) == NewHashableWrapper(math.Float64frombits(0x7ff8000000000001)))
	assert.False(t, NewHashableWrapper(math.Copysign(0, -1)) == NewHashableWrapper(0.0))
	assert.True(t, NewHashableWrapper(map[string]int{"a": 1, "b": 2}) == NewHashableWrapper(map[string]int{"b": 2, "a": 1}))
	assert.False(t, NewHashableWrapper([]int(nil)) == NewHashableWrapper([]int{}))
	assert.True(t, NewHashableWrapper(kTagged{1, "a", "b", "c"}) == NewHashableWrapper(kTagged{1, "x", "y", "z"}))
	assert.True(t, NewHashableWrapper(kFold("A")) == NewHashableWrapper(kFold("a")))
	n1, n2 := NewHashableWrapper(nil), NewHashableWrapper(nil)
	assert.True(t, n1 == n2)
	assert.False(t, NewHashableWrapper(nil) == HashableWrapper{}, "nil is wrapped, the zero wrapper wraps nothing")

	x, y := 1, 1
	assert.False(t, NewHashableWrapper(&x) == NewHashableWrapper(&y), "pointers by identity")
	px1, px2 := NewHashableWrapper(&x), NewHashableWrapper(&x)
	assert.True(t, px1 == px2)

	// Equal wrappers share the value wrapped first.
	first := kSelfKey{1, 5}
	w1 := NewHashableWrapper(first)
	w2 := NewHashableWrapper(kSelfKey{1, 9})
	assert.True(t, w1 == w2)
	assert.Equal(t, first, w2.Value())
	assert.Equal(t, w1.Hash(), w2.Hash())

	var zero HashableWrapper
	assert.Nil(t, zero.Value())
	assert.Zero(t, zero.Hash())
	assert.True(t, zero == HashableWrapper{})

	// A wrapper is a comparable map key.
	m := map[HashableWrapper]int{a: 1}
	assert.Equal(t, 1, m[NewHashableWrapper([]int{1, 2})])
}

// TestHashableWrapperHashCyclic checks that Hash, which uses
// hashstructure for acyclic values, neither hangs nor overflows the stack
// on values hashstructure cannot take.
func TestHashableWrapperHashCyclic(t *testing.T) {
	t.Parallel()
	s := []any{nil}
	s[0] = s
	m := map[string]any{}
	m["m"] = m
	p := &kNode{V: 1}
	p.Next = p
	f := func() {}
	ch := make(chan int)
	for _, v := range []any{s, m, p, []any{p}, f, ch} {
		w := NewHashableWrapper(v)
		assert.Equal(t, w.Hash(), NewHashableWrapper(v).Hash(), "%T", v)
		assert.True(t, w == NewHashableWrapper(v), "%T", v)
	}
	assert.False(t, NewHashableWrapper(f) == NewHashableWrapper(func() {}))
}

// TestHashableMakeHashableComparable checks that MakeHashable's results
// are comparable map keys that follow the key rules.
func TestHashableMakeHashableComparable(t *testing.T) {
	t.Parallel()
	m := map[any]string{}
	m[MakeHashable([]int{1, 2})] = "slice"
	m[MakeHashable([2]int{1, 2})] = "array"
	m[MakeHashable(map[string]int{"a": 1})] = "map"
	m[MakeHashable(math.NaN())] = "nan"
	require.Len(t, m, 4)
	assert.Equal(t, "slice", m[MakeHashable([]int{1, 2})])
	assert.Equal(t, "array", m[MakeHashable([2]int{1, 2})])
	assert.Equal(t, "map", m[MakeHashable(map[string]int{"a": 1})])
	assert.Equal(t, "nan", m[MakeHashable(-math.NaN())])
}
