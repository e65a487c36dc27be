package memohttp

import (
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/memokit/memo"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileNames are cache names an application may give: quotes,
// newlines, markup, NUL, a long name, and names that are not valid UTF-8
// (which memo refuses; the test makes no cache for those where it does).
var hostileNames = []string{
	`memohttp-test/quo"te'`, "memohttp-test/new\nline", `memohttp-test/<script>alert(1)</script>`,
	"memohttp-test/nul\x00", "memohttp-test/" + strings.Repeat("long", 16<<10),
	"memohttp-test/bad\xff", "memohttp-test/\xc3",
}

// TestHostileNames: the page survives any name a cache may have: the
// HTML escapes it (no markup of its own reaches the page), the JSON
// carries it exactly.
func TestHostileNames(t *testing.T) {
	var keep []*memo.Cache
	for _, name := range hostileNames {
		c, err := memo.New(memo.WithName(name), memo.WithMaxSize(2))
		if err != nil {
			assert.Contains(t, err.Error(), "UTF-8", "%q", name)
			continue
		}
		keep = append(keep, c)
	}
	require.Len(t, keep, 5)
	h := Handler(WithTier(`tier "<b>"`, func() stats.Tier { return stats.Tier{} }))

	resp := get(t, h, "/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	html := string(body)
	assert.NotContains(t, html, "<script")
	assert.Contains(t, html, "tier &#34;&lt;b&gt;&#34;")
	assert.Contains(t, html, "memohttp-test/&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, html, "memohttp-test/quo&#34;te&#39;")
	assert.Contains(t, html, strings.Repeat("long", 16<<10))

	var p Page
	resp = get(t, h, "/?format=json")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	for _, c := range keep {
		assert.Equal(t, c.Name(), find(t, p, c.Name()).Name)
	}
	runtime.KeepAlive(keep)
}

// TestInvalidNamesShown: should the registry ever list a name that is
// not valid UTF-8, the page shows each invalid byte as \xNN, so that
// names that differ only there stay apart in the JSON (which would turn
// both into U+FFFD) and the HTML.
func TestInvalidNamesShown(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var caches []Cache
	for _, n := range []string{`bad\xff`, "bad\xfe", "bad\xff", "ok", "\xed\xa0\x80"} {
		caches = append(caches, cacheOf(shownName(n, seen), "lru", stats.Stats{}))
	}
	var names []string
	for _, c := range caches {
		assert.True(t, utf8.ValidString(c.Name), "%q", c.Name)
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{`bad\xff`, `bad\xfe`, `bad\xff#2`, "ok", `\xed\xa0\x80`}, names)
	var b strings.Builder
	require.NoError(t, page.Execute(&b, view{Page: Page{Caches: caches}}))
	assert.Contains(t, b.String(), `bad\xff#2`)
}
