package memootel

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/memokit/memo"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestInvalidNamesObserved: a name that is not valid UTF-8 can no longer
// be given with WithName, but should the registry ever list one (or two
// that differ only in their invalid bytes, or one that collides with
// another cache's name once escaped), each cache is still observed, under
// a distinct, valid attribute value, its histogram included.
func TestInvalidNamesObserved(t *testing.T) {
	names := []string{`bad\xff`, "bad\xfe", "bad\xff", "bad\xff#2", "ok", "\xc3", "\xed\xa0\x80"}
	var caches []*memo.Cache
	for range names {
		c := memo.MustNew(memo.WithMaxSize(1))
		c.UpdateProfiling(1)
		caches = append(caches, c)
	}
	list := func(yield func(string, *memo.Cache) bool) {
		for i, n := range names {
			if !yield(n, caches[i]) {
				return
			}
		}
	}
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	reg, err := register(mp, list, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if !strings.HasPrefix(m.Name, "memo.cache.") {
			continue
		}
		values := map[string]bool{}
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				v, _ := p.Attributes.Value(CacheKey)
				values[v.AsString()] = true
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				v, _ := p.Attributes.Value(CacheKey)
				values[v.AsString()] = true
				assert.Equal(t, uint64(1), p.Count, "%s %q", m.Name, v.AsString())
			}
		}
		assert.Len(t, values, len(names), "%s: one distinct value per cache: %q", m.Name, values)
		for v := range values {
			assert.True(t, utf8.ValidString(v), "%s: %q", m.Name, v)
		}
		assert.True(t, values["ok"], m.Name)
		assert.True(t, values[`bad\xfe`], m.Name)
	}
	runtime.KeepAlive(caches)
}

func TestAttrOf(t *testing.T) {
	seen := map[string]bool{}
	assert.Equal(t, "a\"b\nc", attrOf("a\"b\nc", seen), "valid names are kept as they are")
	assert.Equal(t, `x\xffy`, attrOf("x\xffy", seen))
	assert.Equal(t, `x\xffy#2`, attrOf(`x\xffy`, seen))
	assert.Equal(t, `\xe2\x82`, attrOf("\xe2\x82", seen), "a cut rune: each byte")
	assert.Equal(t, "€"+`\xe2`, attrOf("€\xe2", seen))
}

func TestTierNameNotUTF8(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	_, err := Register(mp, WithTier("l2\xff", func() stats.Tier { return stats.Tier{} }))
	assert.EqualError(t, err, `memootel: WithTier("l2\xff"): the name must be valid UTF-8, as an attribute value`)
}

// TestBatchInstruments: a batch function's statistics are observed as
// four counters and the size histogram, whose buckets and count are
// exact and which records only the calls since the previous collection;
// a cache with no batch counters has no batch measurements.
func TestBatchInstruments(t *testing.T) {
	batch, plain := memo.MustNew(memo.WithMaxSize(1)), memo.MustNew(memo.WithMaxSize(1))
	var fig stats.Stats
	fig.BatchKeys.Counts[0] = 1 // a call of 1 key
	fig.BatchKeys.Counts[7] = 2 // two of 100
	fig.BatchKeys.Sum, fig.BatchCalls = 201, 3
	fig.BatchCached, fig.BatchJoined = 180, 7
	statsOf = func(c *memo.Cache) stats.Stats {
		if c == batch {
			return fig
		}
		return c.Stats()
	}
	defer func() { statsOf = (*memo.Cache).Stats }()
	list := func(yield func(string, *memo.Cache) bool) {
		_ = yield("users", batch) && yield("plain", plain)
	}
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	reg, err := register(mp, list, nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	collect := func() (map[string]int64, metricdata.HistogramDataPoint[int64]) {
		var rm metricdata.ResourceMetrics
		require.NoError(t, r.Collect(context.Background(), &rm))
		sums := map[string]int64{}
		var hist metricdata.HistogramDataPoint[int64]
		for _, m := range rm.ScopeMetrics[0].Metrics {
			if !strings.HasPrefix(m.Name, "memo.cache.batch.") {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				require.Len(t, d.DataPoints, 1, "%s: only the batch function's cache", m.Name)
				v, _ := d.DataPoints[0].Attributes.Value(CacheKey)
				assert.Equal(t, "users", v.AsString())
				sums[m.Name] = d.DataPoints[0].Value
			case metricdata.Histogram[int64]:
				require.Len(t, d.DataPoints, 1, "%s: only the batch function's cache", m.Name)
				hist = d.DataPoints[0]
			}
		}
		return sums, hist
	}
	sums, hist := collect()
	assert.Equal(t, map[string]int64{
		"memo.cache.batch.calls": 3, "memo.cache.batch.keys": 201,
		"memo.cache.batch.cached_keys": 180, "memo.cache.batch.joined_keys": 7,
	}, sums)
	assert.EqualValues(t, 3, hist.Count)
	assert.EqualValues(t, 1, hist.BucketCounts[0])
	assert.EqualValues(t, 2, hist.BucketCounts[7], "100 keys: the bucket (64, 128]")
	assert.EqualValues(t, 1+2*128, hist.Sum, "each call at its bucket's upper bound")

	fig.BatchKeys.Counts[1]++ // one more call, of 2 keys
	fig.BatchKeys.Sum += 2
	fig.BatchCalls++
	_, hist = collect()
	assert.EqualValues(t, 4, hist.Count, "cumulative: the new call once")
	assert.EqualValues(t, 1, hist.BucketCounts[1])
	runtime.KeepAlive(batch)
	runtime.KeepAlive(plain)
}
