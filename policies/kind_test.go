package policies

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Kind
	}{
		{"lru", LRU}, {"LRU", LRU}, {" Lru\t", LRU},
		{"lfu", LFU}, {"LFU", LFU}, {"\nlFu ", LFU},
		{"w-tinylfu", WTinyLFU}, {"W-TinyLFU", WTinyLFU}, {"wtinylfu", WTinyLFU},
		{"TinyLFU", WTinyLFU}, {" TINYLFU ", WTinyLFU},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
	}
	for _, in := range []string{"", "arc", "lru2", "l r u"} {
		_, err := Parse(in)
		require.Error(t, err, "%q", in)
		assert.Regexp(t, `^memo: unknown policy ".*" \(want "lru", "lfu" or "w-tinylfu"\)`, err.Error())
	}
}

func TestKind(t *testing.T) {
	t.Parallel()
	var zero Kind
	assert.Equal(t, LRU, zero, "zero value is the default")
	for _, k := range []Kind{LRU, LFU, WTinyLFU} {
		assert.True(t, k.Valid())
		back, err := Parse(k.String())
		require.NoError(t, err)
		assert.Equal(t, k, back)
	}
	assert.Equal(t, "lru", LRU.String())
	assert.Equal(t, "lfu", LFU.String())
	assert.Equal(t, "w-tinylfu", WTinyLFU.String())
	assert.False(t, Kind(3).Valid())
	assert.False(t, Kind(-1).Valid())
	assert.Equal(t, "Kind(7)", Kind(7).String())
	assert.PanicsWithValue(t, "memo: unknown policy Kind(7) (want policies.LRU, policies.LFU or policies.WTinyLFU)",
		func() { New[int](Kind(7)) })
	assert.PanicsWithValue(t, "memo: unknown policy Kind(7) (want policies.LRU, policies.LFU or policies.WTinyLFU)",
		func() { NewSized[int](Kind(7), 10, nil) })
	assert.Panics(t, func() { New[int](WTinyLFU) }, "W-TinyLFU needs NewSized")
	assert.Panics(t, func() { NewSized[int](WTinyLFU, 10, nil) }, "W-TinyLFU needs a hash")
}
