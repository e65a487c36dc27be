package memo

import (
	"strings"
	"testing"
	"time"

	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertMemoError checks that err exists, that each of its lines (a joined
// error has several) starts "memo:", and that it mentions each of names.
func assertMemoError(t *testing.T, err error, names ...string) {
	t.Helper()
	if !assert.Error(t, err) {
		return
	}
	msg := err.Error()
	for _, line := range strings.Split(msg, "\n") {
		assert.True(t, strings.HasPrefix(line, "memo: "), "error line %q does not start with \"memo: \"", line)
	}
	for _, name := range names {
		assert.Contains(t, msg, name)
	}
}

func TestNewOptionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []Option
		names []string // what the message must name
	}{
		{"no options", nil, []string{"WithMaxSize"}},
		{"no size", []Option{WithPolicy(policies.LFU), WithTTL(time.Second)}, []string{"WithMaxSize"}},
		{"zero size", []Option{WithMaxSize(0)}, []string{"WithMaxSize(0)"}},
		{"negative size", []Option{WithMaxSize(-1)}, []string{"WithMaxSize(-1)"}},
		{"negative TTL", []Option{WithMaxSize(1), WithTTL(-time.Second)}, []string{"WithTTL(-1s)", "positive"}},
		{"zero TTL", []Option{WithMaxSize(1), WithTTL(0)}, []string{"WithTTL(0s)", "positive"}},
		{"unknown policy", []Option{WithMaxSize(1), WithPolicy(policies.Kind(7))}, []string{"WithPolicy(7)", "policies.LRU"}},
		{"negative policy", []Option{WithMaxSize(1), WithPolicy(policies.Kind(-1))}, []string{"WithPolicy(-1)"}},
		{"nil option", []Option{WithMaxSize(1), nil}, []string{"nil Option"}},
		{"WithCache", []Option{WithMaxSize(1), WithCache(MustNew(WithMaxSize(1)))}, []string{"WithCache", "Decorate"}},
		{"WithCache alone", []Option{WithCache(MustNew(WithMaxSize(1)))}, []string{"WithCache", "Decorate"}},
		{"WithKey", []Option{WithMaxSize(1), WithKey(func([]any) any { return 0 })}, []string{"WithKey", "Decorate"}},
		{"WithKey(nil)", []Option{WithMaxSize(1), WithKey(nil)}, []string{"WithKey(nil)"}},
		{"WithErrorTTL", []Option{WithMaxSize(1), WithErrorTTL(time.Second)}, []string{"WithErrorTTL", "Decorate"}},
		{"WithDeref", []Option{WithMaxSize(1), WithDeref()}, []string{"WithDeref", "Decorate"}},
		{"two errors", []Option{WithMaxSize(0), WithTTL(-time.Second)}, []string{"WithMaxSize(0)", "WithTTL(-1s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.opts...)
			assert.Nil(t, c)
			assertMemoError(t, err, tt.names...)

			var panicked any
			func() {
				defer func() { panicked = recover() }()
				MustNew(tt.opts...)
			}()
			if assert.NotNil(t, panicked, "MustNew must panic") {
				perr, ok := panicked.(error)
				if assert.True(t, ok, "MustNew panics with the error, got %T", panicked) {
					assert.Equal(t, err.Error(), perr.Error())
				}
			}
		})
	}
}

func TestNewValidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
		kind policies.Kind
		size int
		ttl  time.Duration
	}{
		{"size only", []Option{WithMaxSize(1)}, policies.WTinyLFU, 1, 0},
		{"lfu and ttl", []Option{WithMaxSize(100), WithPolicy(policies.LFU), WithTTL(time.Millisecond)}, policies.LFU, 100, time.Millisecond},
		{"last option wins", []Option{WithMaxSize(5), WithMaxSize(7), WithPolicy(policies.LFU), WithPolicy(policies.LRU)}, policies.LRU, 7, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tt.opts...)
			require.NoError(t, err)
			require.NotNil(t, c)
			assert.Equal(t, tt.kind, c.e.Kind)
			st := c.Stats()
			assert.Equal(t, tt.size, st.MaxSize)
			assert.Equal(t, tt.ttl, st.TTL)
			assert.NotPanics(t, func() { MustNew(tt.opts...) })
		})
	}
}

func TestOptionPolicyParse(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]policies.Kind{"lru": policies.LRU, "LFU": policies.LFU, " Lru\n": policies.LRU} {
		k, err := policies.Parse(s)
		require.NoError(t, err, "Parse(%q)", s)
		assert.Equal(t, want, k, "Parse(%q)", s)
		_, err = New(WithMaxSize(1), WithPolicy(k))
		assert.NoError(t, err)
	}
	for _, s := range []string{"bogus", "", "arc"} {
		_, err := policies.Parse(s)
		assertMemoError(t, err, "unknown policy", `"`+s+`"`)
	}
}

// TestOptionsDecorateConfig checks the Decorate side of newConfig: the defaults,
// the Decorate-only options, and WithCache's exclusions.
func TestOptionsDecorateConfig(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := newConfig(nil, true)
		require.NoError(t, err)
		assert.Equal(t, DefaultMaxSize, cfg.maxSize)
		assert.Equal(t, policies.WTinyLFU, cfg.policy)
		assert.Equal(t, time.Duration(0), cfg.ttl)
		assert.Nil(t, cfg.cache)
	})
	t.Run("decorate-only options", func(t *testing.T) {
		t.Parallel()
		shared := MustNew(WithMaxSize(10))
		cfg, err := newConfig([]Option{WithCache(shared), WithKey(func([]any) any { return 0 }), WithErrorTTL(time.Second), WithDeref()}, true)
		require.NoError(t, err)
		assert.Same(t, shared, cfg.cache)
		assert.NotNil(t, cfg.key)
		assert.Equal(t, time.Second, cfg.errorTTL)
		assert.True(t, cfg.deref)
	})
	shared := MustNew(WithMaxSize(10))
	tests := []struct {
		name  string
		opts  []Option
		names []string
	}{
		{"WithCache and WithMaxSize", []Option{WithCache(shared), WithMaxSize(10)}, []string{"WithCache", "WithMaxSize"}},
		{"WithMaxSize and WithCache", []Option{WithMaxSize(10), WithCache(shared)}, []string{"WithCache", "WithMaxSize"}},
		{"WithCache and WithPolicy", []Option{WithCache(shared), WithPolicy(policies.LFU)}, []string{"WithCache", "WithPolicy"}},
		{"WithCache and WithTTL", []Option{WithCache(shared), WithTTL(time.Second)}, []string{"WithCache", "WithTTL"}},
		{"WithCache(nil)", []Option{WithCache(nil)}, []string{"WithCache(nil)"}},
		{"zero size", []Option{WithMaxSize(0)}, []string{"WithMaxSize(0)"}},
		{"negative TTL", []Option{WithTTL(-time.Second)}, []string{"WithTTL(-1s)"}},
		{"unknown policy", []Option{WithPolicy(policies.Kind(7))}, []string{"WithPolicy(7)"}},
		{"zero error TTL", []Option{WithErrorTTL(0)}, []string{"WithErrorTTL(0s)"}},
		{"negative error TTL", []Option{WithErrorTTL(-time.Second)}, []string{"WithErrorTTL(-1s)"}},
		{"WithKey(nil)", []Option{WithKey(nil)}, []string{"WithKey(nil)"}},
		{"nil option", []Option{nil}, []string{"nil Option"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newConfig(tt.opts, true)
			assertMemoError(t, err, tt.names...)
		})
	}
}
