package policies

import (
	"fmt"
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
