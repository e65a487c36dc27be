package memo_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/memokit/memo"
)

// Hit benchmarks of the typed fast paths against Decorate for the same
// signatures: 1024 keys, every one stored before the timer starts, read
// in turn.

const typedBenchKeys = 1024

var typedBenchSink int

// typedBenchStrings returns the string keys of the context benchmarks.
func typedBenchStrings() []string {
	keys := make([]string, typedBenchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	return keys
}

// benchIntHit fills f with every key and measures hits.
func benchIntHit(b *testing.B, f func(int) int) {
	for i := range typedBenchKeys {
		f(i)
	}
	if n := memo.CacheOf(f).Len(); n != typedBenchKeys {
		b.Fatalf("Len() = %d after filling %d", n, typedBenchKeys)
	}
	misses := memo.CacheOf(f).Stats().Misses
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		typedBenchSink += f(i & (typedBenchKeys - 1))
		i++
	}
	if m := memo.CacheOf(f).Stats().Misses; m != misses {
		b.Fatalf("%d misses while measuring hits", m-misses)
	}
}

func benchIntHitParallel(b *testing.B, f func(int) int) {
	for i := range typedBenchKeys {
		f(i)
	}
	misses := memo.CacheOf(f).Stats().Misses
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i, sum := 0, 0
		for pb.Next() {
			sum += f(i & (typedBenchKeys - 1))
			i++
		}
		_ = sum
	})
	b.StopTimer()
	if m := memo.CacheOf(f).Stats().Misses; m != misses {
		b.Fatalf("%d misses while measuring hits", m-misses)
	}
}

func benchCtxStringHit(b *testing.B, f func(context.Context, string) (string, error)) {
	ctx := context.Background()
	keys := typedBenchStrings()
	for _, k := range keys {
		if _, err := f(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	misses := memo.CacheOf(f).Stats().Misses
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s, _ := f(ctx, keys[i&(typedBenchKeys-1)])
		typedBenchSink += len(s)
		i++
	}
	if m := memo.CacheOf(f).Stats().Misses; m != misses {
		b.Fatalf("%d misses while measuring hits", m-misses)
	}
}

func typedBenchInt(x int) int { return x * 2 }

func typedBenchCtxString(_ context.Context, s string) (string, error) { return s + "!", nil }

func BenchmarkTypedIntHit(b *testing.B) {
	benchIntHit(b, memo.Func(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys)))
}

func BenchmarkDecorateIntHit(b *testing.B) {
	benchIntHit(b, memo.Decorate(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys)))
}

func BenchmarkTypedIntHitParallel(b *testing.B) {
	benchIntHitParallel(b, memo.Func(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys)))
}

func BenchmarkDecorateIntHitParallel(b *testing.B) {
	benchIntHitParallel(b, memo.Decorate(typedBenchInt, memo.WithMaxSize(2*typedBenchKeys)))
}

func BenchmarkTypedCtxStringHit(b *testing.B) {
	benchCtxStringHit(b, memo.FuncCtx(typedBenchCtxString, memo.WithMaxSize(2*typedBenchKeys)))
}

func BenchmarkDecorateCtxStringHit(b *testing.B) {
	benchCtxStringHit(b, memo.Decorate(typedBenchCtxString, memo.WithMaxSize(2*typedBenchKeys)))
}
