package memo_test

import (
	"testing"
	"time"

	"github.com/memokit/memo"
)

// Hit benchmarks with the freshness options, to set against
// BenchmarkTypedIntHit and BenchmarkDecorateIntHit (no options) and
// BenchmarkTypedIntHitTTL (a plain TTL): the entries are not due for a
// refresh, so the hit path is the plain one.

func BenchmarkTypedIntHitTTL(b *testing.B) {
	benchIntHit(b, memo.Func(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys), memo.WithTTL(time.Hour)))
}

func BenchmarkTypedIntHitFresh(b *testing.B) {
	benchIntHit(b, memo.Func(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys), memo.WithTTL(time.Hour),
		memo.WithRefreshAfter(30*time.Minute), memo.WithStaleIfError(time.Hour), memo.WithTTLJitter(0.1)))
}

func BenchmarkDecorateIntHitFresh(b *testing.B) {
	benchIntHit(b, memo.Decorate(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys), memo.WithTTL(time.Hour),
		memo.WithRefreshAfter(30*time.Minute), memo.WithStaleIfError(time.Hour), memo.WithTTLJitter(0.1)))
}

// BenchmarkTypedIntMissFresh measures a miss and store with the options
// (the heap and the jitter draw), against BenchmarkTypedIntMiss.
func BenchmarkTypedIntMissFresh(b *testing.B) {
	benchIntMiss(b, memo.WithTTL(time.Hour), memo.WithRefreshAfter(30*time.Minute), memo.WithStaleIfError(time.Hour), memo.WithTTLJitter(0.1))
}

func BenchmarkTypedIntMissTTL(b *testing.B) {
	benchIntMiss(b, memo.WithTTL(time.Hour))
}

// benchIntMiss calls f with ever new keys in a cache of 1,024 entries:
// every call is a miss, a store and an eviction.
func benchIntMiss(b *testing.B, opts ...memo.Option) {
	f := memo.Func(typedBenchInt, append(opts, memo.WithMaxSize(typedBenchKeys))...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		typedBenchSink += f(i)
		i++
	}
}
