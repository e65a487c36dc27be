package policies

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// reference is a slow, obviously correct policy: a slice of entries, each
// with its use count and the time it reached that count. LRU evicts the
// entry with the oldest stamp; LFU the lowest count, then the oldest stamp.
type reference struct {
	kind    Kind
	entries []refEntry
	clock   int
}

type refEntry struct {
	id, count, stamp int
}

func (r *reference) find(id int) int {
	return slices.IndexFunc(r.entries, func(e refEntry) bool { return e.id == id })
}

func (r *reference) add(id int) {
	r.clock++
	r.entries = append(r.entries, refEntry{id: id, count: 1, stamp: r.clock})
}

func (r *reference) touch(id int) {
	if i := r.find(id); i >= 0 {
		r.clock++
		r.entries[i].count++
		r.entries[i].stamp = r.clock
	}
}

func (r *reference) remove(id int) {
	if i := r.find(id); i >= 0 {
		r.entries = slices.Delete(r.entries, i, i+1)
	}
}

func (r *reference) victim() int {
	if len(r.entries) == 0 {
		return -1
	}
	best := r.entries[0]
	for _, e := range r.entries[1:] {
		if r.kind == LFU && e.count != best.count {
			if e.count < best.count {
				best = e
			}
			continue
		}
		if e.stamp < best.stamp {
			best = e
		}
	}
	return best.id
}

// check drives a policy and the reference with the same operations, decoded
// from ops, and fails at the first difference.
func check(t *testing.T, k Kind, ops []byte) {
	t.Helper()
	const ids = 16
	p := New[int](k)
	ref := &reference{kind: k}
	ns := nodes(ids)
	for i, op := range ops {
		id := int(op) % ids
		n := ns[id]
		switch op / ids % 8 {
		case 0, 1, 2: // add when absent, else touch
			if ref.find(id) < 0 {
				p.Add(n)
				ref.add(id)
			} else {
				p.Touch(n)
				ref.touch(id)
			}
		case 3, 4: // touch, present or not
			p.Touch(n)
			ref.touch(id)
		case 5: // remove, present or not
			p.Remove(n)
			ref.remove(id)
		case 6: // evict
			if v := p.Victim(); v != nil {
				p.Remove(v)
				ref.remove(v.Value)
			}
		case 7:
			if op%5 == 0 {
				p.Clear()
				ref.entries = ref.entries[:0]
			}
		}
		got, want := -1, ref.victim()
		if v := p.Victim(); v != nil {
			got = v.Value
		}
		if got != want || p.Len() != len(ref.entries) {
			t.Fatalf("%v: after op %d (%d): victim %d len %d, want victim %d len %d",
				k, i, op, got, p.Len(), want, len(ref.entries))
		}
	}
	// Eviction order must agree to the end.
	for p.Len() > 0 {
		v := p.Victim()
		if want := ref.victim(); v.Value != want {
			t.Fatalf("%v: draining: victim %d, want %d", k, v.Value, want)
		}
		p.Remove(v)
		ref.remove(v.Value)
	}
}

func TestAgainstReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kinds {
		for range 200 {
			ops := make([]byte, rng.IntN(400))
			for i := range ops {
				ops[i] = byte(rng.UintN(256))
			}
			check(t, k, ops)
		}
	}
}

func FuzzAgainstReference(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 16, 17, 48, 49, 96, 112})
	f.Add([]byte("the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, k := range kinds {
			check(t, k, ops)
		}
	})
}
