package memo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzStringKeys: typed functions of one string argument (the fast path
// under 128 bytes, the general one above) return each string's own result,
// never another's, in either order of first call, and Invalidate removes
// exactly the entry asked for.
func FuzzStringKeys(f *testing.F) {
	f.Add("a", "b")
	f.Add("", "\x00")
	f.Add("héllo", "héllo\x00")
	f.Add(strings.Repeat("x", 127), strings.Repeat("x", 128))
	f.Add("\x07abcdefg", "abcdefg\x07")
	f.Fuzz(func(t *testing.T, a, b string) {
		g := memo.Func(func(s string) string { return "r:" + s })
		ctx := memo.FuncCtx(func(_ context.Context, s string) (string, error) { return "c:" + s, nil })
		for range 2 {
			for _, s := range []string{a, b} {
				if got := g(s); got != "r:"+s {
					t.Fatalf("g(%q) = %q", s, got)
				}
				if got, _ := ctx(context.Background(), s); got != "c:"+s {
					t.Fatalf("ctx(%q) = %q", s, got)
				}
			}
		}
		if a != b {
			require.True(t, memo.Invalidate(g, a))
			assert.Equal(t, "r:"+b, g(b), "b's entry stays")
			assert.Equal(t, 1, memo.CacheOf(g).Len())
		}
	})
}

// Func over a function returning only an error stored non-nil errors,
// and did not count them as failures.
func TestTypedErrorResultNotStored(t *testing.T) {
	t.Parallel()
	calls := 0
	fail := errors.New("boom")
	f := memo.Func(func(x int) error {
		calls++
		if x < 0 {
			return fail
		}
		return nil
	})
	for range 2 {
		assert.ErrorIs(t, f(-1), fail)
		assert.NoError(t, f(1))
	}
	assert.Equal(t, 3, calls, "the error is returned, not stored; nil is stored")
	st := memo.CacheOf(f).Stats()
	assert.Equal(t, uint64(2), st.Failures)
	assert.Equal(t, 1, st.CurrentSize)
}
