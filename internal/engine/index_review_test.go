package engine

import (
	"encoding/binary"
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
