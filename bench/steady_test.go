package bench

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/maypok86/otter/v2"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
)

// The steady state: a memoizer spends its life full, with a mix of hits and
// misses. BenchmarkSteady measures memo there, each case beside a
// hand-written memo over otter v2 in the same binary, named
// Steady/<workload>/<impl> with impl "memo" or "otter" (and "floor" and
// "floor-hit" for the reflect.MakeFunc floors under Decorate), so that
// benchstat can set them side by side once the impl is cut from the names
// (README.md, "The steady state"):
//
//	grep -E '^BenchmarkSteady/[^/]*/otter[-[:space:]]' steady.txt | sed 's,/otter,,' > otter.txt
//	grep -E '^BenchmarkSteady/[^/]*/memo[-[:space:]]' steady.txt | sed 's,/memo,,' > memo.txt
//	benchstat otter.txt memo.txt
//
// Each case reports its hit ratio as "hit%": the share of timed calls in
// which the memoized function did not run.

const (
	zipfCapacity = 1000    // the cache's size in the Zipf and all-miss workloads
	zipfKeys     = 100_000 // distinct keys the Zipf distribution draws from
	zipfS        = 1.01    // its exponent
	zipfLen      = 1 << 20 // length of the precomputed key sequence; a power of two
	zipfMask     = zipfLen - 1
	zipfWarm     = 1 << 14 // calls before the timer starts: the cache full, its policy's sketch aged once

	quarterCapacity = 4 * nKeys // the quarter-full workload: nKeys keys in a cache four times larger
)

// zipfInts is the key sequence every Zipf case replays, built once, on
// first use (a fixed seed, so every run and every impl sees the same keys);
// zipfStrings is the same sequence as decimal strings, so that no case
// formats a key while timed.
var (
	zipfInts = sync.OnceValue(func() []int {
		z := rand.NewZipf(rand.New(rand.NewPCG(20, 1)), zipfS, 1, zipfKeys-1)
		s := make([]int, zipfLen)
		for i := range s {
			s[i] = int(z.Uint64())
		}
		return s
	})
	zipfStrings = sync.OnceValue(func() []string {
		names := make([]string, zipfKeys)
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
		s := make([]string, zipfLen)
		for i, k := range zipfInts() {
			s[i] = names[k]
		}
		return s
	})
)

// counted returns the cheap function every int case memoizes and the
// number of times it ran: a call in which it did not run was a hit. The
// counter is atomic because memo may run the function on another goroutine
// and the parallel cases share it.
func counted() (func(int) int, *atomic.Int64) {
	var runs atomic.Int64
	return func(k int) int {
		runs.Add(1)
		return k*2 + 1
	}, &runs
}

// countedCtx is counted for the string cases: func(ctx, string) (string,
// error), returning its key.
func countedCtx() (func(context.Context, string) (string, error), *atomic.Int64) {
	var runs atomic.Int64
	return func(_ context.Context, k string) (string, error) {
		runs.Add(1)
		return k, nil
	}, &runs
}

// reportHits reports the share of ops calls that were hits, runs being how
// many times the function ran during them.
func reportHits(b *testing.B, ops, runs int64) {
	if ops > 0 {
		b.ReportMetric(100*float64(ops-runs)/float64(ops), "hit%")
	}
}

// steadyInt replays keys through f (made from the counted function whose
// counter is runs): zipfWarm calls (or len(keys), if fewer) untimed, then
// one call per op, op i asking for keys[i&(len(keys)-1)]. len(keys) is a
// power of two.
func steadyInt(b *testing.B, keys []int, f func(int) int, runs *atomic.Int64) {
	mask := len(keys) - 1
	warm := min(zipfWarm, len(keys))
	for i := range warm {
		f(keys[i&mask])
	}
	b.ReportAllocs()
	before := runs.Load()
	var sum int
	var ops int64
	i := warm
	for b.Loop() {
		sum += f(keys[i&mask])
		i++
		ops++
	}
	sinkInt = sum
	reportHits(b, ops, runs.Load()-before)
}

// steadyString is steadyInt for the string cases.
func steadyString(b *testing.B, keys []string, f func(context.Context, string) (string, error), runs *atomic.Int64) {
	ctx := context.Background()
	mask := len(keys) - 1
	warm := min(zipfWarm, len(keys))
	for i := range warm {
		if _, err := f(ctx, keys[i&mask]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	before := runs.Load()
	var n int
	var ops int64
	i := warm
	for b.Loop() {
		s, _ := f(ctx, keys[i&mask])
		n += len(s)
		i++
		ops++
	}
	sinkInt = n
	reportHits(b, ops, runs.Load()-before)
}

// steadyIntParallel is steadyInt under b.RunParallel: the warm-up runs on
// one goroutine, then each goroutine replays keys from its own offset.
func steadyIntParallel(b *testing.B, keys []int, f func(int) int, runs *atomic.Int64) {
	mask := len(keys) - 1
	for i := range min(zipfWarm, len(keys)) {
		f(keys[i&mask])
	}
	b.ReportAllocs()
	before := runs.Load()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		// Offsets a large prime apart, so that the goroutines do not
		// replay the same stretch of the sequence together.
		i, sum := int(next.Add(1))*104_729, 0
		for pb.Next() {
			sum += f(keys[i&mask])
			i++
		}
		sinkParallel.Add(int64(sum))
	})
	b.StopTimer()
	reportHits(b, int64(b.N), runs.Load()-before)
}

// sequential is 0, 1, ..., n-1: the keys of the full-hit and quarter-full
// workloads, cycled.
func sequential(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// makeFuncCall wraps fn in reflect.MakeFunc, as Decorate does, and has the
// wrapper call fn directly and return its result, caching nothing: the
// floor under any Decorate call of this signature (the argument and result
// passed as reflect.Values), so that a Decorate case can be held to otter
// plus this floor.
func makeFuncCall(fn func(int) int) func(int) int {
	return reflect.MakeFunc(reflect.TypeOf(fn), func(args []reflect.Value) []reflect.Value {
		return []reflect.Value{reflect.ValueOf(fn(int(args[0].Int())))}
	}).Interface().(func(int) int)
}

// BenchmarkSteady measures memo in a full cache against a hand-written
// memo over otter v2 (GetIfPresent, else compute and Set) of the same
// capacity. Workloads:
//
//   - zipf-int: func(int) int through memo.Func (its default policy,
//     W-TinyLFU), capacity 1,000, keys drawn Zipf(s=1.01) over 100,000 from
//     a precomputed sequence of 2^20.
//   - zipf-int-lru: the same with memo.WithPolicy(policies.LRU).
//   - zipf-int-decorate: the same through memo.Decorate; "floor" is a
//     reflect.MakeFunc wrapper that calls the function and caches nothing,
//     "floor-hit" one that returns results prepared once (makeFuncFloor),
//     the least any Decorate hit can cost. Neither is a cache, and their
//     hit% says only that "floor" always runs the function (0) and
//     "floor-hit" never does (100).
//   - zipf-string: the same keys as decimal strings, built beforehand,
//     through memo.FuncCtx (func(ctx, string) (string, error)) with
//     context.Background().
//   - zipf-int-parallel: zipf-int under b.RunParallel, each goroutine from
//     its own offset in the sequence; run with -cpu 1,2.
//   - full-hit: capacity 1,024 and the keys 0..1023 cycled after a fill:
//     every call a hit in a full cache.
//   - all-miss: capacity 1,000 filled beforehand, then every call a new key:
//     run, store, evict.
//   - quarter-full: capacity 4,096 and 1,024 keys cycled, all hits: the
//     cache never reaches half full, where both memo and otter start
//     recording hits for their policy.
//
// The otter case of zipf-int, zipf-int-lru and zipf-int-decorate is the
// same code, run again beside each so that every workload holds its own
// comparison.
func BenchmarkSteady(b *testing.B) {
	otterInt := func(b *testing.B, capacity int, keys []int) {
		fn, runs := counted()
		steadyInt(b, keys, otterMemoWith(fn, &otter.Options[int, int]{MaximumSize: capacity}), runs)
	}
	memoInt := func(b *testing.B, capacity int, keys []int, opts ...memo.Option) {
		fn, runs := counted()
		steadyInt(b, keys, memo.Func(fn, append([]memo.Option{memo.WithMaxSize(capacity)}, opts...)...), runs)
	}

	b.Run("zipf-int/otter", func(b *testing.B) { otterInt(b, zipfCapacity, zipfInts()) })
	b.Run("zipf-int/memo", func(b *testing.B) { memoInt(b, zipfCapacity, zipfInts()) })

	b.Run("zipf-int-lru/otter", func(b *testing.B) { otterInt(b, zipfCapacity, zipfInts()) })
	b.Run("zipf-int-lru/memo", func(b *testing.B) {
		memoInt(b, zipfCapacity, zipfInts(), memo.WithPolicy(policies.LRU))
	})

	b.Run("zipf-int-decorate/otter", func(b *testing.B) { otterInt(b, zipfCapacity, zipfInts()) })
	b.Run("zipf-int-decorate/memo", func(b *testing.B) {
		fn, runs := counted()
		steadyInt(b, zipfInts(), memo.Decorate(fn, memo.WithMaxSize(zipfCapacity)), runs)
	})
	b.Run("zipf-int-decorate/floor", func(b *testing.B) {
		fn, runs := counted()
		steadyInt(b, zipfInts(), makeFuncCall(fn), runs)
	})
	b.Run("zipf-int-decorate/floor-hit", func(b *testing.B) {
		fn, runs := counted()
		steadyInt(b, zipfInts(), makeFuncFloor(fn, 7), runs)
	})

	b.Run("zipf-string/otter", func(b *testing.B) {
		fn, runs := countedCtx()
		steadyString(b, zipfStrings(), otterMemoCtxWith(fn, &otter.Options[string, string]{MaximumSize: zipfCapacity}), runs)
	})
	b.Run("zipf-string/memo", func(b *testing.B) {
		fn, runs := countedCtx()
		steadyString(b, zipfStrings(), memo.FuncCtx(fn, memo.WithMaxSize(zipfCapacity)), runs)
	})

	b.Run("zipf-int-parallel/otter", func(b *testing.B) {
		fn, runs := counted()
		steadyIntParallel(b, zipfInts(), otterMemoWith(fn, &otter.Options[int, int]{MaximumSize: zipfCapacity}), runs)
	})
	b.Run("zipf-int-parallel/memo", func(b *testing.B) {
		fn, runs := counted()
		steadyIntParallel(b, zipfInts(), memo.Func(fn, memo.WithMaxSize(zipfCapacity)), runs)
	})

	full := sequential(nKeys)
	b.Run("full-hit/otter", func(b *testing.B) { otterInt(b, nKeys, full) })
	b.Run("full-hit/memo", func(b *testing.B) { memoInt(b, nKeys, full) })

	allMiss := func(b *testing.B, f func(int) int, runs *atomic.Int64) {
		for i := range zipfCapacity {
			f(-1 - i)
		}
		b.ReportAllocs()
		before := runs.Load()
		var sum, k int
		for b.Loop() {
			sum += f(k)
			k++
		}
		sinkInt = sum
		reportHits(b, int64(k), runs.Load()-before)
	}
	b.Run("all-miss/otter", func(b *testing.B) {
		fn, runs := counted()
		allMiss(b, otterMemoWith(fn, &otter.Options[int, int]{MaximumSize: zipfCapacity}), runs)
	})
	b.Run("all-miss/memo", func(b *testing.B) {
		fn, runs := counted()
		allMiss(b, memo.Func(fn, memo.WithMaxSize(zipfCapacity)), runs)
	})

	b.Run("quarter-full/otter", func(b *testing.B) { otterInt(b, quarterCapacity, full) })
	b.Run("quarter-full/memo", func(b *testing.B) { memoInt(b, quarterCapacity, full) })
}
