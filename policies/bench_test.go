package policies

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The per-op cost must not grow with the number of entries.
var benchSizes = []int{1_000, 100_000, 1_000_000}

func fill(k Kind, size int) (Policy[int], []*Node[int]) {
	p := New[int](k)
	ns := nodes(size)
	for _, n := range ns {
		p.Add(n)
	}
	return p, ns
}

func BenchmarkTouch(b *testing.B) {
	for _, k := range kinds {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", k, size), func(b *testing.B) {
				p, ns := fill(k, size)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					// A stride through the nodes spreads LFU counts over
					// many buckets rather than walking one node up.
					p.Touch(ns[i])
					i = (i + 7919) % size
				}
			})
		}
	}
}

func BenchmarkAddEvict(b *testing.B) {
	for _, k := range kinds {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", k, size), func(b *testing.B) {
				p, ns := fill(k, size)
				for i, n := range ns {
					if i%3 == 0 { // some count variety for LFU
						p.Touch(n)
					}
				}
				b.ReportAllocs()
				for b.Loop() {
					v := p.Victim()
					p.Remove(v)
					p.Add(v) // reuse the node: measure the policy, not the allocator
				}
			})
		}
	}
}

// BenchmarkWTinyLFUTouch is a hit in a full W-TinyLFU cache: Touch on its
// entries in a stride, with the miniature simulations that size the
// window fed as a cache feeds them.
func BenchmarkWTinyLFUTouch(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p := newWTinyLFU(size, intHash)
			ns := nodes(size)
			for _, n := range ns {
				p.Add(n)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Touch(ns[i])
				i = (i + 7919) % size
			}
		})
	}
}

// BenchmarkWTinyLFUZipf drives a W-TinyLFU cache of 1,000 entries as a
// cache does (a hit touches; a miss adds and evicts the victim) with keys
// drawn Zipf(s=1.01) over 100,000, bench/'s steady workload without the
// cache around the policy: ns/op is the policy's cost per request, hits
// and misses mixed (hit% reports the mix).
func BenchmarkWTinyLFUZipf(b *testing.B) {
	const capacity, nKeys = 1_000, 100_000
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.01, 1, nKeys-1)
	keys := make([]int, 1<<20)
	for i := range keys {
		keys[i] = int(z.Uint64())
	}
	p := newWTinyLFU(capacity, intHash)
	idx := make([]*Node[int], nKeys)
	var free []*Node[int]
	access := func(k int) bool {
		if n := idx[k]; n != nil {
			p.Touch(n)
			return true
		}
		var n *Node[int]
		if len(free) > 0 {
			n, free = free[len(free)-1], free[:len(free)-1]
		} else {
			n = &Node[int]{}
		}
		n.Value = k
		p.Add(n)
		idx[k] = n
		for p.Len() > capacity {
			v := p.Victim()
			p.Remove(v)
			idx[v.Value] = nil
			free = append(free, v)
		}
		return false
	}
	for _, k := range keys { // a full, warm cache
		access(k)
	}
	b.ReportAllocs()
	i, hits := 0, 0
	for b.Loop() {
		if access(keys[i&(len(keys)-1)]) {
			hits++
		}
		i++
	}
	b.ReportMetric(100*float64(hits)/float64(i), "hit%")
}
