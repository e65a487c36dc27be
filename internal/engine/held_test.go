package engine

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HeldFor keeps a result in its entry only for types Go boxes apart (a
// pointer to a copy in an interface); for an interface type, a
// pointer-shaped type (which an interface holds as itself) or a zero-sized
// one, Hold must return the value as Go boxes it. Getting this wrong
// either way makes an interface whose data word is misread: a wrong value.
func TestHeldForKinds(t *testing.T) {
	held := func(ht *HeldType) bool { return ht.typ != nil }
	assert.True(t, held(HeldFor[int](nil)), "int")
	assert.True(t, held(HeldFor[uint8](nil)), "uint8")
	assert.True(t, held(HeldFor[float64](nil)), "float64")
	assert.True(t, held(HeldFor[string](nil)), "string")
	assert.True(t, held(HeldFor[[]byte](nil)), "slice")
	assert.True(t, held(HeldFor[struct{ a, b int }](nil)), "struct of two ints")
	assert.True(t, held(HeldFor[struct{ a int }](nil)), "struct of one int")
	assert.True(t, held(HeldFor[[2]*int](nil)), "array of two pointers")
	assert.True(t, held(HeldFor[struct {
		p *int
		q int
	}](nil)), "pointer and int")
	assert.False(t, held(HeldFor[*int](nil)), "pointer")
	assert.False(t, held(HeldFor[map[int]int](nil)), "map")
	assert.False(t, held(HeldFor[chan int](nil)), "chan")
	assert.False(t, held(HeldFor[func()](nil)), "func")
	assert.False(t, held(HeldFor[unsafe.Pointer](nil)), "unsafe.Pointer")
	assert.False(t, held(HeldFor[struct{ p *int }](nil)), "struct of one pointer")
	assert.False(t, held(HeldFor[[1]*int](nil)), "array of one pointer")
	assert.False(t, held(HeldFor[any](nil)), "any")
	assert.False(t, held(HeldFor[error](nil)), "error")
	assert.False(t, held(HeldFor[struct{}](nil)), "zero-sized")

	a := HeldFor[int](nil)
	assert.Same(t, a, HeldFor[int](a), "made once per type")
	assert.NotSame(t, a, HeldFor[uint64](a), "another type")
}

// holdRoundTrip holds v for a call, stores it as Store would and reads it
// back through the entry after a collection: the same value, and the entry
// is the one Hold made.
func holdRoundTrip[T any](t *testing.T, v T, eq func(a, b T) bool) {
	t.Helper()
	cl := &Call{Key: "\x01\x00\x00\x00\x00\x00\x00\x00key"}
	e := Hold(cl, v, HeldFor[T](nil))
	got, ok := e.(T)
	require.True(t, ok, "%T", v)
	assert.True(t, eq(v, got), "%v: held %v", v, got)
	n := entryFor(cl, cl.Key, e)
	assert.Nil(t, cl.held, "taken")
	runtime.GC()
	got, ok = n.Value.Value().(T)
	require.True(t, ok)
	assert.True(t, eq(v, got), "%v: stored %v", v, got)
	assert.Equal(t, cl.Key, KeyOf(n))
	if HeldFor[T](nil).typ != nil {
		// the entry holds the value
		d := uintptr((*eface)(unsafe.Pointer(&e)).data)
		assert.Greater(t, d, uintptr(unsafe.Pointer(n)), "value after the node")
	}
}

func TestHoldRoundTrip(t *testing.T) {
	same := func(a, b int) bool { return a == b }
	holdRoundTrip(t, 1<<40, same)
	holdRoundTrip(t, "a string", func(a, b string) bool { return a == b })
	x := 7
	holdRoundTrip(t, &x, func(a, b *int) bool { return a == b })
	holdRoundTrip(t, []int{1, 2, 3}, func(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) })
	type pair struct {
		p *int
		s string
	}
	holdRoundTrip(t, pair{&x, "s"}, func(a, b pair) bool { return a == b })
	holdRoundTrip(t, any(42), func(a, b any) bool { return a == b })
	err := errors.New("e")
	holdRoundTrip(t, err, func(a, b error) bool { return a == b })
	holdRoundTrip(t, struct{}{}, func(a, b struct{}) bool { return true })
	holdRoundTrip(t, [100]int{99: 5}, func(a, b [100]int) bool { return a == b })
}

// An entry taken from a call must hold the very value stored: a call whose
// value was replaced (a stale result served for a failure) or whose key
// differs gets a new entry, never the held one.
func TestEntryForMismatch(t *testing.T) {
	cl := &Call{Key: "\x01\x00\x00\x00\x00\x00\x00\x00key"}
	Hold(cl, 1<<40, HeldFor[int](nil))
	held := cl.held
	n := entryFor(cl, cl.Key, any(1<<41))
	assert.NotSame(t, held, n)
	assert.Equal(t, 1<<41, n.Value.Value())

	e := Hold(cl, 1<<40, HeldFor[int](nil))
	held = cl.held
	n = entryFor(cl, "\x01\x00\x00\x00\x00\x00\x00\x00other", e)
	assert.NotSame(t, held, n)
	assert.Equal(t, "\x01\x00\x00\x00\x00\x00\x00\x00other", KeyOf(n))
	assert.Equal(t, 1<<40, n.Value.Value())
	assert.Nil(t, cl.held)

	n = entryFor(nil, "k", 3)
	assert.Equal(t, 3, n.Value.Value())
}
