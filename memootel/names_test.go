package memootel_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memootel"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// hostileNames are cache names an application may give: quotes,
// backslashes, newlines, markup, NUL, a long name, and names that are not
// valid UTF-8 (which memo refuses; the test makes no cache for those
// where it does).
var hostileNames = []string{
	`quo"te`, `back\slash`, "new\nline\r\n", `<script>alert(1)</script>`,
	`memo.cache.name=y`, "nul\x00byte", "tab\tand space ", strings.Repeat("long", 16<<10),
	"bad\xff", "bad\xfe", "\xc3", "ok-then-\xed\xa0\x80",
}

// TestNamesReachAttributes guards an export that fails because of a
// cache's name: a name that was not valid UTF-8 (which WithName used to
// accept) went into the memo.cache.name attribute as it was, and an OTLP
// exporter cannot encode such a string, so the whole export fails. Every
// attribute value is valid UTF-8, and every name memo accepts is observed
// under itself.
func TestNamesReachAttributes(t *testing.T) {
	var keep []*memo.Cache
	for _, name := range hostileNames {
		c, err := memo.New(memo.WithName(name), memo.WithMaxSize(4))
		if err != nil {
			assert.Contains(t, err.Error(), "UTF-8", "%q", name)
			continue
		}
		c.Set(1, 1)
		_, _ = c.Get(1)
		c.UpdateProfiling(1)
		keep = append(keep, c)
	}
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { require.NoError(t, mp.Shutdown(context.Background())) }()
	reg, err := memootel.Register(mp, memootel.WithTier(`tier "<b>"`+"\n", func() stats.Tier { return stats.Tier{Hits: 1} }))
	require.NoError(t, err)
	defer func() { require.NoError(t, reg.Unregister()) }()

	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	hits := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range attributeSets(m) {
				for _, kv := range set {
					v := kv.Value.AsString()
					assert.True(t, utf8.ValidString(v), "%s: %.80q", m.Name, v)
					if m.Name == "memo.cache.hits" {
						hits[v] = true
					}
				}
			}
		}
	}
	for _, c := range keep {
		assert.True(t, hits[c.Name()], "%.80q is not observed under its name", c.Name())
	}
	runtime.KeepAlive(keep)
}

// attributeSets returns the attributes of every data point of m.
func attributeSets(m metricdata.Metrics) [][]attribute.KeyValue {
	var out [][]attribute.KeyValue
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes.ToSlice())
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes.ToSlice())
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes.ToSlice())
		}
	}
	return out
}
