package names

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShown(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range []struct{ in, want string }{
		{"a\"b\nc", "a\"b\nc"}, // valid names are kept as they are
		{"x\xffy", `x\xffy`},
		{`x\xffy`, `x\xffy#2`},   // a valid name equal to an escaped one
		{"\xe2\x82", `\xe2\x82`}, // a cut rune: each byte
		{"€\xe2", "€" + `\xe2`},
		{"x\xffy", `x\xffy#3`},
	} {
		got := Shown(c.in, seen)
		if got != c.want {
			t.Errorf("Shown(%q) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Shown(%q) = %q is not valid UTF-8", c.in, got)
		}
	}
	long := strings.Repeat("n", 4000)
	if got := Shown(long, seen); got != long {
		t.Errorf("a long valid name changed: %d bytes", len(got))
	}
}
