package stats

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpperBound(t *testing.T) {
	t.Parallel()
	assert.Equal(t, time.Microsecond, UpperBound(0))
	assert.Equal(t, 2*time.Microsecond, UpperBound(1))
	assert.Equal(t, time.Duration(1<<26)*time.Microsecond, UpperBound(HistogramBuckets-2))
	assert.Greater(t, UpperBound(HistogramBuckets-2), time.Minute, "the last finite bound reaches about a minute")
	assert.Equal(t, time.Duration(1<<63-1), UpperBound(HistogramBuckets-1))
	assert.Panics(t, func() { UpperBound(-1) })
	assert.Panics(t, func() { UpperBound(HistogramBuckets) })
}

// TestBucketOf checks every bound and its neighbours against the
// definition: bucket i holds UpperBound(i-1) < d <= UpperBound(i).
func TestBucketOf(t *testing.T) {
	t.Parallel()
	assert.Equal(t, 0, bucketOf(0))
	assert.Equal(t, 0, bucketOf(1))
	for i := range HistogramBuckets - 1 {
		b := UpperBound(i)
		assert.Equal(t, i, bucketOf(b), "d = bound of %d", i)
		assert.Equal(t, i+1, bucketOf(b+1), "d = bound of %d + 1ns", i)
		if i > 0 {
			assert.Equal(t, i, bucketOf(b-1), "d = bound of %d - 1ns", i)
		}
	}
	assert.Equal(t, HistogramBuckets-1, bucketOf(time.Hour))
	assert.Equal(t, HistogramBuckets-1, bucketOf(time.Duration(1<<63-1)))
}

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	assert.Zero(t, Histogram{}.Quantile(0.5), "empty")

	var h Histogram
	// 100 samples in (512 µs, 1024 µs]: every quantile interpolates there.
	h.Counts[10] = 100
	assert.Equal(t, UpperBound(9), h.Quantile(0), "q=0 is the bucket's lower bound")
	assert.Equal(t, UpperBound(9)+(UpperBound(10)-UpperBound(9))/2, h.Quantile(0.5))
	assert.Equal(t, UpperBound(10), h.Quantile(1))
	assert.Equal(t, UpperBound(10), h.Quantile(7), "q is clamped")

	// 90 fast samples and 10 slow ones: p50 is fast, p99 slow.
	h = Histogram{}
	h.Counts[bucketOf(3*time.Microsecond)] = 90
	h.Counts[bucketOf(300*time.Millisecond)] = 10
	assert.LessOrEqual(t, h.Quantile(0.5), 4*time.Microsecond)
	assert.LessOrEqual(t, h.Quantile(0.9), 4*time.Microsecond)
	assert.Greater(t, h.Quantile(0.99), 256*time.Millisecond)
	assert.LessOrEqual(t, h.Quantile(0.99), 512*time.Millisecond)

	// A rank in the unbounded bucket reports the last finite bound.
	h = Histogram{}
	h.Counts[HistogramBuckets-1] = 1
	assert.Equal(t, UpperBound(HistogramBuckets-2), h.Quantile(0.5))
}

func TestRecorderHistogram(t *testing.T) {
	t.Parallel()
	var r Recorder
	times := []time.Duration{-time.Second, 0, 500 * time.Nanosecond, 3 * time.Microsecond,
		time.Millisecond, 5 * time.Millisecond, 2 * time.Minute}
	for i, d := range times {
		r.Execution(d, i%2 == 0)
	}
	s := r.Snapshot()
	require.Equal(t, uint64(len(times)), s.TotalCalls)
	assert.Equal(t, s.TotalCalls, s.ExecTimes.Count())
	assert.Equal(t, uint64(3), s.ExecTimes.Counts[0], "negative, zero and 500ns are in the first bucket")
	assert.Equal(t, uint64(1), s.ExecTimes.Counts[2], "3µs is in (2µs, 4µs]")
	assert.Equal(t, uint64(1), s.ExecTimes.Counts[HistogramBuckets-1], "2 min is past every bound")
	assert.Equal(t, 2*time.Minute, s.Quantile(1), "clamped to MaxTime")
	assert.Equal(t, time.Duration(0), s.Quantile(0), "clamped to MinTime")

	r.Reset()
	assert.Zero(t, r.Snapshot().ExecTimes.Count())
	assert.Zero(t, r.Snapshot().Quantile(0.5))
}

// TestRecorderHistogramConcurrent: the histogram's count equals TotalCalls
// in every snapshot, even while executions are being recorded.
func TestRecorderHistogramConcurrent(t *testing.T) {
	t.Parallel()
	var r Recorder
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				r.Execution(time.Duration(g*1000+i)*time.Microsecond, false)
			}
		})
	}
	for range 100 {
		s := r.Snapshot()
		require.Equal(t, s.TotalCalls, s.ExecTimes.Count())
	}
	wg.Wait()
	assert.Equal(t, uint64(4000), r.Snapshot().ExecTimes.Count())
}

func TestTierHitRatio(t *testing.T) {
	t.Parallel()
	assert.Zero(t, Tier{}.HitRatio())
	assert.Equal(t, 0.75, Tier{Hits: 3, Misses: 1}.HitRatio())
}

func TestSizeUpperBound(t *testing.T) {
	t.Parallel()
	assert.EqualValues(t, 1, SizeUpperBound(0))
	assert.EqualValues(t, 2, SizeUpperBound(1))
	assert.EqualValues(t, 1<<15, SizeUpperBound(SizeBuckets-2))
	assert.EqualValues(t, uint64(1<<64-1), SizeUpperBound(SizeBuckets-1))
	assert.Panics(t, func() { SizeUpperBound(-1) })
	assert.Panics(t, func() { SizeUpperBound(SizeBuckets) })
}

// Each size lands in the bucket whose bounds hold it: above the previous
// bucket's upper bound and at most its own.
func TestSizeBucketOf(t *testing.T) {
	t.Parallel()
	for _, n := range []uint64{0, 1, 2, 3, 4, 5, 100, 1 << 15, 1<<15 + 1, 1 << 40} {
		i := sizeBucketOf(n)
		assert.LessOrEqual(t, n, SizeUpperBound(i), "n=%d", n)
		if i > 0 {
			assert.Greater(t, n, SizeUpperBound(i-1), "n=%d", n)
		}
	}
	assert.Equal(t, SizeBuckets-1, sizeBucketOf(1<<40))
}

// The recorder's batch counters: BatchCall fills the keys histogram (and
// so BatchCalls), BatchCached and BatchJoined add up, and Reset zeroes
// them all.
func TestRecorderBatchCounters(t *testing.T) {
	t.Parallel()
	var r Recorder
	assert.Zero(t, r.Snapshot().BatchCalls)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r.BatchCall(100)
			r.BatchCall(1)
			r.BatchCached(90)
			r.BatchJoined(3)
		})
	}
	wg.Wait()
	s := r.Snapshot()
	assert.EqualValues(t, 16, s.BatchCalls)
	assert.EqualValues(t, 16, s.BatchKeys.Count())
	assert.EqualValues(t, 808, s.BatchKeys.Sum)
	assert.EqualValues(t, 8, s.BatchKeys.Counts[0])
	assert.EqualValues(t, 8, s.BatchKeys.Counts[7], "100 keys: the bucket up to 128")
	assert.InDelta(t, 50.5, s.BatchKeys.Mean(), 1e-9)
	assert.EqualValues(t, 720, s.BatchCached)
	assert.EqualValues(t, 24, s.BatchJoined)
	r.Reset()
	s = r.Snapshot()
	assert.Zero(t, s.BatchCalls)
	assert.Zero(t, s.BatchKeys)
	assert.Zero(t, s.BatchCached+s.BatchJoined)
	assert.Zero(t, SizeHistogram{}.Mean())
}
