package memohttp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mapTier is a shared tier in memory, for two "replicas" in one process:
// a load finds what another stored, or runs and stores.
type mapTier struct {
	mu sync.Mutex
	m  map[[32]byte][]any
}

type mapReplica struct{ *mapTier }

func (t *mapTier) Bind(memo.TierFunc) (memo.TierBinding, error) { return t, nil }

func (t *mapTier) Load(ctx context.Context, key memo.TierKey, compute memo.TierCompute) ([]any, time.Duration, bool) {
	t.mu.Lock()
	v, ok := t.m[key.Digest]
	t.mu.Unlock()
	if ok {
		return v, 0, true // kept for ever: no TTL to carry
	}
	res, _, store := compute(ctx)
	if store {
		t.mu.Lock()
		t.m[key.Digest] = res
		t.mu.Unlock()
	}
	return nil, 0, false
}

func (t *mapTier) Refresh(ctx context.Context, key memo.TierKey, _ time.Time, compute memo.TierCompute) ([]any, time.Duration, bool) {
	return t.Load(ctx, key, compute)
}
func (t *mapTier) Invalidate(context.Context, memo.TierKey) error { return nil }
func (t *mapTier) Clear(context.Context) error                    { return nil }
func (t *mapTier) MaxLocalAge() time.Duration                     { return 0 }
func (t *mapTier) Unbind()                                        {}

// TestTierHitsApartFromExecutions guards the page's Executions of a
// tiered function, which counted the loads the shared tier answered as if
// the function had run: Executions are the runs, Tier hits the tier's
// answers, in the JSON and in a column of the HTML table.
func TestTierHitsApartFromExecutions(t *testing.T) {
	tier := &mapTier{m: map[[32]byte][]any{}}
	runs := 0
	fn := func(k int) int { runs++; return k }
	a := memo.Func(fn, memo.WithName("memohttp-test/tiered"), memo.WithTier(tier))
	// b is another replica: the same name, on the same store.
	b := memo.Func(fn, memo.WithName("memohttp-test/tiered"), memo.WithTier(&mapReplica{tier}))
	for k := range 5 {
		a(k)
	}
	for k := range 7 {
		b(k) // 0-4 from the tier, 5 and 6 run
	}
	require.Equal(t, 7, runs)
	h := Handler()

	var p Page
	resp := get(t, h, "/?format=json")
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	ca, cb := find(t, p, memo.CacheOf(a).Name()), find(t, p, memo.CacheOf(b).Name())
	assert.Equal(t, [2]uint64{5, 0}, [2]uint64{ca.Executions, ca.TierHits}, "a: executions, tier hits")
	assert.Equal(t, [2]uint64{2, 5}, [2]uint64{cb.Executions, cb.TierHits}, "b: executions, tier hits")

	resp = get(t, h, "/")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	html := string(body)
	assert.Contains(t, html, ">Tier hits</th>")
	row := html[strings.Index(html, memo.CacheOf(b).Name()+"<"):]
	row = row[:strings.Index(row, "</tr>")]
	assert.Contains(t, row, "<td>2</td>\n<td>5</td>", "b's Executions then Tier hits")
	a(0)
	b(0)
}

// TestTierFields: every field of stats.Tier, given a value of its own, is
// in the page's Tier (so in the JSON) and on the HTML page. The page
// lacked a tier's fills, local runs, invalidations, resubscribes and age
// flushes; a field added to stats.Tier and left off the page fails here.
func TestTierFields(t *testing.T) {
	t.Parallel()
	var s stats.Tier
	v := reflect.ValueOf(&s).Elem()
	want := map[string]uint64{}
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Uint64:
			n := uint64(2000 + 17*i)
			f.SetUint(n)
			want[v.Type().Field(i).Name] = n
		case reflect.Bool:
			f.SetBool(true)
		}
	}
	require.Len(t, want, 11, "the uint64 counters of stats.Tier")
	tr := tierOf("every-field", s)
	inJSON := map[uint64]bool{}
	tv := reflect.ValueOf(tr)
	for i := range tv.NumField() {
		if f := tv.Field(i); f.Kind() == reflect.Uint64 {
			inJSON[f.Uint()] = true
		}
	}
	assert.True(t, tr.BreakerOpen)
	var b strings.Builder
	require.NoError(t, page.Execute(&b, view{Page: Page{Tiers: []Tier{tr}}}))
	for field, n := range want {
		assert.True(t, inJSON[n], "%s is not in the JSON's Tier", field)
		assert.Contains(t, b.String(), ">"+strconv.FormatUint(n, 10)+"<", "%s is not on the HTML page", field)
	}
	assert.Contains(t, b.String(), `<span class="open">open</span>`)
}

func TestHandlerTierNameNotUTF8(t *testing.T) {
	t.Parallel()
	assert.PanicsWithValue(t, `memohttp: WithTier("l2\xff"): the name must be valid UTF-8`, func() {
		Handler(WithTier("l2\xff", func() stats.Tier { return stats.Tier{} }))
	})
	assert.Equal(t, http.StatusOK, get(t, Handler(WithTier(`l2 "<b>"`, func() stats.Tier { return stats.Tier{} })), "/").StatusCode)
}
