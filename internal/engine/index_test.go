package engine

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashSeeded's unrolled 16-byte case and its tail read as one word give the
// byte loop's hash, for every length from 1 to 40: W-TinyLFU's
// decisions, pinned by the replay tests, depend on it.
func TestHashSeeded16(t *testing.T) {
	loop := func(seed uint64, k []byte) uint64 {
		h := seed ^ uint64(len(k))*0x9e3779b97f4a7c15
		for len(k) >= 8 {
			h = mix(h^binary.LittleEndian.Uint64(k), 0xbf58476d1ce4e5b9)
			k = k[8:]
		}
		if len(k) > 0 {
			var t uint64
			for i, b := range k {
				t |= uint64(b) << (8 * i)
			}
			h = mix(h^t, 0x94d049bb133111eb)
		}
		return mix(h, 0x2545f4914f6cdd1d)
	}
	for kl := 1; kl <= 40; kl++ {
		for _, seed := range []uint64{0, 0x9e3779b97f4a7c15, 12345} {
			k := makeKey(kl)
			assert.Equal(t, loop(seed, k), hashSeeded(seed, k), "%d bytes, seed %d", kl, seed)
		}
	}
}

// TestIndexRemoveFreesSlots checks index.remove against a map through a
// full cache's churn (an insertion after each removal, keys colliding in a
// small table): every live key is found, no removed key is, and a removal
// whose next slot is free leaves no tombstone, so the table holds fewer
// tombstones than removals made.
func TestIndexRemoveFreesSlots(t *testing.T) {
	var x index
	x.init()
	live := map[string]*Node{}
	key := func(i int) []byte { return binary.LittleEndian.AppendUint64([]byte("k"), uint64(i)) }
	for i := range 40 {
		k := key(i)
		n := NewNode(string(k), i)
		x.insert(n, HashString(string(k)))
		live[string(k)] = n
	}
	rng := uint64(1)
	removed, freed := 0, 0
	for i := 40; i < 4000; i++ {
		rng = rng*6364136223846793005 + 1442695040888963407
		var victim string
		for k := range live { // any live key
			victim = k
			if rng>>60 == 0 {
				break
			}
		}
		before := x.t.Load()
		used := before.used
		require.True(t, x.remove(live[victim]))
		if x.t.Load() == before && before.used < used {
			freed++
		}
		require.False(t, x.remove(live[victim]), "removed twice")
		delete(live, victim)
		removed++
		k := key(i)
		n := NewNode(string(k), i)
		x.insert(n, HashString(string(k)))
		live[string(k)] = n
		for k, n := range live {
			require.Same(t, n, x.Get([]byte(k), HashString(k)), "live key %x after %d removals", k, removed)
		}
		require.Nil(t, x.Get([]byte(victim), HashString(victim)), "removed key %x", victim)
		tomb := 0
		tb := x.t.Load()
		for j := range tb.slots {
			if tb.slots[j].Load() == tombstone {
				tomb++
			}
		}
		require.Equal(t, tb.used, tb.live+tomb, "used counts entries and tombstones")
	}
	assert.Equal(t, 40, x.Len())
	assert.Greater(t, freed, removed/4, "removals that freed their slot, of %d", removed)
}

// TestIndexInsertNew checks insertNew against a map: a key already in the
// index is returned and not added again, even when it lies past a
// tombstone that insertNew would fill (two entries for one key would let a
// removed one be found again), and a new key is added where insert would
// put it.
func TestIndexInsertNew(t *testing.T) {
	var x index
	x.init()
	key := func(i int) string { return string(binary.LittleEndian.AppendUint64([]byte("k"), uint64(i))) }
	live := map[string]*Node{}
	for i := range 3000 {
		k := key(i % 97)
		n := NewNode(k, i)
		h := HashString(k)
		if old := live[k]; old != nil {
			require.Same(t, old, x.insertNew(n, h), "key %d present", i%97)
			if i%3 == 0 {
				require.True(t, x.remove(old))
				delete(live, k)
			}
			continue
		}
		require.Nil(t, x.insertNew(n, h), "key %d absent", i%97)
		live[k] = n
		if i%5 == 0 { // tombstones before later keys
			other := key((i + 13) % 97)
			if o := live[other]; o != nil {
				require.True(t, x.remove(o))
				delete(live, other)
			}
		}
		for k, n := range live {
			require.Same(t, n, x.Get(UnsafeBytes(k), HashString(k)))
		}
		require.Equal(t, len(live), x.Len())
	}
}

// A small table stays at most a quarter full of entries and at most half
// full of entries and tombstones through a full cache's churn, so that a
// lookup of a missing key stops at a free slot within a few probes; a
// large one grows at half full of entries, no later, as 8 bytes a slot
// are then a large part of an entry's cost.
func TestIndexLoadBounds(t *testing.T) {
	key := func(i int) []byte { return binary.LittleEndian.AppendUint64([]byte("k"), uint64(i)) }
	var x index
	x.init()
	const n = 1000
	var nodes []*Node
	for i := range n {
		k := key(i)
		nd := NewNode(string(k), i)
		x.insert(nd, HashString(string(k)))
		nodes = append(nodes, nd)
	}
	tb := x.t.Load()
	assert.GreaterOrEqual(t, len(tb.slots), 4*n, "a small table is at most a quarter full")
	for i := n; i < 20*n; i++ { // churn: evict the oldest, add a new key
		require.True(t, x.remove(nodes[i-n]))
		k := key(i)
		nd := NewNode(string(k), i)
		x.insert(nd, HashString(string(k)))
		nodes = append(nodes, nd)
		tb := x.t.Load()
		require.LessOrEqual(t, 2*tb.used, len(tb.slots), "entries and tombstones fill at most half")
		require.Equal(t, n, tb.live)
	}
	for _, nd := range nodes[len(nodes)-n:] {
		k := KeyOf(nd)
		require.Same(t, nd, x.Get([]byte(k), HashString(k)))
	}

	var big index
	big.init()
	const m = denseSlots // past the small tables' quarter
	for i := range m {
		k := key(i)
		big.insert(NewNode(string(k), i), HashString(string(k)))
	}
	tb = big.t.Load()
	assert.Equal(t, 2*m, len(tb.slots), "a large table is at most half full of entries, and no emptier")
}
