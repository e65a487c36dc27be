// Package bench compares memo's hit path with a direct call and with
// hand-written memoizers over otter v2 and golang-lru v2, the two caches a Go
// developer would otherwise reach for. It is its own module so that memo's
// users never download the peers.
//
// The benchmarks measure hits only, but for BenchmarkMiss: the cache
// (capacity 4096; 1024 in the ...Full benchmarks) is filled with 1024 keys
// before the timer starts, and iteration i asks for key i&1023. memo's
// "typed" and "decorate" use its default policy, W-TinyLFU; "typed-lru"
// the original's LRU.
package bench

import (
	"context"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
	"github.com/mitchellh/hashstructure/v2"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
)

const (
	nKeys    = 1024 // distinct keys cycled through; a power of two
	keyMask  = nKeys - 1
	capacity = 4096 // every cache's size; larger than nKeys, so all calls hit
)

// The memoized functions are cheap on purpose: the benchmarks measure the
// cost of the memoizer, not of the work it saves.

//go:noinline
func square(i int) int { return i*i + 1 }

//go:noinline
func greet(_ context.Context, s string) (string, error) { return s, nil }

// Query is a struct argument with a slice field, the shape of a typical
// request. It is not comparable, so a hand-written memo over otter or
// golang-lru needs a derived key.
type Query struct {
	Tenant string
	Limit  int
	Tags   []string
}

//go:noinline
func runQuery(q Query) int { return len(q.Tenant) + q.Limit + len(q.Tags) }

// Hand-written memos, as a developer would write them over each peer: look
// up, and on a miss compute and store. They do not coalesce concurrent
// misses, which memo does; on a hit that costs nothing.

func otterMemo[K comparable, V any](fn func(K) V) func(K) V {
	return otterMemoWith(fn, &otter.Options[K, V]{MaximumSize: capacity})
}

// inline is an otter Executor that runs its maintenance (draining the read
// buffer into the policy, as memo does) on the calling goroutine instead of
// a new one: otter's own hit with the policy work counted in it.
func inline(fn func()) { fn() }

func otterMemoWith[K comparable, V any](fn func(K) V, o *otter.Options[K, V]) func(K) V {
	c := otter.Must(o)
	return func(k K) V {
		if v, ok := c.GetIfPresent(k); ok {
			return v
		}
		v := fn(k)
		c.Set(k, v)
		return v
	}
}

func lruMemo[K comparable, V any](fn func(K) V) func(K) V {
	c, err := lru.New[K, V](capacity)
	if err != nil {
		panic(err)
	}
	return func(k K) V {
		if v, ok := c.Get(k); ok {
			return v
		}
		v := fn(k)
		c.Add(k, v)
		return v
	}
}

// otterMemoCtx and lruMemoCtx memoize func(ctx, string) (string, error),
// keyed by the string; errors are not stored, as in memo.

func otterMemoCtx(fn func(context.Context, string) (string, error)) func(context.Context, string) (string, error) {
	return otterMemoCtxWith(fn, &otter.Options[string, string]{MaximumSize: capacity})
}

func otterMemoCtxWith(fn func(context.Context, string) (string, error), o *otter.Options[string, string]) func(context.Context, string) (string, error) {
	c := otter.Must(o)
	return func(ctx context.Context, k string) (string, error) {
		if v, ok := c.GetIfPresent(k); ok {
			return v, nil
		}
		v, err := fn(ctx, k)
		if err == nil {
			c.Set(k, v)
		}
		return v, err
	}
}

func lruMemoCtx(fn func(context.Context, string) (string, error)) func(context.Context, string) (string, error) {
	c, err := lru.New[string, string](capacity)
	if err != nil {
		panic(err)
	}
	return func(ctx context.Context, k string) (string, error) {
		if v, ok := c.Get(k); ok {
			return v, nil
		}
		v, err := fn(ctx, k)
		if err == nil {
			c.Add(k, v)
		}
		return v, err
	}
}

// hashQuery is the derived key people use for a struct that is not
// comparable: hashstructure's 64-bit hash. It is not what memo does and it is
// not safe as a key on its own (a collision returns another query's result,
// and hashstructure ignores unexported fields and dereferences pointers); the
// benchmark uses it because it is the common practice memo replaces.
func hashQuery(q Query) uint64 {
	h, err := hashstructure.Hash(q, hashstructure.FormatV2, nil)
	if err != nil {
		panic(err)
	}
	return h
}

// queryMemo memoizes runQuery over a cache keyed by hashQuery.
func queryMemo(get func(uint64) (int, bool), put func(uint64, int)) func(Query) int {
	return func(q Query) int {
		k := hashQuery(q)
		if v, ok := get(k); ok {
			return v
		}
		v := runQuery(q)
		put(k, v)
		return v
	}
}

func otterQueryMemo() func(Query) int {
	c := otter.Must(&otter.Options[uint64, int]{MaximumSize: capacity})
	return queryMemo(c.GetIfPresent, func(k uint64, v int) { c.Set(k, v) })
}

func lruQueryMemo() func(Query) int {
	c, err := lru.New[uint64, int](capacity)
	if err != nil {
		panic(err)
	}
	return queryMemo(c.Get, func(k uint64, v int) { c.Add(k, v) })
}

// Inputs, built once.
var (
	strKeys   = makeStrKeys()
	queryKeys = makeQueryKeys()
)

func makeStrKeys() []string {
	s := make([]string, nKeys)
	for i := range s {
		s[i] = "user-" + strconv.Itoa(i*7919)
	}
	return s
}

func makeQueryKeys() []Query {
	q := make([]Query, nKeys)
	for i := range q {
		q[i] = Query{
			Tenant: "tenant-" + strconv.Itoa(i%37),
			Limit:  i,
			Tags:   []string{"region-" + strconv.Itoa(i%5), "tier-" + strconv.Itoa(i%3)},
		}
	}
	return q
}

// benchInt runs f over the 1024 int keys, after one pass to fill the cache.
func benchInt(b *testing.B, f func(int) int) {
	for i := range nKeys {
		f(i)
	}
	b.ReportAllocs()
	var sum, i int
	for b.Loop() {
		sum += f(i & keyMask)
		i++
	}
	sinkInt = sum
}

func benchCtxString(b *testing.B, f func(context.Context, string) (string, error)) {
	ctx := context.Background()
	for _, s := range strKeys {
		if _, err := f(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var n, i int
	for b.Loop() {
		s, _ := f(ctx, strKeys[i&keyMask])
		n += len(s)
		i++
	}
	sinkInt = n
}

func benchQuery(b *testing.B, f func(Query) int) {
	for _, q := range queryKeys {
		f(q)
	}
	b.ReportAllocs()
	var sum, i int
	for b.Loop() {
		sum += f(queryKeys[i&keyMask])
		i++
	}
	sinkInt = sum
}

var sinkInt int

// BenchmarkInt is func(int) int.
func BenchmarkInt(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchInt(b, square) })
	b.Run("makefunc", func(b *testing.B) { benchInt(b, makeFuncFloor(square, 7)) })
	b.Run("decorate", func(b *testing.B) {
		benchInt(b, memo.Decorate(square, memo.WithMaxSize(capacity)))
	})
	b.Run("typed", func(b *testing.B) {
		benchInt(b, memo.Func(square, memo.WithMaxSize(capacity)))
	})
	b.Run("typed-lru", func(b *testing.B) {
		benchInt(b, memo.Func(square, memo.WithMaxSize(capacity), memo.WithPolicy(policies.LRU)))
	})
	b.Run("otter", func(b *testing.B) { benchInt(b, otterMemo(square)) })
	b.Run("otter-inline", func(b *testing.B) {
		benchInt(b, otterMemoWith(square, &otter.Options[int, int]{MaximumSize: capacity, Executor: inline}))
	})
	b.Run("lru", func(b *testing.B) { benchInt(b, lruMemo(square)) })
}

// BenchmarkCtxString is func(context.Context, string) (string, error).
func BenchmarkCtxString(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchCtxString(b, greet) })
	b.Run("makefunc", func(b *testing.B) {
		benchCtxString(b, makeFuncFloor(greet, "hello", error(nil)))
	})
	b.Run("decorate", func(b *testing.B) {
		benchCtxString(b, memo.Decorate(greet, memo.WithMaxSize(capacity)))
	})
	b.Run("typed", func(b *testing.B) {
		benchCtxString(b, memo.FuncCtx(greet, memo.WithMaxSize(capacity)))
	})
	b.Run("typed-lru", func(b *testing.B) {
		benchCtxString(b, memo.FuncCtx(greet, memo.WithMaxSize(capacity), memo.WithPolicy(policies.LRU)))
	})
	b.Run("otter", func(b *testing.B) { benchCtxString(b, otterMemoCtx(greet)) })
	b.Run("otter-inline", func(b *testing.B) {
		benchCtxString(b, otterMemoCtxWith(greet, &otter.Options[string, string]{MaximumSize: capacity, Executor: inline}))
	})
	b.Run("lru", func(b *testing.B) { benchCtxString(b, lruMemoCtx(greet)) })
}

// BenchmarkIntFull is BenchmarkInt with every cache exactly full (capacity
// nKeys): otter, and memo with W-TinyLFU (its default), record hits for
// their policy only once the cache has been half full, so in BenchmarkInt
// (a quarter full) neither pays for its sketch; here both do.
func BenchmarkIntFull(b *testing.B) {
	b.Run("typed", func(b *testing.B) {
		benchInt(b, memo.Func(square, memo.WithMaxSize(nKeys)))
	})
	b.Run("typed-lru", func(b *testing.B) {
		benchInt(b, memo.Func(square, memo.WithMaxSize(nKeys), memo.WithPolicy(policies.LRU)))
	})
	b.Run("otter", func(b *testing.B) {
		benchInt(b, otterMemoWith(square, &otter.Options[int, int]{MaximumSize: nKeys}))
	})
	b.Run("otter-inline", func(b *testing.B) {
		benchInt(b, otterMemoWith(square, &otter.Options[int, int]{MaximumSize: nKeys, Executor: inline}))
	})
}

// BenchmarkCtxStringFull is BenchmarkCtxString with every cache exactly
// full, as BenchmarkIntFull.
func BenchmarkCtxStringFull(b *testing.B) {
	b.Run("typed", func(b *testing.B) {
		benchCtxString(b, memo.FuncCtx(greet, memo.WithMaxSize(nKeys)))
	})
	b.Run("typed-lru", func(b *testing.B) {
		benchCtxString(b, memo.FuncCtx(greet, memo.WithMaxSize(nKeys), memo.WithPolicy(policies.LRU)))
	})
	b.Run("otter", func(b *testing.B) {
		benchCtxString(b, otterMemoCtxWith(greet, &otter.Options[string, string]{MaximumSize: nKeys}))
	})
	b.Run("otter-inline", func(b *testing.B) {
		benchCtxString(b, otterMemoCtxWith(greet, &otter.Options[string, string]{MaximumSize: nKeys, Executor: inline}))
	})
}

// BenchmarkQuery is func(Query) int. memo keys the struct itself (every
// field, the slice by its elements); otter and lru are keyed by
// hashstructure.Hash of the query, and "hashstructure" is that hash alone,
// the floor under those two.
func BenchmarkQuery(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchQuery(b, runQuery) })
	b.Run("makefunc", func(b *testing.B) { benchQuery(b, makeFuncFloor(runQuery, 7)) })
	b.Run("hashstructure", func(b *testing.B) {
		b.ReportAllocs()
		var sum uint64
		i := 0
		for b.Loop() {
			sum += hashQuery(queryKeys[i&keyMask])
			i++
		}
		sinkInt = int(sum)
	})
	b.Run("decorate", func(b *testing.B) {
		benchQuery(b, memo.Decorate(runQuery, memo.WithMaxSize(capacity)))
	})
	b.Run("typed", func(b *testing.B) {
		benchQuery(b, memo.Func(runQuery, memo.WithMaxSize(capacity)))
	})
	b.Run("otter", func(b *testing.B) { benchQuery(b, otterQueryMemo()) })
	b.Run("lru", func(b *testing.B) { benchQuery(b, lruQueryMemo()) })
}

// offsets hands each RunParallel goroutine its own starting key, so the
// goroutines do not walk the keys in lockstep.
func offsets() func() int {
	var next atomic.Int64
	return func() int { return int(next.Add(1)) * 257 }
}

func benchIntParallel(b *testing.B, f func(int) int) {
	for i := range nKeys {
		f(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := offsets()
	b.RunParallel(func(pb *testing.PB) {
		i, sum := start(), 0
		for pb.Next() {
			sum += f(i & keyMask)
			i++
		}
		sinkParallel.Add(int64(sum))
	})
}

func benchCtxStringParallel(b *testing.B, f func(context.Context, string) (string, error)) {
	ctx := context.Background()
	for _, s := range strKeys {
		if _, err := f(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := offsets()
	b.RunParallel(func(pb *testing.PB) {
		i, n := start(), 0
		for pb.Next() {
			s, _ := f(ctx, strKeys[i&keyMask])
			n += len(s)
			i++
		}
		sinkParallel.Add(int64(n))
	})
}

var sinkParallel atomic.Int64

// BenchmarkIntParallel is BenchmarkInt under b.RunParallel; compare -cpu 1
// with -cpu 2 (or more) for scaling.
func BenchmarkIntParallel(b *testing.B) {
	b.Run("decorate", func(b *testing.B) {
		benchIntParallel(b, memo.Decorate(square, memo.WithMaxSize(capacity)))
	})
	b.Run("typed", func(b *testing.B) {
		benchIntParallel(b, memo.Func(square, memo.WithMaxSize(capacity)))
	})
	b.Run("otter", func(b *testing.B) { benchIntParallel(b, otterMemo(square)) })
	b.Run("lru", func(b *testing.B) { benchIntParallel(b, lruMemo(square)) })
}

// BenchmarkCtxStringParallel is BenchmarkCtxString under b.RunParallel.
func BenchmarkCtxStringParallel(b *testing.B) {
	b.Run("decorate", func(b *testing.B) {
		benchCtxStringParallel(b, memo.Decorate(greet, memo.WithMaxSize(capacity)))
	})
	b.Run("typed", func(b *testing.B) {
		benchCtxStringParallel(b, memo.FuncCtx(greet, memo.WithMaxSize(capacity)))
	})
	b.Run("otter", func(b *testing.B) { benchCtxStringParallel(b, otterMemoCtx(greet)) })
	b.Run("lru", func(b *testing.B) { benchCtxStringParallel(b, lruMemoCtx(greet)) })
}

// makeFuncFloor returns a func of fn's type made with reflect.MakeFunc
// whose body only returns the given results, prepared once: the floor
// under any hit through Decorate, which is built the same way.
func makeFuncFloor[F any](fn F, results ...any) F {
	t := reflect.TypeOf(fn)
	out := make([]reflect.Value, len(results))
	for i, r := range results {
		v := reflect.New(t.Out(i)).Elem()
		if r != nil {
			v.Set(reflect.ValueOf(r))
		}
		out[i] = v
	}
	return reflect.MakeFunc(t, func([]reflect.Value) []reflect.Value { return out }).Interface().(F)
}

// BenchmarkMiss measures misses at capacity: the cache is full before the
// timer starts and every iteration asks for a key never seen, so each call
// runs the function, stores the result and evicts an entry. memo's typed
// path with its default policy (W-TinyLFU) and with LRU, against a
// hand-written memo over otter (W-TinyLFU as well).
func BenchmarkMiss(b *testing.B) {
	run := func(b *testing.B, f func(int) int) {
		for i := range capacity {
			f(-1 - i)
		}
		b.ReportAllocs()
		b.ResetTimer()
		sum := 0
		for i := range b.N {
			sum += f(i)
		}
		sinkInt = sum
	}
	b.Run("typed", func(b *testing.B) { run(b, memo.Func(square, memo.WithMaxSize(capacity))) })
	b.Run("typed-lru", func(b *testing.B) {
		run(b, memo.Func(square, memo.WithMaxSize(capacity), memo.WithPolicy(policies.LRU)))
	})
	b.Run("otter", func(b *testing.B) { run(b, otterMemo(square)) })
}
