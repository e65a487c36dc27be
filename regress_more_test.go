package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type rmBox struct{ V any }

// Nesting through interface values used to escape both the depth limit
// (only containers counted) and the 4 MiB limit (a byte or two per level):
// a few million levels overflowed the stack. Past maxDepth interfaces now
// get a nonce, like too-deep containers.
func TestRegressionDeepInterfaceNesting(t *testing.T) {
	t.Parallel()
	deep := func(n int) any {
		var x any
		for range n {
			x = rmBox{x}
		}
		return x
	}
	tooDeep := deep(maxDepth + 10)
	assert.False(t, MakeHashable(tooDeep) == MakeHashable(tooDeep), "past the limit a key matches nothing")
	ok := deep(maxDepth - 10)
	assert.True(t, MakeHashable(ok) == MakeHashable(deep(maxDepth-10)), "within it, equal structure, equal keys")
}

// Cache.Get/Set keys and decorated functions' keys shared a cache through
// WithCache, and a 1-byte namespace for Cache keys was a prefix of the
// 8-byte number of every function whose low byte is 0: an int Set into the
// cache could be returned by the function, and the reverse.
func TestRegressionCacheKeysApartFromFunctionKeys(t *testing.T) {
	for funcIDs.Load()%65536 != 511 {
		funcIDs.Add(1)
	}
	c := MustNew(WithMaxSize(10))
	f := Decorate(func(s string) string { return "f:" + s }, WithCache(c))
	w := lookupWrapped(f)
	require.Equal(t, uint64(512), w.fid%65536)
	require.Equal(t, "f:c", f("c"))

	s := getState()
	w.encode(s, []reflect.Value{reflect.ValueOf("c")})
	k := slices.Clone(s.buf)
	putState(s)
	require.Len(t, k, 10)
	// The int whose key, under a 1-byte namespace 00 and int's type id 02,
	// was exactly f("c")'s key.
	require.Equal(t, []byte{0, 2}, k[:2])
	require.Equal(t, uint64(2), basicIDs.int)
	n := int(binary.LittleEndian.Uint64(k[2:10]))
	_, err := c.Get(n)
	assert.ErrorIs(t, err, ErrNotFound, "a Cache key must not reach a function's entry")
	c.Set(n, 42)
	assert.Equal(t, "f:c", f("c"), "and a Set must not replace it")
}

// Func over a function returning only an error stored non-nil errors,
// and did not count them as failures.
func TestRegressionTypedErrorResultNotStored(t *testing.T) {
	t.Parallel()
	calls := 0
	fail := errors.New("boom")
	f := Func(func(x int) error {
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
	st := CacheOf(f).Stats()
	assert.Equal(t, uint64(2), st.Failures)
	assert.Equal(t, 1, st.CurrentSize)
}

// Coalesced counted callers when they joined an execution, also those that
// left before it finished (their context ended) and so were not served.
func TestRegressionCoalescedCountsOnlyServedCallers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		f := Decorate(func(ctx context.Context, k int) (int, error) {
			<-release
			return k, nil
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			v, err := f(context.Background(), 1)
			assert.NoError(t, err)
			assert.Equal(t, 1, v)
		}()
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		left := make(chan error)
		go func() {
			_, err := f(ctx, 1)
			left <- err
		}()
		served := make(chan struct{})
		go func() {
			defer close(served)
			v, err := f(context.Background(), 1)
			assert.NoError(t, err)
			assert.Equal(t, 1, v)
		}()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-left, context.Canceled)
		close(release)
		<-done
		<-served
		st := CacheOf(f).Stats()
		assert.Equal(t, uint64(3), st.Misses)
		assert.Equal(t, uint64(1), st.Coalesced, "only the caller that got the result")
	})
}
