package memo

import (
	"os"
	"os/exec"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rvDeep keys negative values by a string and others by themselves.
type rvDeep int64

func (k rvDeep) CacheKey() any {
	if k < 0 {
		return "negative"
	}
	return k
}

type (
	rvPad1 struct{ A int8 }
	rvPad2 struct{ A int16 }
	rvPad3 struct{ A int32 }
	rvPad4 struct{ A int64 }
)

func rvNest(depth int, inner any) any {
	v := []any{inner}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

// keyerEncoder writes tagValue and then either uvarint(type id) and a value,
// or, at maxDepth, tagNonce (5) and a u64 nonce. For the type whose id is 5,
// "tagValue 05 <u64 n>" is both rvDeep(n) keyed by itself and the nonce n:
// the nonce is not "never equal to another key". Type ids depend on the order
// types are first keyed, so this runs in a child process that makes rvDeep's
// id 5.
func TestRegressionKeyerDepthNonceCollision(t *testing.T) {
	if os.Getenv("MEMO_REVIEW_NONCE_CHILD") == "1" {
		// Package init already numbered a few basic types (Cache.Get's fast
		// path); this throwaway process encodes none of them, so it may
		// hand out their ids again to arrange rvDeep's.
		if typeIDs.Load() > 3 {
			typeIDs.Store(0)
		}
		for _, p := range []reflect.Type{reflect.TypeFor[rvPad1](), reflect.TypeFor[rvPad2](), reflect.TypeFor[rvPad3](), reflect.TypeFor[rvPad4]()} {
			if typeIDs.Load() < 3 {
				infoOf(p)
			}
		}
		require.Equal(t, uint64(3), typeIDs.Load(), "cannot arrange type ids in this process")
		require.Equal(t, uint64(5), infoOf(reflect.TypeFor[rvDeep]()).id)

		calls := 0
		f := Decorate(func(v any) int { calls++; return calls })
		// 1000 nested slices put the keyer at maxDepth: it gets a nonce.
		next := nonces.Load() + 1
		require.Equal(t, 1, f(rvNest(maxDepth, rvDeep(-1))))
		require.Equal(t, next, nonces.Load(), "the first call used one nonce")
		// rvDeep(next) is keyed by its own structure at the same place.
		assert.Equal(t, 2, f(rvNest(maxDepth, rvDeep(int64(next)))), "wrong hit: a different argument matched the nonce key")
		return
	}
	// The child has a liveness watchdog of its own (-test.timeout), which
	// reports a hang with every goroutine; nothing here bounds its speed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegressionKeyerDepthNonceCollision$", "-test.count=1", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "MEMO_REVIEW_NONCE_CHILD=1")
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s", tail(out))
}
