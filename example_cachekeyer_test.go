package memo_test

import (
	"fmt"

	"github.com/memokit/memo"
)

// query is what the options of a search configure.
type query struct {
	sort  string
	limit int
}

// PlainOption is a functional option as usually written: a func, which
// memo keys by identity.
type PlainOption func(*query)

func PlainSortBy(field string) PlainOption { return func(q *query) { q.sort = field } }

// Option is the same functional option with a CacheKey method, so that memo
// keys it by what it does to a query.
type Option func(*query)

func SortBy(field string) Option { return func(q *query) { q.sort = field } }
func Limit(n int) Option         { return func(q *query) { q.limit = n } }

// CacheKey applies the option to an empty query and returns the result.
func (o Option) CacheKey() any {
	var q query
	o(&q)
	return q
}

// Funcs and closures are keyed by identity, so functional options make
// every call a miss: each PlainSortBy("date") is a new closure. A CacheKey
// method on the option type keys each option by what it does instead.
func ExampleCacheKeyer() {
	runs := 0
	plain := memo.Decorate(func(term string, opts ...PlainOption) string {
		runs++
		return term
	})
	plain("go", PlainSortBy("date"))
	plain("go", PlainSortBy("date"))
	fmt.Println("plain options, executions:", runs)

	runs = 0
	search := memo.Decorate(func(term string, opts ...Option) string {
		runs++
		return term
	})
	search("go", SortBy("date"), Limit(10))
	search("go", SortBy("date"), Limit(10))
	search("go", SortBy("name"), Limit(10))
	fmt.Println("options with CacheKey, executions:", runs)
	// Output:
	// plain options, executions: 2
	// options with CacheKey, executions: 2
}
