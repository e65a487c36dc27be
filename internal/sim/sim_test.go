package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/memokit/memo/policies"
)

func TestReplay(t *testing.T) {
	t.Parallel()
	// Size 2. LRU: 1m 2m 1h 3m(evicts 2) 2m(evicts 1) 1m(evicts 3) → 1 hit.
	// LFU: 1m 2m 1h(1:2) 3m(evicts 2) 2m(evicts 3) 1h → 2 hits.
	keys := []uint64{1, 2, 1, 3, 2, 1}
	assert.Equal(t, Result{Requests: 6, Hits: 1}, Replay(policies.LRU, 2, keys))
	assert.Equal(t, Result{Requests: 6, Hits: 2}, Replay(policies.LFU, 2, keys))
	assert.Equal(t, "33.33", Replay(policies.LFU, 2, keys).String())
	assert.Equal(t, "0.00", Result{}.String())
}

func TestCacheNeverExceedsSize(t *testing.T) {
	t.Parallel()
	for _, k := range []policies.Kind{policies.LRU, policies.LFU} {
		c := New(k, 3)
		for i := range uint64(100) {
			c.Access(i % 7)
			assert.LessOrEqual(t, len(c.index), 3)
			assert.Equal(t, len(c.index), c.policy.Len())
		}
	}
	assert.Panics(t, func() { New(policies.LRU, 0) })
}
