package memoprom_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memoprom"
	"github.com/memokit/memo/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileNames are cache names an application may give: quotes,
// backslashes, newlines, markup, label syntax, NUL, a long name, and
// names that are not valid UTF-8 (which memo refuses; the test makes no
// cache for those where it does).
var hostileNames = []string{
	`quo"te`, `back\slash`, "new\nline\r\n", `<script>alert(1)</script>`,
	`x{cache="y"} 1`, "nul\x00byte", "tab\tand space ", strings.Repeat("long", 16<<10),
	"bad\xff", "bad\xfe", "\xc3", "ok-then-\xed\xa0\x80",
}

// TestScrapeSurvivesNames guards a scrape that failed because of a
// cache's name: a name that was not valid UTF-8 (which WithName used to
// accept) made memoprom answer every scrape with a 500, and with it the
// application's own metrics vanished. Every name memo accepts is
// scraped, with the other metrics of the registry, and reads back as it
// was given.
func TestScrapeSurvivesNames(t *testing.T) {
	var keep []*memo.Cache
	for _, name := range hostileNames {
		c, err := memo.New(memo.WithName(name), memo.WithMaxSize(4))
		if err != nil {
			assert.Contains(t, err.Error(), "UTF-8", "%q", name)
			continue
		}
		c.Set(1, 1)
		_, _ = c.Get(1)
		keep = append(keep, c)
	}
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(memoprom.NewCollector(memoprom.WithTier(`tier "<b>"`+"\n", func() stats.Tier { return stats.Tier{Hits: 1} }))))
	app := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_requests_total", Help: "The application's own."})
	require.NoError(t, reg.Register(app))
	app.Inc()

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%.500s", body)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err, "the exposition parses")
	require.Contains(t, families, "app_requests_total")
	got := map[string]bool{}
	for _, m := range families["memo_cache_hits_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			got[l.GetValue()] = true
		}
	}
	for _, c := range keep {
		assert.True(t, got[c.Name()], "%.80q is not scraped under its name", c.Name())
	}
	runtime.KeepAlive(keep)
}
