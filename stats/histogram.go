package stats

import (
	"math/bits"
	"time"
)

// HistogramBuckets is the number of buckets of a [Histogram]: upper bounds
// of 1 µs, 2 µs, 4 µs, ..., 2^26 µs (about 67 s), and one last bucket for
// longer executions.
const HistogramBuckets = 28

// histogramBase is the upper bound of the first bucket.
const histogramBase = time.Microsecond

// Histogram counts execution times in fixed exponential buckets: bucket i
// holds the times d with UpperBound(i-1) < d <= UpperBound(i), bucket 0
// those up to 1 µs, and the last bucket those over 2^26 µs. It is a plain
// value (28 words); its zero value is an empty histogram.
//
// The bounds double from bucket to bucket, so an estimate read from it
// ([Histogram.Quantile]) is within a factor of 2 of the true value for
// times over 1 µs; bucket 0 holds every time up to 1 µs, so an estimate
// there only says "under 1 µs" (a 40 ns execution may read as 500 ns;
// Stats' Avg and Min are exact). The
// bounds are the same in every memo histogram, so histograms can be added
// bucket by bucket.
type Histogram struct {
	// Counts holds the number of executions per bucket (not cumulative).
	Counts [HistogramBuckets]uint64
}

// UpperBound returns the inclusive upper bound of bucket i: 1 µs << i for
// i < HistogramBuckets-1, and the largest time.Duration for the last
// bucket, which has no bound. It panics if i is out of range.
func UpperBound(i int) time.Duration {
	switch {
	case i < 0 || i >= HistogramBuckets:
		panic("stats: UpperBound: bucket out of range")
	case i == HistogramBuckets-1:
		return time.Duration(1<<63 - 1)
	}
	return histogramBase << i
}

// bucketOf returns the bucket of d (d >= 0).
func bucketOf(d time.Duration) int {
	if d <= histogramBase {
		return 0
	}
	// d <= base<<i  ⇔  (d-1)/base < 1<<i  ⇔  bits.Len64((d-1)/base) <= i.
	return min(bits.Len64(uint64((d-1)/histogramBase)), HistogramBuckets-1)
}

// Count returns the number of samples: the sum of the buckets.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile estimates the q-quantile (0 <= q <= 1) of the samples the way
// Prometheus' histogram_quantile does: it finds the bucket holding the
// sample of rank q·Count and interpolates linearly inside it (the first
// bucket starts at 0). A rank in the last, unbounded bucket returns the
// last finite bound, 2^26 µs. It returns 0 for an empty histogram; q is
// clamped to [0, 1].
func (h Histogram) Quantile(q float64) time.Duration {
	d, _ := h.quantile(q)
	return d
}

// quantile is Quantile, and reports whether the rank fell in the last,
// unbounded bucket.
func (h Histogram) quantile(q float64) (time.Duration, bool) {
	n := h.Count()
	if n == 0 {
		return 0, false
	}
	q = min(max(q, 0), 1)
	rank := q * float64(n)
	var below uint64
	for i, c := range h.Counts {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == HistogramBuckets-1 {
			break
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = UpperBound(i - 1)
		}
		hi := UpperBound(i)
		frac := (rank - float64(below)) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo)), false
	}
	return UpperBound(HistogramBuckets - 2), true
}

// SizeBuckets is the number of buckets of a [SizeHistogram]: upper bounds
// of 1, 2, 4, ..., 2^15 (32,768) keys, and one last bucket for larger
// calls.
const SizeBuckets = 17

// SizeHistogram counts sizes (the keys of each call of a batch function,
// Stats.BatchKeys) in fixed exponential buckets: bucket i holds the sizes
// n with SizeUpperBound(i-1) < n <= SizeUpperBound(i), bucket 0 the sizes
// 0 and 1, and the last bucket those over 2^15. Sum is the total of the
// sizes counted, so that Sum / Count() is their mean. It is a plain value;
// its zero value is an empty histogram, and histograms add bucket by
// bucket.
type SizeHistogram struct {
	// Counts holds the number of calls per bucket (not cumulative).
	Counts [SizeBuckets]uint64
	// Sum is the sum of the sizes counted.
	Sum uint64
}

// SizeUpperBound returns the inclusive upper bound of bucket i of a
// [SizeHistogram]: 1 << i for i < SizeBuckets-1, and the largest uint64
// for the last bucket, which has no bound. It panics if i is out of range.
func SizeUpperBound(i int) uint64 {
	switch {
	case i < 0 || i >= SizeBuckets:
		panic("stats: SizeUpperBound: bucket out of range")
	case i == SizeBuckets-1:
		return 1<<64 - 1
	}
	return 1 << i
}

// sizeBucketOf returns the bucket of n.
func sizeBucketOf(n uint64) int {
	if n <= 1 {
		return 0
	}
	// n <= 1<<i  ⇔  bits.Len64(n-1) <= i.
	return min(bits.Len64(n-1), SizeBuckets-1)
}

// Count returns the number of sizes counted: the sum of the buckets.
func (h SizeHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Mean returns Sum / Count(), or 0 for an empty histogram.
func (h SizeHistogram) Mean() float64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return float64(h.Sum) / float64(n)
}
