package memo_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo"
	"github.com/memokit/memo/internal/sim"
	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// TestCacheReplay drives the real Cache with a trace, one request at a time
// from one goroutine (Get, and Set on a miss), and checks that it gives the
// original memoizer's hit ratios (SPEC.md, "Capacity, eviction, expiry"):
// the read buffers, the drains and add-then-evict must not change the
// eviction order of a textbook LRU or LFU.
func TestCacheReplay(t *testing.T) {
	t.Parallel()
	for _, tt := range sim.References {
		t.Run(tt.File, func(t *testing.T) {
			if tt.Long && testing.Short() {
				t.Skip("skipping a long trace under -short")
			}
			t.Parallel()
			keys := traces.Need(t, tt.File)
			require.NotEmpty(t, keys)
			for _, k := range []struct {
				kind policies.Kind
				want string
			}{{policies.LRU, tt.LRU}, {policies.LFU, tt.LFU}} {
				t.Run(k.kind.String(), func(t *testing.T) {
					t.Parallel()
					c, err := memo.New(memo.WithMaxSize(tt.Size), memo.WithPolicy(k.kind))
					require.NoError(t, err)
					var hits, misses uint64
					for _, key := range keys {
						v, err := c.Get(key)
						if errors.Is(err, memo.ErrNotFound) {
							misses++
							c.Set(key, key)
							continue
						}
						require.NoError(t, err)
						if v != key {
							require.Equal(t, key, v, "a hit returned another key's value")
						}
						hits++
					}
					ratio := fmt.Sprintf("%.2f", 100*float64(hits)/float64(len(keys)))
					assert.Equal(t, k.want, ratio, "hit ratio")
					// Two decimals can hide a few differing requests (an
					// LFU entry evicted right after its insertion cost 74
					// hits on OLTP and still printed 13.83): the counts
					// must equal the reference replay's exactly.
					assert.Equal(t, sim.Replay(k.kind, tt.Size, keys).Hits, int(hits), "hits against internal/sim")
					st := c.Stats()
					assert.Equal(t, hits, st.Hits, "Stats().Hits")
					assert.Equal(t, misses, st.Misses, "Stats().Misses")
					assert.Equal(t, tt.Size, st.CurrentSize)
					assert.Equal(t, tt.Size, c.Len())
					assert.Equal(t, misses-uint64(tt.Size), st.Evictions, "every miss past the first size inserts and evicts one")
				})
			}
		})
	}
}
