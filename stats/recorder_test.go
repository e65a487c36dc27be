package stats

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStripeLayout(t *testing.T) {
	t.Parallel()
	assert.Equal(t, uintptr(stripeSize), unsafe.Sizeof(stripe{}))
	assert.Equal(t, uintptr(stripes*stripeSize), unsafe.Sizeof([stripes]stripe{}))
	assert.LessOrEqual(t, unsafe.Sizeof(Counter{}), uintptr(16), "a Counter starts as one word")
}

func TestIndexSpreadsSequentialHints(t *testing.T) {
	t.Parallel()
	seen := map[uint64]bool{}
	for h := range uint64(64) {
		i := index(h)
		require.Less(t, i, uint64(stripes))
		seen[i] = true
	}
	assert.Len(t, seen, stripes, "hints 0..63 should reach every stripe")
}

func TestCounter(t *testing.T) {
	t.Parallel()
	var c Counter
	assert.Zero(t, c.Load(), "zero value")
	for h := range uint64(100) {
		c.Inc(h)
	}
	c.Add(12345, 10)
	c.Add(^uint64(0), 5)
	assert.Equal(t, uint64(115), c.Load())
	c.Reset()
	assert.Zero(t, c.Load())
	c.Inc(7)
	assert.Equal(t, uint64(1), c.Load())
}

// A Counter stays one word until Adds contend, then counts exactly on
// its stripes.
func TestCounterStripesOnContention(t *testing.T) {
	t.Parallel()
	var c Counter
	for h := range uint64(1000) {
		c.Inc(h)
	}
	assert.Nil(t, c.s.Load(), "no stripes without contention")
	c.stripes() // as the first failed compare-and-swap does
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				c.Add(uint64(g*1000+i), 2)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, uint64(1000+8*1000*2), c.Load())
	c.Reset()
	assert.Zero(t, c.Load())
}

func TestRecorderZeroValue(t *testing.T) {
	t.Parallel()
	var r Recorder
	assert.Equal(t, Stats{}, r.Snapshot())
}

func TestRecorderCounters(t *testing.T) {
	t.Parallel()
	var r Recorder
	r.Hit(1)
	r.Hit(2)
	r.Hit(2)
	r.Miss(3)
	r.Coalesced(2)
	r.Evicted(3)
	r.Expired(4)
	r.Execution(time.Millisecond, false)
	r.Execution(3*time.Millisecond, true)
	assert.Equal(t, Stats{
		Hits: 3, Misses: 1, Coalesced: 2, Evictions: 3, Expirations: 4,
		TotalCalls: 2, Failures: 1,
		TotalTime: 4 * time.Millisecond, MinTime: time.Millisecond, MaxTime: 3 * time.Millisecond,
		// 1ms is in (512µs, 1024µs], 3ms in (2048µs, 4096µs].
		ExecTimes: Histogram{Counts: [HistogramBuckets]uint64{10: 1, 12: 1}},
	}, r.Snapshot())
}

func TestRecorderMinMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		samples  []time.Duration
		min, max time.Duration
	}{
		{"first sample sets min", []time.Duration{5 * time.Millisecond}, 5 * time.Millisecond, 5 * time.Millisecond},
		{"increasing", []time.Duration{1, 2, 3}, 1, 3},
		{"decreasing", []time.Duration{3, 2, 1}, 1, 3},
		{"middle extremes", []time.Duration{5, 1, 9, 4}, 1, 9},
		{"zero sample", []time.Duration{4, 0, 2}, 0, 4},
		{"negative counts as zero", []time.Duration{4, -3}, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r Recorder
			for _, d := range tt.samples {
				r.Execution(d, false)
			}
			s := r.Snapshot()
			assert.Equal(t, tt.min, s.MinTime, "min")
			assert.Equal(t, tt.max, s.MaxTime, "max")
			assert.Equal(t, uint64(len(tt.samples)), s.TotalCalls)
		})
	}
}

func TestRecorderReset(t *testing.T) {
	t.Parallel()
	var r Recorder
	r.Hit(1)
	r.Miss(1)
	r.Coalesced(1)
	r.Evicted(1)
	r.Expired(1)
	r.Execution(time.Second, true)
	require.NotEqual(t, Stats{}, r.Snapshot())

	r.Reset()
	assert.Equal(t, Stats{}, r.Snapshot())

	// After a reset the first sample must set min again, not compare with
	// the old one.
	r.Execution(2*time.Second, false)
	s := r.Snapshot()
	assert.Equal(t, 2*time.Second, s.MinTime)
	assert.Equal(t, 2*time.Second, s.MaxTime)
}

// TestRecorderConcurrent is meant for -race: many goroutines update every
// counter while others take snapshots, and the totals must be exact.
func TestRecorderConcurrent(t *testing.T) {
	t.Parallel()
	const (
		perG = 2000
	)
	goroutines := 4 * runtime.GOMAXPROCS(0)
	if goroutines < 16 {
		goroutines = 16
	}
	var r Recorder
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Go(func() { // a concurrent reader
		for !stop.Load() {
			s := r.Snapshot()
			if s.TotalCalls > 0 {
				assert.LessOrEqual(t, s.MinTime, s.AvgTime())
				assert.LessOrEqual(t, s.AvgTime(), s.MaxTime)
			}
			runtime.Gosched()
		}
	})
	var workers sync.WaitGroup
	for g := range goroutines {
		workers.Go(func() {
			for i := range perG {
				h := uint64(g*perG + i)
				r.Hit(h)
				r.Hit(h + 1)
				r.Miss(h)
				r.Coalesced(1)
				r.Evicted(1)
				r.Expired(2)
				// d in [1ms, 1000ms]; 1ms and 1000ms both occur.
				r.Execution(time.Duration(i%1000+1)*time.Millisecond, i%4 == 0)
			}
		})
	}
	workers.Wait()
	stop.Store(true)
	wg.Wait()

	n := uint64(goroutines * perG)
	// Sum of (i%1000+1)ms over i in [0, perG) per goroutine.
	var perGTotal time.Duration
	for i := range perG {
		perGTotal += time.Duration(i%1000+1) * time.Millisecond
	}
	var hist Histogram
	for i := range perG {
		hist.Counts[bucketOf(time.Duration(i%1000+1)*time.Millisecond)] += uint64(goroutines)
	}
	assert.Equal(t, Stats{
		Hits: 2 * n, Misses: n, Coalesced: n, Evictions: n, Expirations: 2 * n,
		TotalCalls: n, Failures: n / 4,
		TotalTime: time.Duration(goroutines) * perGTotal,
		MinTime:   time.Millisecond, MaxTime: 1000 * time.Millisecond,
		ExecTimes: hist,
	}, r.Snapshot())
}

// The freshness counters are recorded, snapshotted and reset.
func TestRecorderFreshCounters(t *testing.T) {
	var r Recorder
	r.RefreshStarted()
	r.RefreshStarted()
	r.RefreshSucceeded()
	r.RefreshFailed()
	r.StaleServed(3)
	r.Rejected(4)
	s := r.Snapshot()
	assert.Equal(t, [5]uint64{2, 1, 1, 3, 4}, [5]uint64{s.RefreshesStarted, s.RefreshesSucceeded, s.RefreshesFailed, s.StaleServed, s.Rejected})
	assert.Len(t, s.Map(), 10, "Map keeps the original's keys")
	r.Reset()
	s = r.Snapshot()
	assert.Equal(t, [5]uint64{}, [5]uint64{s.RefreshesStarted, s.RefreshesSucceeded, s.RefreshesFailed, s.StaleServed, s.Rejected})
}

func TestTierHits(t *testing.T) {
	t.Parallel()
	var r Recorder
	r.Execution(time.Millisecond, false)
	r.TierHit()
	r.Execution(time.Microsecond, false)
	r.Execution(time.Millisecond, false)
	s := r.Snapshot()
	assert.Equal(t, uint64(3), s.TotalCalls)
	assert.Equal(t, uint64(1), s.TierHits)
	assert.Equal(t, uint64(2), s.LocalRuns())
	assert.Zero(t, Stats{TierHits: 2, TotalCalls: 1}.LocalRuns(), "a hit counted before its execution")
	r.Reset()
	assert.Zero(t, r.Snapshot().TierHits)
}
