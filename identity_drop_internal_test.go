package memo

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// TestIdentityDropFreesResult is the review's case through the public API:
// a function keyed by a pointer, called once and hit twice (uses the read
// buffer records), whose key's object is then collected. Its entry is
// dropped, and with nothing written to the cache afterwards, its result
// must be collectable. At 0e141d5 it stayed reachable from the read buffer
// until the cache's next write (LRU and LFU, which record every hit, and
// W-TinyLFU once half full).
func TestIdentityDropFreesResult(t *testing.T) {
	type result struct{ _ [1 << 12]byte }
	for _, kind := range []policies.Kind{policies.LRU, policies.LFU, policies.WTinyLFU} {
		t.Run(kind.String(), func(t *testing.T) {
			var freed, othersFreed atomic.Bool
			var watched *kObj // the key whose result is watched
			f := Func(func(p *kObj) *result {
				r := new(result)
				if p == watched {
					runtime.AddCleanup(r, func(b *atomic.Bool) { b.Store(true) }, &freed)
				} else {
					runtime.AddCleanup(r, func(b *atomic.Bool) { b.Store(true) }, &othersFreed)
				}
				return r
			}, WithPolicy(kind), WithMaxSize(8))
			c := CacheOf(f)
			keep := make([]*kObj, 4) // W-TinyLFU records hits once half full
			for i := range keep {
				keep[i] = new(kObj)
				f(keep[i])
			}
			func() {
				p := new(kObj)
				watched = p
				defer func() { watched = nil }()
				for range 3 {
					f(p)
				}
			}()
			require.Positive(t, c.e.Reads.First.Load().N, "the hits are buffered: the test exercises the drop's drain")
			require.Equal(t, 5, c.Len())

			assert.True(t, dtGCUntil(func() bool { return c.Len() == 4 }), "the entry of the collected key is dropped")
			assert.True(t, dtGCUntil(freed.Load), "the dropped entry's result is still reachable")
			assert.False(t, othersFreed.Load(), "a live entry's result was collected")
			// f stays reachable: a function collected takes its entries
			// with it, which would free the result whatever the drop did.
			runtime.KeepAlive(f)
			runtime.KeepAlive(keep)
		})
	}
}
