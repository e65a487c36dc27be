//go:build amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || wasm

package memo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// This test needs 64-bit ints (lengths of 1<<40 elements of size zero).

// Slices and arrays of zero-size elements take no memory however long:
// their keys are bounded in time too, and stay exact.
func TestKeyZeroSizeElements(t *testing.T) {
	huge := make([]struct{}, 1<<40)
	done := make(chan any, 1)
	go func() { done <- MakeHashable(huge) }()
	select {
	case h := <-done:
		assert.Equal(t, h, MakeHashable(make([]struct{}, 1<<40)))
		assert.NotEqual(t, h, MakeHashable(make([]struct{}, 1<<40-1)))
	case <-time.After(5 * time.Second):
		t.Fatal("MakeHashable of a long []struct{} hangs")
	}
	assert.Equal(t, MakeHashable(new([1 << 40]struct{})), MakeHashable(new([1 << 40]struct{})))
	assert.Equal(t, MakeHashable([]any{huge}), MakeHashable([]any{make([]struct{}, 1<<40)}))
	// Zero-size CacheKeyers spell out their keys, up to the limit.
	assert.Equal(t, MakeHashable(make([]bdZeroKeyer, 3)), MakeHashable(make([]bdZeroKeyer, 3)))
	assert.NotEqual(t, MakeHashable(make([]bdZeroKeyer, 3)), MakeHashable(make([]bdZeroKeyer, 4)))
	go func() { done <- MakeHashable(make([]bdZeroKeyer, 1<<40)) }()
	select {
	case h := <-done:
		assert.IsType(t, HashableWrapper{}, h, "past the key limit")
	case <-time.After(10 * time.Second):
		t.Fatal("MakeHashable of a long []CacheKeyer of size 0 hangs")
	}
	var calls int
	f := Decorate(func(xs []struct{}, a [1 << 30]struct{}) int { calls++; return len(xs) })
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1<<40, f(huge, [1 << 30]struct{}{}))
	assert.Equal(t, 1, calls)
}
