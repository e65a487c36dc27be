// Package names gives the exporters (memohttp, memoprom, memootel) one
// rule for showing a cache's name: a label, an attribute or a page cell
// must be valid UTF-8 and unique within one scrape, collection or page.
package names

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Shown returns how to show the cache listed as name: name itself when it
// is valid UTF-8 and not in seen, else name with each invalid byte written
// as \xNN and, if that is in seen, "#2", "#3", ... appended. It adds the
// result to seen. seen belongs to one scrape, collection or page; Shown is
// safe for concurrent use with distinct seen maps.
func Shown(name string, seen map[string]bool) string {
	v := name
	if !utf8.ValidString(v) {
		var b strings.Builder
		for i := 0; i < len(name); {
			r, n := utf8.DecodeRuneInString(name[i:])
			if r == utf8.RuneError && n == 1 {
				fmt.Fprintf(&b, `\x%02x`, name[i])
			} else {
				b.WriteString(name[i : i+n])
			}
			i += n
		}
		v = b.String()
	}
	for n, base := 2, v; seen[v]; n++ {
		v = base + "#" + strconv.Itoa(n)
	}
	seen[v] = true
	return v
}
