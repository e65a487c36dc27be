package memo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/memokit/memo"
)

// A batch loader, memoized key by key: the second call asks the source for
// the one key it has not loaded yet, and a user the source does not have
// is absent from the result.
func ExampleBatch() {
	users := map[int]string{1: "ada", 2: "grace", 3: "edsger"}
	load := memo.Batch(func(_ context.Context, ids []int) (map[int]string, error) {
		fmt.Println("loading", slices.Sorted(slices.Values(ids)))
		found := map[int]string{}
		for _, id := range ids {
			if name, ok := users[id]; ok {
				found[id] = name
			}
		}
		return found, nil // ids left out are absent
	})
	ctx := context.Background()
	got, _ := load(ctx, []int{1, 2})
	fmt.Println(got)
	got, _ = load(ctx, []int{2, 3, 9})
	fmt.Println(got)
	// Output:
	// loading [1 2]
	// map[1:ada 2:grace]
	// loading [3 9]
	// map[2:grace 3:edsger]
}

// The single-key form of a batch function shares its entries: a key the
// batch loaded is a hit, and a key the source does not have is
// memo.ErrNotFound.
func ExampleSingle() {
	var calls atomic.Int32 // fn may run in several goroutines at once
	load := memo.Batch(func(_ context.Context, ids []int) (map[int]string, error) {
		calls.Add(1)
		found := map[int]string{}
		for _, id := range ids {
			if id < 100 {
				found[id] = fmt.Sprintf("user %d", id)
			}
		}
		return found, nil
	})
	user := memo.Single(load)
	ctx := context.Background()
	_, _ = load(ctx, []int{1, 2, 3})
	name, err := user(ctx, 2)
	fmt.Println(name, err, "calls:", calls.Load())
	_, err = user(ctx, 404)
	fmt.Println(errors.Is(err, memo.ErrNotFound), "calls:", calls.Load())
	// Output:
	// user 2 <nil> calls: 1
	// true calls: 2
}
