package bench

import (
	"context"
	"testing"

	"github.com/maypok86/otter/v2"

	"github.com/memokit/memo"
)

// BenchmarkBatch is issue 21's comparison: a batch function called with 100
// keys of which 90 are cached (drawn in turn from a warm set) and 10 are
// new, memo.Batch against a hand-written batch loader over otter v2's
// BulkGet, same capacity, same function. Named Batch/<impl>; each reports
// "hit%", the share of requested keys the function was not asked for.
func BenchmarkBatch(b *testing.B) {
	const (
		capacity = 1 << 18
		warm     = 10_000 // keys loaded before the timer starts
		perCall  = 100
		fresh    = 10 // new keys per call; the rest are warm
	)
	load := func(asked *int) func(context.Context, []int) (map[int]int, error) {
		return func(_ context.Context, keys []int) (map[int]int, error) {
			*asked += len(keys)
			m := make(map[int]int, len(keys))
			for _, k := range keys {
				m[k] = 2*k + 1
			}
			return m, nil
		}
	}
	// keysFor fills ks with call i's keys: 90 warm ones in turn, then 10
	// never asked before (above the warm set).
	keysFor := func(ks []int, i int) {
		for j := range perCall - fresh {
			ks[j] = (i*(perCall-fresh) + j) % warm
		}
		for j := range fresh {
			ks[perCall-fresh+j] = warm + i*fresh + j
		}
	}
	run := func(b *testing.B, get func(context.Context, []int) (map[int]int, error), asked *int) {
		ctx := context.Background()
		all := make([]int, warm)
		for i := range all {
			all[i] = i
		}
		for lo := 0; lo < warm; lo += 1000 {
			if _, err := get(ctx, all[lo:lo+1000]); err != nil {
				b.Fatal(err)
			}
		}
		*asked = 0
		ks := make([]int, perCall)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			keysFor(ks, i)
			m, err := get(ctx, ks)
			if err != nil || len(m) != perCall {
				b.Fatalf("call %d: %d values, %v", i, len(m), err)
			}
		}
		b.StopTimer()
		b.ReportMetric(100*(1-float64(*asked)/float64(b.N*perCall)), "hit%")
	}
	b.Run("memo", func(b *testing.B) {
		var asked int
		run(b, memo.Batch(load(&asked), memo.WithMaxSize(capacity)), &asked)
	})
	b.Run("otter", func(b *testing.B) {
		var asked int
		c := otter.Must(&otter.Options[int, int]{MaximumSize: capacity})
		loader := otter.BulkLoaderFunc[int, int](load(&asked))
		run(b, func(ctx context.Context, keys []int) (map[int]int, error) {
			return c.BulkGet(ctx, keys, loader)
		}, &asked)
	})
}
