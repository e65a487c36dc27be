//go:build amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm

// The tests here need 64-bit ints (lengths of 1<<40 elements of size zero).

package memo_test

import (
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
)

// Slices and arrays of zero-size elements take no memory however long:
// their keys are bounded in time too, and stay exact.
//
// Guards the reported bugs of issue 8 (items 3, 4 and 7b: unbounded keys,
// calls that can never hit stored anyway, HashableWrapper's hash,
// containers of CacheKeyer elements).
func TestKeyZeroSizeElements(t *testing.T) {
	// A hang (a walk of 1<<40 elements) shows as go test's -timeout.
	huge := make([]struct{}, 1<<40)
	h := memo.MakeHashable(huge)
	assert.Equal(t, h, memo.MakeHashable(make([]struct{}, 1<<40)))
	assert.NotEqual(t, h, memo.MakeHashable(make([]struct{}, 1<<40-1)))
	assert.Equal(t, memo.MakeHashable(new([1 << 40]struct{})), memo.MakeHashable(new([1 << 40]struct{})))
	assert.Equal(t, memo.MakeHashable([]any{huge}), memo.MakeHashable([]any{make([]struct{}, 1<<40)}))
	// Zero-size CacheKeyers spell out their keys, up to the limit.
	assert.Equal(t, memo.MakeHashable(make([]bdZeroKeyer, 3)), memo.MakeHashable(make([]bdZeroKeyer, 3)))
	assert.NotEqual(t, memo.MakeHashable(make([]bdZeroKeyer, 3)), memo.MakeHashable(make([]bdZeroKeyer, 4)))
	assert.IsType(t, memo.HashableWrapper{}, memo.MakeHashable(make([]bdZeroKeyer, 1<<40)), "past the key limit")
	var calls int
	f := memo.Decorate(func(xs []struct{}, a [1 << 30]struct{}) int { calls++; return len(xs) })
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1, calls)
}

type bdZeroKeyer struct{}

func (bdZeroKeyer) CacheKey() any { return "k" }
