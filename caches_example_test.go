package memo_test

import (
	"fmt"
	"strings"

	"github.com/memokit/memo"
)

func square(n int) int { return n * n }

// Caches lists every live cache: here a decorated function named by its
// symbol, one named with WithName, and a cache shared by two functions,
// listed once.
func ExampleCaches() {
	sq := memo.Func(square)
	users := memo.Decorate(func(id int) string { return fmt.Sprint("user-", id) }, memo.WithName("example/users"))
	shared := memo.MustNew(memo.WithMaxSize(100), memo.WithName("example/shared"))
	double := memo.Func(func(n int) int { return 2 * n }, memo.WithCache(shared))
	half := memo.Func(func(n int) int { return n / 2 }, memo.WithCache(shared))
	sq(3)
	sq(3)
	users(1)
	double(4)
	half(4)

	ours := map[*memo.Cache]bool{memo.CacheOf(sq): true, memo.CacheOf(users): true, shared: true}
	for name, c := range memo.Caches() {
		if ours[c] { // other caches of the process are listed too
			// A name taken by a live cache gets a suffix, "#2"; an earlier
			// run of this example may not have been collected yet.
			name, _, _ = strings.Cut(name, "#")
			s := c.Stats()
			fmt.Printf("%s: %d hits, %d misses, %d/%d entries\n", name, s.Hits, s.Misses, s.CurrentSize, s.MaxSize)
		}
	}
	// Output:
	// example/shared: 0 hits, 2 misses, 2/100 entries
	// example/users: 0 hits, 1 misses, 1/1024 entries
	// memo_test.square: 1 hits, 1 misses, 1/1024 entries
}
