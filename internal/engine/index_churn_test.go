package engine

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIndexChurnRebuildsAmortized churns an index at a constant number of
// live entries (a full cache: each insertion follows a removal of the
// oldest entry) at sizes around denseSlots's bounds, and counts the tables
// published. Each rebuild copies the whole table, so there must be at most
// one per a share of the live entries' insertions: at a size whose
// rebuilt table is left with next to no room before it is crowded again
// (16,384 live entries in a table of 32,768 slots, half full, the small
// tables' bound), every insertion after a tombstone would rebuild. Every
// live key is found, and no removed key, at the end.
func TestIndexChurnRebuildsAmortized(t *testing.T) {
	key := func(i int) []byte { return binary.LittleEndian.AppendUint64([]byte("k"), uint64(i)) }
	for _, n := range []int{1, 2, 7, 8, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 16000, 16383, 16384, 16385, 24576, 32768} {
		var x index
		x.init()
		nodes := make([]*Node, 0, 4*n)
		for i := range n {
			k := key(i)
			nd := NewNode(string(k), i)
			x.insert(nd, HashKey(k))
			nodes = append(nodes, nd)
		}
		churn := 3 * n
		if churn < 64 {
			churn = 64
		}
		rebuilds := 0
		for i := n; i < n+churn; i++ {
			require.True(t, x.remove(nodes[i-n]))
			before := x.t.Load()
			k := key(i)
			nd := NewNode(string(k), i)
			x.insert(nd, HashKey(k))
			nodes = append(nodes, nd)
			if x.t.Load() != before {
				rebuilds++
			}
			tb := x.t.Load()
			require.Equal(t, n, tb.live)
			require.Less(t, tb.used, len(tb.slots), "%d live: a free slot ends every probe", n)
		}
		// A rebuild at most every n/8 insertions (and a few to start).
		t.Logf("%d live: %d rebuilds in %d insertions, %d slots", n, rebuilds, churn, len(x.t.Load().slots))
		require.LessOrEqual(t, rebuilds, 8*churn/n+2, "%d live entries: %d rebuilds in %d insertions, table of %d slots", n, rebuilds, churn, len(x.t.Load().slots))
		for _, nd := range nodes[len(nodes)-n:] {
			k := KeyOf(nd)
			require.Same(t, nd, x.Get([]byte(k), HashString(k)))
		}
		for _, nd := range nodes[:len(nodes)-n] {
			k := KeyOf(nd)
			require.Nil(t, x.Get([]byte(k), HashString(k)))
		}
	}
}

// TestIndexGrowShrinkAcrossBounds drives an index up from empty past
// denseSlots's bounds (8,192 and 16,384 entries, the tables of 32K and 64K
// slots), churns it there, and drains it back to a few entries, with insert
// and insertNew alternating, while two readers look up pinned keys (present
// throughout) and keys removed before they started. Every table it makes
// has a free slot after each insertion (a probe for a missing key ends),
// holds at most its limit of entries and tombstones, and, once drained,
// has shrunk back to a small table; a reader never misses a pinned key nor
// finds a removed one, and at the end every live key is found and every
// removed key is not.
func TestIndexGrowShrinkAcrossBounds(t *testing.T) {
	key := func(i int) []byte { return binary.LittleEndian.AppendUint64([]byte("g"), uint64(i)) }
	var x index
	x.init()
	nodes := map[int]*Node{}
	add := func(i int) {
		k := key(i)
		n := NewNode(string(k), i)
		if i%2 == 0 {
			x.insert(n, HashKey(k))
		} else {
			require.Nil(t, x.insertNew(n, HashKey(k)))
		}
		nodes[i] = n
		tb := x.t.Load()
		require.LessOrEqual(t, tb.used, tb.limit)
		require.Less(t, tb.used, len(tb.slots))
	}
	del := func(i int) {
		require.True(t, x.remove(nodes[i]))
		delete(nodes, i)
	}
	const pinned = 16
	for i := range pinned {
		add(-1 - i)
	}
	for i := range 8 {
		add(-100 - i)
		del(-100 - i)
	}
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
				for i := range pinned {
					k := key(-1 - i)
					if n := x.Get(k, HashKey(k)); n == nil || KeyOf(n) != string(k) {
						misses.Add(1)
					}
				}
				for i := range 8 {
					k := key(-100 - i)
					if x.Get(k, HashKey(k)) != nil {
						ghosts.Add(1)
					}
				}
			}
		})
	}
	next := 0
	for next < 17000 { // grow past both bounds
		add(next)
		next++
	}
	lo := 0
	for range 20000 { // churn at 17,000 entries
		del(lo)
		lo++
		add(next)
		next++
	}
	for next-lo > 8190 { // down through the 16K and 8K bounds
		del(lo)
		lo++
	}
	for range 20000 { // churn at 8,190
		del(lo)
		lo++
		add(next)
		next++
	}
	for next-lo > 3 {
		del(lo)
		lo++
	}
	close(stop)
	wg.Wait()
	require.Zero(t, misses.Load(), "Gets that missed a pinned key")
	require.Zero(t, ghosts.Load(), "Gets that found a key removed before they started")
	require.Equal(t, len(nodes), x.Len())
	require.LessOrEqual(t, len(x.t.Load().slots), 8*minTable, "a drained table shrinks")
	for i, n := range nodes {
		k := key(i)
		require.Same(t, n, x.Get(k, HashKey(k)))
	}
	for i := range lo {
		k := key(i)
		require.Nil(t, x.Get(k, HashKey(k)))
	}
}
