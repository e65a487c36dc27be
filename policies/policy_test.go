package policies

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var kinds = []Kind{LRU, LFU}

// nodes returns n fresh nodes valued 0..n-1.
func nodes(n int) []*Node[int] {
	ns := make([]*Node[int], n)
	for i := range ns {
		ns[i] = &Node[int]{Value: i}
	}
	return ns
}

// drain evicts everything, returning the values in eviction order.
func drain(p Policy[int]) []int {
	var out []int
	for v := p.Victim(); v != nil; v = p.Victim() {
		p.Remove(v)
		out = append(out, v.Value)
	}
	return out
}

func assertUnlinked(t *testing.T, n *Node[int]) {
	t.Helper()
	assert.Nil(t, n.prev, "prev of %d", n.Value)
	assert.Nil(t, n.next, "next of %d", n.Value)
	assert.Nil(t, n.bucket, "bucket of %d", n.Value)
}

func TestLRUOrder(t *testing.T) {
	t.Parallel()
	p := New[int](LRU)
	ns := nodes(5)
	for _, n := range ns {
		p.Add(n)
	}
	assert.Equal(t, 5, p.Len())
	assert.Same(t, ns[0], p.Victim())
	p.Touch(ns[0]) // 1 2 3 4 0
	p.Touch(ns[2]) // 1 3 4 0 2
	p.Touch(ns[2]) // touching the most recent changes nothing
	assert.Equal(t, []int{1, 3, 4, 0, 2}, drain(p))
	assert.Zero(t, p.Len())
	assert.Nil(t, p.Victim())
}

func TestLFUCounts(t *testing.T) {
	t.Parallel()
	p := New[int](LFU)
	ns := nodes(4)
	for _, n := range ns {
		p.Add(n)
	}
	// counts: 0→3, 1→1, 2→2, 3→1
	p.Touch(ns[0])
	p.Touch(ns[0])
	p.Touch(ns[2])
	assert.Same(t, ns[1], p.Victim())
	l := p.(*lfu[int])
	assert.Equal(t, 3, ns[0].bucket.count)
	assert.Equal(t, 1, ns[1].bucket.count)
	assert.Equal(t, 2, ns[2].bucket.count)
	assert.Equal(t, []int{1, 3, 2, 0}, drain(p))
	assert.Same(t, &l.root, l.root.next, "no empty buckets left")
}

func TestLFUTies(t *testing.T) {
	t.Parallel()
	p := New[int](LFU)
	ns := nodes(4)
	for _, n := range ns {
		p.Add(n)
	}
	// 3 and 1 reach count 2, in that order; 0 and 2 stay at 1, added 0 first.
	p.Touch(ns[3])
	p.Touch(ns[1])
	assert.Same(t, ns[0], p.Victim())
	// A newcomer at count 1 goes after the older count-1 entries.
	n4 := &Node[int]{Value: 4}
	p.Add(n4)
	// 2 reaches count 2 after 3 and 1, so it goes after them.
	p.Touch(ns[2])
	assert.Equal(t, []int{0, 4, 3, 1, 2}, drain(p))
}

func TestLFUNewEntryIsVictimAmongEquals(t *testing.T) {
	t.Parallel()
	// A new entry has the lowest count, so it is the next victim once the
	// older entries have been used: plain LFU's weakness on scans.
	p := New[int](LFU)
	ns := nodes(3)
	p.Add(ns[0])
	p.Add(ns[1])
	p.Touch(ns[0])
	p.Touch(ns[1])
	p.Add(ns[2])
	assert.Same(t, ns[2], p.Victim())
}

func TestStaleNodesAreNoOps(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			p := New[int](k)
			other := New[int](k)
			ns := nodes(4)
			for _, n := range ns[:3] {
				p.Add(n)
			}
			foreign := &Node[int]{Value: 9}
			other.Add(foreign)

			never := ns[3]
			p.Touch(never)
			p.Remove(never)
			assertUnlinked(t, never)

			p.Touch(foreign)
			p.Remove(foreign)
			assert.Equal(t, 3, p.Len())
			assert.Equal(t, 1, other.Len(), "a foreign node stays in its policy")
			assert.Same(t, foreign, other.Victim())

			p.Remove(ns[1])
			assertUnlinked(t, ns[1])
			p.Remove(ns[1])
			p.Touch(ns[1])
			assert.Equal(t, 2, p.Len())
			assertUnlinked(t, ns[1])

			p.Clear()
			assert.Zero(t, p.Len())
			assert.Nil(t, p.Victim())
			for _, n := range ns {
				assertUnlinked(t, n)
				p.Touch(n)
				p.Remove(n)
				assertUnlinked(t, n)
			}
			assert.Zero(t, p.Len())

			// Cleared and removed nodes can be added again.
			for _, n := range ns {
				p.Add(n)
			}
			assert.Equal(t, []int{0, 1, 2, 3}, drain(p))
			for _, n := range ns {
				assertUnlinked(t, n)
			}
		})
	}
}

func TestAddLinkedPanics(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		p, other := New[int](k), New[int](k)
		n := &Node[int]{}
		p.Add(n)
		require.Panics(t, func() { p.Add(n) }, k.String())
		require.Panics(t, func() { other.Add(n) }, k.String())
		assert.Equal(t, 1, p.Len())
		assert.Zero(t, other.Len())
	}
}

func TestReplaceKeepsPlace(t *testing.T) {
	for _, k := range []Kind{LRU, LFU} {
		t.Run(k.String(), func(t *testing.T) {
			p := New[int](k)
			a, b, c := &Node[int]{Value: 1}, &Node[int]{Value: 2}, &Node[int]{Value: 3}
			p.Add(a)
			p.Add(b)
			p.Add(c)
			p.Touch(a) // LRU order b, c, a; LFU: b(1), c(1), a(2)
			b2 := &Node[int]{Value: 20}
			p.Replace(b, b2)
			require.Equal(t, 3, p.Len())
			assert.Same(t, b2, p.Victim(), "the replacement keeps the victim's place")
			p.Touch(b) // b is unlinked now: a no-op
			assert.Same(t, b2, p.Victim())
			p.Remove(b2)
			assert.Same(t, c, p.Victim())
			// Replacing a node that is not in the policy adds the new one.
			d := &Node[int]{Value: 4}
			p.Replace(&Node[int]{}, d)
			assert.Equal(t, 3, p.Len())
		})
	}
}
