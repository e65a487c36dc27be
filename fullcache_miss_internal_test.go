package memo

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFullCacheMissAllocatesItsEntryOnly: in a full cache of 12,000 to
// 16,384 entries, where every miss evicts, a miss allocates its entry and
// about nothing more: the index's table (32K slots, 256 KiB) is not
// rebuilt at every few misses, as it was when a table made for more than
// 8,192 entries was held to the small tables' bound (half full) and was
// left with next to no room past its entries (WithMaxSize(16383): 105 KB
// allocated per miss).
func TestFullCacheMissAllocatesItsEntryOnly(t *testing.T) {
	for _, size := range []int{12000, 16000, 16380, 16383, 16384} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			f := Func(func(i int) int { return -i }, WithMaxSize(size))
			for i := range 2 * size {
				f(i)
			}
			const misses = 4000
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := 2 * size; i < 2*size+misses; i++ {
				if f(i) != -i {
					t.Fatalf("f(%d) = %d", i, f(i))
				}
			}
			runtime.ReadMemStats(&after)
			perMiss := (after.TotalAlloc - before.TotalAlloc) / misses
			assert.Less(t, perMiss, uint64(1024), "bytes allocated per miss")
		})
	}
}
