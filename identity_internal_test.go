package memo

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/memokit/memo/internal/keys"
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
	before := keys.Identities()

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
		assert.GreaterOrEqual(t, keys.Identities(), before+n)
		runtime.KeepAlive(objs)
	}()

	// The registry shrinks back once the objects are collected. This
	// waits for the collector's cleanups, not for other goroutines.
	dtGCUntil(func() bool { return keys.Identities() <= before+n/10 })
	assert.LessOrEqual(t, keys.Identities(), before+n/10, "identities after GC")

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
