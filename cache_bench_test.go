package memo_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/memokit/memo"
)

// hitKeys fills a new cache of n entries with int keys 0..n-1 and returns
// those keys, already boxed (so that the benchmark measures the cache, not
// the conversion of an int to an interface), in a pseudo-random order.
func hitKeys(b *testing.B, n int) (*memo.Cache, []any) {
	b.Helper()
	c, err := memo.New(memo.WithMaxSize(n))
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c.Set(i, i)
	}
	// Box the keys after shuffling, so that the boxes lie in memory in the
	// order the benchmark reads them: the harness's own loads then stream,
	// and what grows with n is the cache's.
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	keys := make([]any, n)
	for i, k := range perm {
		keys[i] = k
	}
	if c.Len() != n {
		b.Fatalf("Len() = %d after filling %d", c.Len(), n)
	}
	return c, keys
}

// BenchmarkCacheGetHit measures Get hits over every key of a full cache in
// a pseudo-random order. The cost per hit should not depend much on the
// size: the cache is O(1), and what grows is only the processor cache
// misses of a larger working set.
func BenchmarkCacheGetHit(b *testing.B) {
	for _, n := range []int{1e3, 1e5, 1e6} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, keys := hitKeys(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Get(keys[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkCacheGetHitParallel is BenchmarkCacheGetHit at 1e3 entries from
// GOMAXPROCS goroutines, each walking the keys from its own offset.
func BenchmarkCacheGetHitParallel(b *testing.B) {
	const n = 1e3
	c, keys := hitKeys(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	var goroutines atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(goroutines.Add(1)) * 7919 % n
		for pb.Next() {
			if _, err := c.Get(keys[i]); err != nil {
				b.Error(err)
				return
			}
			if i++; i == n {
				i = 0
			}
		}
	})
}

// BenchmarkMapGetHitBaseline is the floor under BenchmarkCacheGetHit: the
// same pseudo-random walk over n keys through a plain map[string]*entry
// keyed by 8-byte strings, with no cache around it. Its growth with n is the
// processor cache's, and the cache's growth is measured against it.
func BenchmarkMapGetHitBaseline(b *testing.B) {
	type entry struct{ val any }
	for _, n := range []int{1e3, 1e5, 1e6} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := make(map[string]*entry)
			key := func(i int) string { return string(binary.LittleEndian.AppendUint64(nil, uint64(i))) }
			for i := range n {
				m[key(i)] = &entry{i}
			}
			perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
			keys := make([]string, n)
			for i, k := range perm {
				keys[i] = key(k)
			}
			b.ReportAllocs()
			i := 0
			var sink any
			for b.Loop() {
				sink = m[keys[i]].val
				if i++; i == len(keys) {
					i = 0
				}
			}
			_ = sink
		})
	}
}

// BenchmarkCacheGetHitHotSet measures Get hits over a hot set of 1024 keys
// spread over a full cache of n entries. The working set the processor
// caches see is the same at every size, so this isolates the cost of the
// cache's own algorithm: O(1) here, where the original's LRU and LFU scan
// a deque (O(n) per hit).
func BenchmarkCacheGetHitHotSet(b *testing.B) {
	for _, n := range []int{1e3, 1e5, 1e6} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, all := hitKeys(b, n)
			hot := all[:min(len(all), 1024)]
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Get(hot[i]); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(hot) {
					i = 0
				}
			}
		})
	}
}
