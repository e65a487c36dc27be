package memo_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/memokit/memo"
)

// Refresh-ahead: a hit on an entry older than the interval returns it at
// once and refreshes it in the background.
func ExampleWithRefreshAfter() {
	version := 0
	price := memo.Func(func(item string) string {
		version++
		return fmt.Sprintf("%s price v%d", item, version)
	}, memo.WithTTL(time.Hour), memo.WithRefreshAfter(20*time.Millisecond))

	fmt.Println(price("tea"))
	time.Sleep(30 * time.Millisecond) // older than the refresh interval
	fmt.Println(price("tea"))         // at once, the stored result; a refresh starts

	for memo.CacheOf(price).Stats().RefreshesSucceeded == 0 {
		time.Sleep(time.Millisecond) // the refresh runs in its own goroutine
	}
	fmt.Println(price("tea"))
	// Output:
	// tea price v1
	// tea price v1
	// tea price v2
}

// Stale-if-error: when the execution that would replace an expired entry
// fails, its callers get the expired result instead of the error.
func ExampleWithStaleIfError() {
	down := false
	rate := memo.FuncErr(func(currency string) (float64, error) {
		if down {
			return 0, errors.New("rates service unavailable")
		}
		return 1.08, nil
	}, memo.WithTTL(20*time.Millisecond), memo.WithStaleIfError(time.Hour))

	fmt.Println(rate("EUR"))
	time.Sleep(30 * time.Millisecond) // expired
	down = true
	fmt.Println(rate("EUR")) // the service fails: the stale rate, no error
	fmt.Println("stale served:", memo.CacheOf(rate).Stats().StaleServed)
	// Output:
	// 1.08 <nil>
	// 1.08 <nil>
	// stale served: 1
}

// Per-result TTL: keep each response as long as it says.
func ExampleWithTTLFunc() {
	type response struct {
		body   string
		maxAge time.Duration // 0: must not be cached
	}
	calls := 0
	get := memo.Func(func(path string) response {
		calls++
		if path == "/live" {
			return response{"live score", 0}
		}
		return response{"about us", time.Hour}
	}, memo.WithTTLFunc(func(results []any) time.Duration {
		return results[0].(response).maxAge
	}))

	for range 3 {
		get("/about")
		get("/live")
	}
	fmt.Println("executions:", calls)
	fmt.Println("not stored:", memo.CacheOf(get).Stats().Rejected)
	// Output:
	// executions: 4
	// not stored: 3
}

// A store predicate: empty search results are returned but not stored.
func ExampleWithCacheIf() {
	calls := 0
	search := memo.FuncErr(func(q string) ([]string, error) {
		calls++
		if q == "go" {
			return []string{"go.dev"}, nil
		}
		return nil, nil
	}, memo.WithCacheIf(func(results []any) bool {
		hits, _ := results[0].([]string)
		return len(hits) > 0
	}))

	for range 2 {
		fmt.Println(search("go"))
		fmt.Println(search("cobol"))
	}
	fmt.Println("executions:", calls)
	// Output:
	// [go.dev] <nil>
	// [] <nil>
	// [go.dev] <nil>
	// [] <nil>
	// executions: 3
}

// TTL jitter: each entry lives between 54 and 60 minutes, so entries
// stored together do not all expire together.
func ExampleWithTTLJitter() {
	c := memo.MustNew(memo.WithMaxSize(1000), memo.WithTTL(time.Hour), memo.WithTTLJitter(0.1))
	for i := range 100 {
		c.Set(i, i*i)
	}
	v, err := c.Get(7)
	fmt.Println(v, err, c.Len())

	_, err = memo.New(memo.WithMaxSize(10), memo.WithTTL(time.Hour), memo.WithTTLJitter(1.5))
	fmt.Println(err)
	// Output:
	// 49 <nil> 100
	// memo: WithTTLJitter(1.5): the fraction must be above 0 and below 1, as 0.1 for TTLs from 90% to 100%
}
