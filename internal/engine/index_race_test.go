package engine

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIndexPinnedKeysAlwaysFound races lock-free readers with a
// writer that churns a 64-slot table (8 to 28 live keys) through index.remove's freeing of
// slots and tombstones: keys whose home slots lie at the table's end and
// start, so that probe chains wrap around, removed and inserted again in
// shifting orders, with replacements of the pinned keys and rebuilds when
// tombstones pile up. A pinned key, present throughout, must be found by
// every Get (its node, or its replacement's); a key removed for good,
// before the readers start, must never be.
func TestIndexPinnedKeysAlwaysFound(t *testing.T) {
	var x index
	x.init()
	// Keys clustered at the wrap of a 64-slot table.
	var cluster [][]byte
	for i := 0; len(cluster) < 30; i++ {
		k := probeKey(i)
		if h := HashKey(k) & 63; h >= 58 || h <= 2 {
			cluster = append(cluster, k)
		}
	}
	insert := func(k []byte, v int) *Node {
		n := NewNode(string(k), v)
		x.insert(n, HashKey(k))
		return n
	}
	pinned := cluster[:8]
	churn := cluster[8:28]
	gone := cluster[28:]
	var cur [8]atomic.Pointer[Node]
	nodes := map[string]*Node{}
	for i, k := range cluster {
		nodes[string(k)] = insert(k, i)
		if i < 8 {
			cur[i].Store(nodes[string(k)])
		}
	}
	for _, k := range gone {
		require.True(t, x.remove(nodes[string(k)]))
		delete(nodes, string(k))
	}
	require.Equal(t, 64, len(x.t.Load().slots))

	stop := make(chan struct{})
	var misses, ghosts atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i, k := range pinned {
					before := cur[i].Load()
					n := x.Get(k, HashKey(k))
					if n == nil {
						misses.Add(1)
					} else if n != before && n != cur[i].Load() && KeyOf(n) != string(k) {
						t.Errorf("pinned key %d: another key's node", i)
					}
				}
				for _, k := range gone {
					if x.Get(k, HashKey(k)) != nil {
						ghosts.Add(1)
					}
				}
			}
		})
	}
	rng := uint64(7)
	live := append([][]byte(nil), churn...)
	var out [][]byte
	for step := range 30000 {
		rng = rng*6364136223846793005 + 1442695040888963407
		switch {
		case rng>>62 == 0:
			i := int(rng>>33) % len(pinned)
			n := NewNode(string(pinned[i]), step)
			x.replace(cur[i].Load(), n)
			cur[i].Store(n)
		case rng>>59&7 == 1:
			// insertNew of a pinned key finds it: no second entry.
			i := int(rng>>33) % len(pinned)
			n := NewNode(string(pinned[i]), step)
			require.Same(t, cur[i].Load(), x.insertNew(n, HashKey(pinned[i])))
		case len(out) > 0 && (rng>>61&1 == 0 || len(live) == 0):
			j := int(rng>>33) % len(out)
			k := out[j]
			out = append(out[:j], out[j+1:]...)
			if step%2 == 0 {
				nodes[string(k)] = insert(k, step)
			} else { // Store's W-TinyLFU path: one probe, the first tombstone reused
				n := NewNode(string(k), step)
				require.Nil(t, x.insertNew(n, HashKey(k)))
				nodes[string(k)] = n
			}
			live = append(live, k)
		case len(live) > 0:
			j := int(rng>>33) % len(live)
			k := live[j]
			live = append(live[:j], live[j+1:]...)
			require.True(t, x.remove(nodes[string(k)]))
			delete(nodes, string(k))
			out = append(out, k)
		}
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, misses.Load(), "Gets that missed a pinned key")
	assert.Zero(t, ghosts.Load(), "Gets that found a key removed before they started")
	for i, k := range pinned {
		assert.Same(t, cur[i].Load(), x.Get(k, HashKey(k)))
	}
	assert.Equal(t, 64, len(x.t.Load().slots), "the table the keys wrap in")
}
