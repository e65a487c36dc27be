//go:build amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm

package memo

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// This test needs 64-bit ints (lengths of 1<<40 elements of size zero).

// Slices and arrays of zero-size elements take no memory however long:
// their keys are bounded in time too, and stay exact.
func TestKeyZeroSizeElements(t *testing.T) {
	// A hang (a walk of 1<<40 elements) shows as go test's -timeout.
	huge := make([]struct{}, 1<<40)
	h := MakeHashable(huge)
	assert.Equal(t, h, MakeHashable(make([]struct{}, 1<<40)))
	assert.NotEqual(t, h, MakeHashable(make([]struct{}, 1<<40-1)))
	assert.Equal(t, MakeHashable(new([1 << 40]struct{})), MakeHashable(new([1 << 40]struct{})))
	assert.Equal(t, MakeHashable([]any{huge}), MakeHashable([]any{make([]struct{}, 1<<40)}))
	// Zero-size CacheKeyers spell out their keys, up to the limit.
	assert.Equal(t, MakeHashable(make([]bdZeroKeyer, 3)), MakeHashable(make([]bdZeroKeyer, 3)))
	assert.NotEqual(t, MakeHashable(make([]bdZeroKeyer, 3)), MakeHashable(make([]bdZeroKeyer, 4)))
	assert.IsType(t, HashableWrapper{}, MakeHashable(make([]bdZeroKeyer, 1<<40)), "past the key limit")
	var calls int
	f := Decorate(func(xs []struct{}, a [1 << 30]struct{}) int { calls++; return len(xs) })
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1, calls)
}
