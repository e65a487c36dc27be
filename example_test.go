package memo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
)

func ExampleDecorate() {
	calls := 0
	square := memo.Decorate(func(n int) int {
		calls++
		return n * n
	})
	fmt.Println(square(4), square(4), square(5))
	fmt.Println("executions:", calls)
	// Output:
	// 16 16 25
	// executions: 2
}

type Catalog struct{ name string }

func (c *Catalog) Title(id int) string {
	return fmt.Sprintf("%s #%d", c.name, id)
}

// A method expression caches per receiver: each instance has its own
// entries, and the cache does not keep instances alive.
func ExampleDecorate_method() {
	title := memo.Decorate((*Catalog).Title)
	books, films := &Catalog{"book"}, &Catalog{"film"}
	fmt.Println(title(books, 1))
	fmt.Println(title(films, 1))
	fmt.Println(title(books, 1))
	fmt.Println("entries:", memo.CacheOf(title).Len())
	// Output:
	// book #1
	// film #1
	// book #1
	// entries: 2
}

// A leading context.Context is not part of the key; a caller whose context
// ends stops waiting with ctx.Err().
func ExampleDecorate_context() {
	lookup := memo.Decorate(func(ctx context.Context, user string) (string, error) {
		if user == "" {
			return "", errors.New("no user") // errors are not cached
		}
		return strings.ToUpper(user), nil
	})
	name, err := lookup(context.Background(), "ada")
	fmt.Println(name, err)
	_, err = lookup(context.Background(), "")
	fmt.Println(err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = lookup(ctx, "grace")
	fmt.Println(err)
	// Output:
	// ADA <nil>
	// no user
	// context canceled
}

func ExampleCacheOf() {
	double := memo.Decorate(func(n int) int { return 2 * n })
	for _, n := range []int{1, 2, 1, 1} {
		double(n)
	}
	st := memo.CacheOf(double).Stats()
	fmt.Println("hits:", st.Hits, "misses:", st.Misses, "calls:", st.TotalCalls)
	fmt.Printf("hit ratio: %.2f\n", st.HitRatio())
	// Output:
	// hits: 2 misses: 2 calls: 2
	// hit ratio: 0.50
}

func ExampleInvalidate() {
	version := 1
	config := memo.Decorate(func(name string) string {
		return fmt.Sprintf("%s v%d", name, version)
	})
	fmt.Println(config("db"))
	version = 2
	fmt.Println(config("db")) // still cached
	fmt.Println(memo.Invalidate(config, "db"))
	fmt.Println(config("db"))
	// Output:
	// db v1
	// db v1
	// true
	// db v2
}

func ExampleNew() {
	c := memo.MustNew(memo.WithMaxSize(2), memo.WithPolicy(policies.LRU))
	c.Set("a", 1)
	c.Set("b", 2)
	c.Get("a")    // a is now more recent than b
	c.Set("c", 3) // evicts b
	_, err := c.Get("b")
	fmt.Println(errors.Is(err, memo.ErrNotFound), c.Len())
	// Output:
	// true 2
}

func ExampleMakeHashable() {
	a := memo.MakeHashable(map[string]int{"x": 1, "y": 2})
	b := memo.MakeHashable(map[string]int{"y": 2, "x": 1})
	fmt.Println(a == b)
	fmt.Println(memo.MakeHashable(1) == memo.MakeHashable(int64(1)))
	// Output:
	// true
	// false
}

// WithKey keys calls by a key of your own. Here the arguments include
// functional options, funcs that memo keys by identity (every sortBy("date")
// is a new closure, so every call would miss); the key is the query the
// options make.
func ExampleWithKey() {
	type query struct {
		Sort  string
		Limit int
	}
	type option func(*query)
	sortBy := func(field string) option { return func(q *query) { q.Sort = field } }

	runs := 0
	search := memo.Decorate(func(term string, opts ...option) string {
		runs++
		return term
	}, memo.WithKey(func(args []any) any {
		var q query
		for _, o := range args[1].([]option) {
			o(&q)
		}
		return struct {
			Term string
			Q    query
		}{args[0].(string), q}
	}))
	search("go", sortBy("date"))
	search("go", sortBy("date"))
	search("go", sortBy("name"))
	fmt.Println("executions:", runs)
	// Output:
	// executions: 2
}

// A hit returns the very values the execution returned, to every caller: a
// caller that modifies a returned slice changes what later hits see. Treat
// results as read-only, and copy where a caller needs its own.
func ExampleDecorate_sharedResults() {
	tags := memo.Decorate(func(id int) []string { return []string{"a", "b"} })

	mine := slices.Clone(tags(1)) // a copy of its own: safe to modify
	mine[0] = "changed"
	fmt.Println(tags(1))

	shared := tags(1)
	shared[0] = "changed" // modifies the cached slice
	fmt.Println(tags(1))
	// Output:
	// [a b]
	// [changed b]
}

// ClearAll clears every decorated function in the process, so it cannot
// isolate tests that run in parallel. A test that runs in parallel
// decorates the code under test with a cache of its own (WithCache, or a
// fresh Decorate); serial tests that share a package-level function clear
// that function's cache (in a test: t.Cleanup(memo.CacheOf(f).Clear)).
func ExampleClearAll() {
	load := func(id int) string { return fmt.Sprint("user-", id) }

	// In a parallel test: a cache that no other test sees.
	own := memo.MustNew(memo.WithMaxSize(100))
	getUser := memo.Decorate(load, memo.WithCache(own))
	getUser(1)
	getUser(1)
	fmt.Println("this test's hits:", own.Stats().Hits)

	// Between serial tests: clear one function's cache, statistics included.
	memo.CacheOf(getUser).Clear()
	fmt.Println("after Clear:", own.Len(), "entries,", own.Stats().Hits, "hits")
	// Output:
	// this test's hits: 1
	// after Clear: 0 entries, 0 hits
}
