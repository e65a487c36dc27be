package memohttp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demo makes two caches with known figures; keep them alive while testing.
func demo(t *testing.T) (*memo.Cache, func(int) int) {
	t.Helper()
	users := memo.MustNew(memo.WithMaxSize(10), memo.WithPolicy(policies.LFU),
		memo.WithTTL(time.Minute), memo.WithName("memohttp-test/users"))
	users.Set(1, "a")
	users.Set(2, "b")
	_, _ = users.Get(1)
	_, _ = users.Get(1)
	_, _ = users.Get(3)
	users.UpdateProfiling(3 * time.Millisecond)
	square := memo.Func(func(n int) int { return n * n }, memo.WithName("memohttp-test/<square>"))
	for _, n := range []int{1, 2, 1, 1} {
		square(n)
	}
	return users, square
}

func get(t *testing.T, h http.Handler, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func find(t *testing.T, p Page, name string) Cache {
	t.Helper()
	for _, c := range p.Caches {
		if c.Name == name {
			return c
		}
	}
	require.Failf(t, "cache not on the page", "%q", name)
	return Cache{}
}

func TestJSON(t *testing.T) {
	users, square := demo(t)
	h := Handler(WithTier("redis", func() stats.Tier {
		return stats.Tier{Hits: 3, Misses: 1, Errors: 2, DecodeErrors: 1, LeaseWaits: 4, BreakerOpens: 1, BreakerOpen: true,
			Fills: 5, LocalRuns: 6, Invalidations: 7, Resubscribes: 8, GenerationFlushes: 9}
	}))
	for _, how := range []struct{ target, accept string }{
		{"/?format=json", ""},
		{"/", "application/json"},
		{"/", "text/html;q=0.9, application/json;q=1"},
	} {
		resp := get(t, h, how.target, "Accept", how.accept)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), how)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)

		// The documented shape, and nothing else.
		var p Page
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&p), how)

		// Caches left by earlier runs (-count) may hold the names: look up
		// the ones this run made by the names they are listed under.
		u := find(t, p, users.Name())
		us := users.Stats()
		assert.Equal(t, Cache{
			Name: users.Name(), Policy: "lfu", Size: 2, Capacity: 10, TTLSeconds: 60,
			Hits: 2, Misses: 1, HitRatio: 2.0 / 3, GetMisses: 1, Executions: 1,
			ExecTime: Timing{
				Avg: 0.003, Min: 0.003, Max: 0.003,
				P50: us.Quantile(0.5).Seconds(), P90: us.Quantile(0.9).Seconds(), P99: us.Quantile(0.99).Seconds(),
			},
			ExecBuckets: us.ExecTimes.Counts[:],
		}, u)
		assert.Len(t, u.ExecBuckets, stats.HistogramBuckets)
		assert.Equal(t, uint64(1), u.ExecBuckets[12], "3ms is in (2048µs, 4096µs]")

		s := find(t, p, memo.CacheOf(square).Name())
		assert.Equal(t, uint64(2), s.Hits)
		assert.Equal(t, uint64(2), s.Misses)
		assert.Equal(t, uint64(2), s.Led, "square(1) and square(2) ran the function")
		assert.Zero(t, s.GetMisses)
		assert.Equal(t, uint64(2), s.Executions)
		var sum uint64
		for _, n := range s.ExecBuckets {
			sum += n
		}
		assert.Equal(t, s.Executions, sum, "the buckets count every execution")

		assert.Equal(t, []Tier{{Name: "redis", Hits: 3, Misses: 1, HitRatio: 0.75, Errors: 2,
			DecodeErrors: 1, LeaseWaits: 4, BreakerOpens: 1, BreakerOpen: true,
			Fills: 5, LocalRuns: 6, Invalidations: 7, Resubscribes: 8, GenerationFlushes: 9}}, p.Tiers)

		// The field names, as documented.
		var raw map[string][]map[string]any
		require.NoError(t, json.Unmarshal(body, &raw))
		require.Contains(t, raw, "caches")
		require.Contains(t, raw, "tiers")
		for _, k := range []string{"name", "policy", "size", "capacity", "ttl_seconds", "hits", "misses",
			"hit_ratio", "led", "coalesced", "evictions", "expirations", "executions", "tier_hits", "failures", "abandoned",
			"abandoned_leaders", "get_misses", "uncacheable", "refreshes_started", "refreshes_succeeded", "refreshes_failed",
			"stale_served", "stale_retries", "rejected", "exec_seconds", "exec_buckets"} {
			assert.Contains(t, raw["caches"][0], k)
		}
		for _, k := range []string{"name", "hits", "misses", "hit_ratio", "fills", "local_runs", "lease_waits",
			"errors", "decode_errors", "invalidations", "resubscribes", "generation_flushes", "breaker_opens", "breaker_open"} {
			assert.Contains(t, raw["tiers"][0], k)
		}
	}
	square(9)
}

func TestHTML(t *testing.T) {
	_, square := demo(t)
	mux := http.NewServeMux()
	mux.Handle("/ops/debug/memo", Handler(WithTier("l2", func() stats.Tier { return stats.Tier{Hits: 1, Misses: 3} })))
	resp := get(t, mux, "/ops/debug/memo", "Accept", "text/html")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	html := string(body)
	assert.Contains(t, html, "memohttp-test/users")
	assert.Contains(t, html, "memohttp-test/&lt;square&gt;", "names are escaped")
	assert.NotContains(t, html, "<square>")
	assert.NotContains(t, html, "<script", "no JavaScript")
	assert.Contains(t, html, `<rect width="67" height="10" fill="#2e8b57"/>`, "users' 2/3 hit ratio as an SVG bar")
	assert.Contains(t, html, "66.7%")
	assert.Contains(t, html, "2&nbsp;/ 10")
	assert.Contains(t, html, `href="?format=json"`, "a relative link works under any prefix")
	assert.Contains(t, html, ">l2<")
	assert.Contains(t, html, "25.0%", "the tier's hit ratio")
	square(9)
}

func TestMethods(t *testing.T) {
	t.Parallel()
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("")))
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	assert.Equal(t, http.StatusOK, get(t, h, "/?format=html", "Accept", "application/json").StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", get(t, h, "/?format=html", "Accept", "application/json").Header.Get("Content-Type"),
		"an explicit format wins over Accept")
}

func TestHandlerOptions(t *testing.T) {
	t.Parallel()
	assert.PanicsWithValue(t, "memohttp: nil Option", func() { Handler(nil) })
	assert.Panics(t, func() { Handler(WithTier("", func() stats.Tier { return stats.Tier{} })) })
	assert.Panics(t, func() { Handler(WithTier("x", nil)) })
}

func TestSeconds(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{
		0: "–", 0.00000085: "850ns", 0.000123456: "123.46µs", 0.0012345: "1.23ms", 2.5: "2.5s", 90: "1m30s",
	} {
		assert.Equal(t, want, seconds(in), in)
	}
}

// TestEveryCounter: each uint64 counter of stats.Stats, given a value of
// its own, is in the page's Cache (so in the JSON) and on the HTML page.
// A counter added to Stats and left off the page fails here.
func TestEveryCounter(t *testing.T) {
	t.Parallel()
	var s stats.Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[string]uint64{}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Uint64 {
			n := uint64(1000 + 17*i)
			f.SetUint(n)
			want[v.Type().Field(i).Name] = n
		}
	}
	require.Len(t, want, 22)
	// Executions are TotalCalls less TierHits: the function's runs.
	s.TotalCalls = 5000
	want["TotalCalls"] = 5000 - s.TierHits
	c := cacheOf("every-counter", "lru", s)

	inJSON := map[uint64]bool{}
	cv := reflect.ValueOf(c)
	for i := range cv.NumField() {
		if f := cv.Field(i); f.Kind() == reflect.Uint64 {
			inJSON[f.Uint()] = true
		}
	}
	var b strings.Builder
	require.NoError(t, page.Execute(&b, view{Page: Page{Caches: []Cache{c}}}))
	html := b.String()
	for field, n := range want {
		assert.True(t, inJSON[n], "%s is not in the JSON's Cache", field)
		assert.Contains(t, html, ">"+strconv.FormatUint(n, 10)+"<", "%s is not on the HTML page", field)
	}
}

// TestBatchFigures: a batch function's figures are in the JSON (the keys
// per call as buckets too) and on the second line of its row; a function
// that is not a batch function has no batch buckets and no batch text.
func TestBatchFigures(t *testing.T) {
	t.Parallel()
	var s stats.Stats
	s.BatchKeys.Counts[0], s.BatchKeys.Counts[7] = 1, 2
	s.BatchKeys.Sum, s.BatchCalls = 201, 3
	s.BatchCached, s.BatchJoined = 180, 7
	batch, plain := cacheOf("users", "lru", s), cacheOf("plain", "lru", stats.Stats{Hits: 1})
	assert.Equal(t, []uint64{1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, batch.BatchKeyBuckets)
	raw, err := json.Marshal(plain)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "batch_key_buckets")
	raw, err = json.Marshal(batch)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"batch_calls":3,"batch_keys":201,"batch_cached_keys":180,"batch_joined_keys":7,"batch_key_buckets":[1,`)

	var b strings.Builder
	require.NoError(t, page.Execute(&b, view{Page: Page{Caches: []Cache{batch, plain}}}))
	html := b.String()
	assert.Contains(t, html, "batch calls <b>3</b>, keys <b>201</b> (<b>67.0</b> per call), served from the cache <b>180</b>, joined <b>7</b>")
	assert.Equal(t, 1, strings.Count(html, "batch calls <b>"), "no batch text for the plain function")
}
