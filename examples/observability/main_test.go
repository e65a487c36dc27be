package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memohttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestDemo serves the demo after some load and reads both endpoints. Its
// users cache refreshes after an hour, later than the test runs however
// loaded the machine, so that no execution is in flight when the figures
// are read.
func TestDemo(t *testing.T) {
	d := newDemo(2*time.Hour, time.Hour)
	d.load(200, 4)
	srv := httptest.NewServer(d.mux())
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	var page memohttp.Page
	require.NoError(t, json.Unmarshal([]byte(get(t, srv.URL+"/debug/memo?format=json")), &page))
	names := map[string]memohttp.Cache{}
	for _, c := range page.Caches {
		names[c.Name] = c
	}
	// The caches as they are listed: the two replicas of users as "users"
	// and "users#2", or later numbers when caches of an earlier -count
	// run are still alive (and prices and geo likewise).
	userA, userB := memo.CacheOf(d.user).Name(), memo.CacheOf(d.userB).Name()
	prices, geo := memo.CacheOf(d.price).Name(), memo.CacheOf(d.country).Name()
	for _, n := range []string{userA, userB, prices, geo} {
		require.Contains(t, names, n)
		assert.Positive(t, names[n].Executions, n)
		c := names[n]
		assert.Equal(t, c.Misses, c.Led+c.Coalesced+c.Abandoned+c.GetMisses, "%s: every miss ended one way", n)
	}
	assert.Positive(t, names[userA].Led)
	assert.Equal(t, "lfu", names[prices].Policy)
	assert.Equal(t, uint64(400), names[geo].Hits+names[geo].Misses, "geo serves two calls a request")
	require.Len(t, page.Tiers, 1)
	tier := page.Tiers[0]
	a, b := names[userA], names[userB]
	assert.Positive(t, a.TierHits+b.TierHits, "the replicas' misses found in the tier")
	assert.Equal(t, tier.Hits, a.TierHits+b.TierHits, "the tier's answers are the replicas' tier hits")
	assert.Equal(t, tier.Misses+tier.LocalRuns, a.Executions+b.Executions,
		"the replicas ran the function on each tier miss, and without the tier")
	for _, n := range []string{prices, geo} {
		assert.Zero(t, names[n].TierHits, n)
	}

	html := get(t, srv.URL+"/debug/memo")
	assert.Contains(t, html, "<svg")
	assert.Contains(t, html, "stale served", "the second line of each cache")
	assert.Contains(t, html, "get misses")
	assert.Contains(t, html, ">Tier hits</th>")
	assert.Contains(t, html, ">Fills</th>")

	metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`memo_cache_hits_total{cache="` + userA + `"}`,
		`memo_cache_execution_duration_seconds_count{cache="` + geo + `"}`,
		`memo_tier_hits_total{tier="l2 (simulated)"}`,
		`memo_tier_fills_total{tier="l2 (simulated)"}`,
		`memo_cache_tier_hits_total{cache="` + userA + `"}`,
		`memo_cache_refreshes_started_total{cache="` + userA + `"}`,
		`memo_cache_stale_served_total{cache="` + userA + `"}`,
		`memo_cache_rejected_total{cache="` + prices + `"}`,
		`memo_cache_led_total{cache="` + geo + `"}`,
		`memo_cache_get_misses_total{cache="` + geo + `"}`,
	} {
		assert.True(t, strings.Contains(metrics, want), want)
	}
}
