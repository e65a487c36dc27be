package memo

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

type bdNode struct {
	ID       int
	Parent   *bdNode
	Children []*bdNode
}

func (n *bdNode) CacheKey() any { return n.ID }

type bdRing struct {
	ID   int
	Prev *bdRing `memo:"-"`
}

type bdDAG struct {
	ID   int
	L, R *bdDAG
}

func (d *bdDAG) CacheKey() any { return d.ID }

type bdPanicHash struct{ N int }

func (bdPanicHash) Hash() (uint64, error) { panic("boom") }

// NewHashableWrapper and Hash never crash, hang or panic, whatever the
// value: cycles behind CacheKey or an ignored field overflowed the stack, a
// 60-level DAG behind CacheKey ran for over 20 s, a Hash method's panic
// escaped.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestWrapperHashNeverCrashes(t *testing.T) {
	root := &bdNode{ID: 1}
	root.Children = []*bdNode{{ID: 2, Parent: root}}
	ring := &bdRing{ID: 7}
	ring.Prev = ring
	dag := &bdDAG{ID: 0}
	for i := 1; i <= 60; i++ {
		dag = &bdDAG{ID: i, L: dag, R: dag}
	}
	cases := map[string]any{
		"cycle behind CacheKey":   root,
		"cycle behind memo:\"-\"": ring,
		"60-level DAG":            dag,
		"Hash panics":             bdPanicHash{5},
	}
	for name, v := range cases {
		// A hang shows as go test's -timeout, with every goroutine.
		w := NewHashableWrapper(v)
		assert.Equal(t, w, NewHashableWrapper(v), name)
		assert.Equal(t, w.Hash(), NewHashableWrapper(v).Hash(), name)
		assert.Equal(t, v, w.Value(), name)
	}
	// Equal by CacheKey: the same wrapper, whatever the structure.
	assert.Equal(t, NewHashableWrapper(&bdNode{ID: 1}), NewHashableWrapper(root))
	assert.NotEqual(t, NewHashableWrapper(&bdNode{ID: 2}), NewHashableWrapper(root))
}

// The raw walk refuses what hashstructure cannot walk within its budget
// and accepts small acyclic values.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestRawWalkable(t *testing.T) {
	walk := func(v any, budget int) bool { return rawWalkable(reflect.ValueOf(v), &budget, 0) }
	ring := &bdRing{ID: 1}
	ring.Prev = ring
	assert.False(t, walk(ring, 1<<20))
	type P *P
	var p P
	p = &p
	assert.False(t, walk(p, 1<<20), "a pointer to itself")
	dag := &bdDAG{}
	for i := 1; i <= 60; i++ {
		dag = &bdDAG{ID: i, L: dag, R: dag}
	}
	assert.False(t, walk(dag, 1<<20))
	assert.True(t, walk(struct {
		A int
		S []string
		M map[string]int
	}{1, []string{"a"}, map[string]int{"b": 2}}, 100))
	assert.False(t, walk(make([]int, 1000), 100))
}

// rvDoc keys itself by a wrapper of its func, as the original's users wrap
// unhashable members.
type rvDoc struct{ F func() }

func (d rvDoc) CacheKey() any { return NewHashableWrapper(d.F) }

// NewHashableWrapper calls hashOf under internMu, and hashOf walks the value
// again (acyclic), which calls CacheKey, which calls NewHashableWrapper:
// internMu is locked twice by one goroutine. The hang is run in a child
// process so that a locked internMu cannot hang this test binary.
func TestWrapperReentrantCacheKeyDeadlock(t *testing.T) {
	if os.Getenv("MEMO_WRAPPER_CHILD") == "1" {
		NewHashableWrapper(rvDoc{F: func() {}})
		return
	}
	// A self-deadlock hangs the child until its -test.timeout, a liveness
	// watchdog that reports the hang with every goroutine; nothing here
	// bounds its speed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestWrapperReentrantCacheKeyDeadlock$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "MEMO_WRAPPER_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.False(t, bytes.Contains(out, []byte("test timed out")), "NewHashableWrapper hung (self-deadlock on internMu)\n%s", tail(out))
	assert.NoError(t, err, "%s", tail(out))
}
