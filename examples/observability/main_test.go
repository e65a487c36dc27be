package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
	for _, n := range []string{"users", "prices", "geo"} {
		require.Contains(t, names, n)
		assert.Positive(t, names[n].Executions, n)
		c := names[n]
		assert.Equal(t, c.Misses, c.Led+c.Coalesced+c.Abandoned+c.GetMisses, "%s: every miss ended one way", n)
	}
	assert.Positive(t, names["users"].Led)
	assert.Equal(t, "lfu", names["prices"].Policy)
	assert.Equal(t, uint64(400), names["geo"].Hits+names["geo"].Misses, "geo serves two calls a request")
	require.Len(t, page.Tiers, 1)
	assert.Equal(t, names["users"].Executions, page.Tiers[0].Hits+page.Tiers[0].Misses)

	html := get(t, srv.URL+"/debug/memo")
	assert.Contains(t, html, "<svg")
	assert.Contains(t, html, "stale served", "the second line of each cache")
	assert.Contains(t, html, "get misses")

	metrics := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`memo_cache_hits_total{cache="users"}`,
		`memo_cache_execution_duration_seconds_count{cache="geo"}`,
		`memo_tier_hits_total{tier="l2 (simulated)"}`,
		`memo_cache_refreshes_started_total{cache="users"}`,
		`memo_cache_stale_served_total{cache="users"}`,
		`memo_cache_rejected_total{cache="prices"}`,
		`memo_cache_led_total{cache="geo"}`,
		`memo_cache_get_misses_total{cache="geo"}`,
	} {
		assert.True(t, strings.Contains(metrics, want), want)
	}
}
