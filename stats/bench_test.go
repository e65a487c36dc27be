package stats

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCounterInc measures parallel increments with a different hint per
// goroutine, the cache-hit pattern for distinct keys.
func BenchmarkCounterInc(b *testing.B) {
	var c Counter
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		hint := next.Add(1)
		for pb.Next() {
			c.Inc(hint)
		}
	})
}

// BenchmarkAtomicInc is the baseline: every goroutine adds to one word.
func BenchmarkAtomicInc(b *testing.B) {
	var c atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Add(1)
		}
	})
}

func BenchmarkRecorderHit(b *testing.B) {
	var r Recorder
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		hint := next.Add(1)
		for pb.Next() {
			r.Hit(hint)
		}
	})
}

func BenchmarkRecorderExecution(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Execution(time.Millisecond, false)
		}
	})
}

func BenchmarkRecorderSnapshot(b *testing.B) {
	var r Recorder
	r.Hit(1)
	r.Execution(time.Millisecond, false)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Snapshot()
	}
}
