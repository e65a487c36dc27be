// Command quickstart shows memo on a slow function: a cold call, a warm
// call, and 50 goroutines asking for one key at once, then the statistics.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/memokit/memo"
)

// lookupUser stands for a slow remote lookup.
func lookupUser(ctx context.Context, id int) (string, error) {
	select {
	case <-time.After(200 * time.Millisecond):
		return fmt.Sprintf("user-%d", id), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func main() {
	getUser := memo.Decorate(lookupUser, memo.WithMaxSize(1000), memo.WithTTL(time.Minute))
	ctx := context.Background()

	start := time.Now()
	name, _ := getUser(ctx, 42)
	fmt.Printf("cold call: %-8s in %v\n", name, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	name, _ = getUser(ctx, 42)
	fmt.Printf("warm call: %-8s in %v\n", name, time.Since(start).Round(time.Microsecond))

	// 50 goroutines ask for a key nobody has asked for: one execution
	// serves them all.
	start = time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { getUser(ctx, 7) })
	}
	wg.Wait()
	fmt.Printf("50 concurrent callers of one key: done in %v\n\n", time.Since(start).Round(time.Millisecond))

	st := memo.CacheOf(getUser).Stats()
	fmt.Println(st)
	fmt.Println()
	fmt.Println("Stats().Map():", st.Map())
}
