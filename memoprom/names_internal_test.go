package memoprom

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/memokit/memo/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScrapeSurvivesInvalidNames: a name that is not valid UTF-8 can no
// longer be given with WithName, but should the registry ever list one
// (or two that differ only in their invalid bytes, or one that collides
// with another cache's name once escaped), the scrape still answers 200,
// with one distinct, valid label per cache.
func TestScrapeSurvivesInvalidNames(t *testing.T) {
	names := []string{`bad\xff`, "bad\xfe", "bad\xff", "bad\xff#2", "ok", "\xc3", "\xed\xa0\x80"}
	c := &collector{caches: func(yield func(string, stats.Stats) bool) {
		for _, n := range names {
			if !yield(n, stats.Stats{Hits: 1}) {
				return
			}
		}
	}}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, "%.500s", rec.Body)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	labels := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "memo_cache_hits_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetLabel()[0].GetValue()
			assert.True(t, utf8.ValidString(v), "%q", v)
			labels[v] = true
		}
	}
	assert.Len(t, labels, len(names), "one distinct label per cache: %q", labels)
	assert.True(t, labels["ok"])
	assert.True(t, labels[`bad\xfe`])
}

func TestLabelOf(t *testing.T) {
	seen := map[string]bool{}
	assert.Equal(t, "a\"b\nc", labelOf("a\"b\nc", seen), "valid names are kept as they are")
	assert.Equal(t, `x\xffy`, labelOf("x\xffy", seen))
	assert.Equal(t, `x\xffy#2`, labelOf(`x\xffy`, seen))
	assert.Equal(t, `\xe2\x82`, labelOf("\xe2\x82", seen), "a cut rune: each byte")
	assert.Equal(t, "€"+`\xe2`, labelOf("€\xe2", seen))
	long := strings.Repeat("\xff", 1000)
	assert.Len(t, labelOf(long, seen), 4000)
}

func TestTierNameNotUTF8(t *testing.T) {
	assert.PanicsWithValue(t, `memoprom: WithTier("l2\xff"): the name must be valid UTF-8, as a label value`, func() {
		NewCollector(WithTier("l2\xff", func() stats.Tier { return stats.Tier{} }))
	})
}

// TestEveryCounterReported: each uint64 counter of stats.Stats, given a
// value of its own, is reported by a metric of its own (TotalCalls is the
// execution histogram's _count, from ExecTimes, and BatchCalls the batch
// keys histogram's, from BatchKeys, so they are left out). A counter left
// off the collector, or reported under another's metric, fails here.
func TestEveryCounterReported(t *testing.T) {
	var s stats.Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[float64]string{}
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if f := v.Field(i); f.Kind() == reflect.Uint64 && name != "TotalCalls" && name != "BatchCalls" {
			n := uint64(1000 + 17*i)
			f.SetUint(n)
			want[float64(n)] = name
		}
	}
	c := &collector{caches: func(yield func(string, stats.Stats) bool) { yield("every-counter", s) }}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[float64]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() != nil {
				got[m.GetCounter().GetValue()] = mf.GetName()
			}
		}
	}
	for n, field := range want {
		assert.Contains(t, got, n, "%s is not reported", field)
	}
	assert.Equal(t, "memo_cache_abandoned_leaders_total", got[float64(s.AbandonedLeaders)])
	assert.Equal(t, "memo_cache_stale_retries_total", got[float64(s.StaleRetries)])
}

// TestCollectorBatch: a batch function's statistics are reported as the
// keys-per-call histogram (its _count is BatchCalls, its _sum the keys)
// and two counters, and a cache with no batch counters has no batch
// series.
func TestCollectorBatch(t *testing.T) {
	var batch stats.Stats
	batch.BatchKeys.Counts[0] = 1 // a call of 1 key
	batch.BatchKeys.Counts[7] = 2 // two of 100
	batch.BatchKeys.Sum = 201
	batch.BatchCalls = 3
	batch.BatchCached, batch.BatchJoined = 180, 7
	c := &collector{caches: func(yield func(string, stats.Stats) bool) {
		_ = yield("users", batch) && yield("plain", stats.Stats{Hits: 1})
	}}
	want := `
# HELP memo_cache_batch_cached_keys_total Keys of batch calls served from the cache.
# TYPE memo_cache_batch_cached_keys_total counter
memo_cache_batch_cached_keys_total{cache="users"} 180
# HELP memo_cache_batch_joined_keys_total Keys of batch calls that joined an execution another call had started.
# TYPE memo_cache_batch_joined_keys_total counter
memo_cache_batch_joined_keys_total{cache="users"} 7
# HELP memo_cache_batch_keys Distinct keys per call of a batch function (memo.Batch); the _count counts the calls.
# TYPE memo_cache_batch_keys histogram
`
	cum := uint64(0)
	for i := range stats.SizeBuckets - 1 {
		cum += batch.BatchKeys.Counts[i]
		want += fmt.Sprintf("memo_cache_batch_keys_bucket{cache=\"users\",le=\"%d\"} %d\n", stats.SizeUpperBound(i), cum)
	}
	want += `memo_cache_batch_keys_bucket{cache="users",le="+Inf"} 3
memo_cache_batch_keys_sum{cache="users"} 201
memo_cache_batch_keys_count{cache="users"} 3
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want),
		"memo_cache_batch_keys", "memo_cache_batch_cached_keys_total", "memo_cache_batch_joined_keys_total"))
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	_, err = reg.Gather()
	require.NoError(t, err, "the pedantic registry checks the batch metrics against Describe")
}
