package memo_test

import (
	"math"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHashableMakeHashableComparable checks that MakeHashable's results
// are comparable map keys that follow the key rules.
func TestHashableMakeHashableComparable(t *testing.T) {
	t.Parallel()
	m := map[any]string{}
	m[memo.MakeHashable([]int{1, 2})] = "slice"
	m[memo.MakeHashable([2]int{1, 2})] = "array"
	m[memo.MakeHashable(map[string]int{"a": 1})] = "map"
	m[memo.MakeHashable(math.NaN())] = "nan"
	require.Len(t, m, 4)
	assert.Equal(t, "slice", m[memo.MakeHashable([]int{1, 2})])
	assert.Equal(t, "array", m[memo.MakeHashable([2]int{1, 2})])
	assert.Equal(t, "map", m[memo.MakeHashable(map[string]int{"a": 1})])
	assert.Equal(t, "nan", m[memo.MakeHashable(-math.NaN())])
}

func TestIsMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    any
		want bool
	}{
		{nil, false},
		{1, false},
		{"ab", false},
		{[]int{1}, false},
		{[2]int{}, false},
		{map[string]int{}, true},
		{map[string]int(nil), true},
		{map[any]any{1: 2}, true},
		{&map[string]int{}, false},
		{struct{ M map[int]int }{}, false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, memo.IsMapping(tc.v), "IsMapping(%T)", tc.v)
	}
}
