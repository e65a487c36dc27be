package policies

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/traces"
)

func intHash(n *Node[int]) uint64    { return uint64(n.Value) * 0x9e3779b97f4a7c15 }
func keyHash(k uint64) uint64        { return k * 0x9e3779b97f4a7c15 }
func u64Hash(n *Node[uint64]) uint64 { return keyHash(n.Value) }

func TestSketchNeverUnderTrueCount(t *testing.T) {
	t.Parallel()
	s := newSketch(512)
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, 5000)
	counts := map[uint64]int{}
	// Fewer increments than the sample, so no halving happens.
	for range s.sampleSize - 1 {
		k := z.Uint64()
		counts[k]++
		s.increment(keyHash(k))
	}
	require.Less(t, s.additions, s.sampleSize, "no halving yet")
	over := 0
	for k, c := range counts {
		est := s.estimate(keyHash(k))
		require.GreaterOrEqual(t, est, min(c, 15), "key %d", k)
		if est > min(c, 15) {
			over++
		}
	}
	assert.Less(t, over, len(counts)/10, "estimates above the true count (collisions)")
	assert.Zero(t, s.estimate(keyHash(1<<40)), "a key never counted, in a sparse sketch")
}

func TestSketchHalvesAtSampleSize(t *testing.T) {
	t.Parallel()
	s := newSketch(100)
	require.Equal(t, tune.sampleFactor*100, s.sampleSize)
	hot := keyHash(7)
	for range 20 {
		s.increment(hot) // saturates at 15; the last 5 change no counter
	}
	require.Equal(t, 15, s.estimate(hot))
	require.Equal(t, 15, s.additions, "saturated increments do not count")
	for k := uint64(1000); s.additions < s.sampleSize-1; k++ {
		s.increment(keyHash(k))
	}
	assert.Equal(t, 15, s.estimate(hot), "no halving before the sample is complete")
	s.increment(keyHash(1 << 50))
	assert.Equal(t, 7, s.estimate(hot), "halved when the sample completes")
	assert.Equal(t, s.sampleSize/2, s.additions)
	s.clear()
	assert.Zero(t, s.estimate(hot))
}

func TestSketchGrowsKeepingEstimates(t *testing.T) {
	t.Parallel()
	s := newSketch(1 << 16)
	require.Equal(t, minSketchWords, len(s.table), "starts small")
	require.Equal(t, 1<<16, s.maxWords)
	require.Equal(t, tune.sampleFactor<<16, s.sampleSize, "the sample is the full sketch's")
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.1, 1, 50000)
	counts := map[uint64]int{}
	for range 20000 {
		k := z.Uint64()
		counts[k]++
		s.increment(keyHash(k))
	}
	before := map[uint64]int{}
	for k := range counts {
		before[k] = s.estimate(keyHash(k))
	}
	s.grow(minSketchWords) // enough words already
	require.Equal(t, minSketchWords, len(s.table))
	s.grow(5000)
	require.Equal(t, 8192, len(s.table), "doubled up to a word per entry")
	for k, c := range counts {
		est := s.estimate(keyHash(k))
		require.Equal(t, before[k], est, "key %d keeps its estimate", k)
		require.GreaterOrEqual(t, est, min(c, 15), "key %d", k)
	}
	s.grow(1 << 30)
	assert.Equal(t, 1<<16, len(s.table), "never past the full size")
	for k := range counts {
		require.Equal(t, before[k], s.estimate(keyHash(k)), "key %d", k)
	}
}

func TestWTinyLFUSketchGrowsWithEntries(t *testing.T) {
	t.Parallel()
	p := newWTinyLFU(100_000, u64Hash)
	require.Equal(t, minSketchWords, len(p.sketch.table))
	for i := range uint64(3000) {
		p.Add(&Node[uint64]{Value: i})
		for p.Len() > 100_000 {
			p.Remove(p.Victim())
		}
	}
	assert.Equal(t, 4096, len(p.sketch.table), "a word per entry, rounded up to a power of two")
	assert.Equal(t, 1<<17, p.sketch.maxWords)
}

// replayW replays keys through a W-TinyLFU policy directly, as the cache
// drives it (add, then evict while over capacity), and returns it and the
// hits.
func replayW(capacity int, keys []uint64) (*wtinylfu[uint64], int) {
	p := newWTinyLFU(capacity, u64Hash)
	idx := map[uint64]*Node[uint64]{}
	hits := 0
	for _, k := range keys {
		if n, ok := idx[k]; ok {
			p.Touch(n)
			hits++
			continue
		}
		n := &Node[uint64]{Value: k}
		p.Add(n)
		idx[k] = n
		for p.Len() > capacity {
			v := p.Victim()
			p.Remove(v)
			delete(idx, v.Value)
		}
	}
	return p, hits
}

// recencyTrace has no loops and no popular keys: every key is requested
// twice, the second time within 600 requests of the first, and never
// again. LRU of 1000 hits every second request (a third of all); a small
// window turns most of them away, because each candidate ties its victim.
func recencyTrace(n int) []uint64 {
	r := rand.New(rand.NewPCG(3, 4))
	later := map[int][]uint64{}
	var keys []uint64
	next := uint64(0)
	for i := 0; len(keys) < n; i++ {
		if ks, ok := later[i]; ok {
			keys = append(keys, ks...)
			delete(later, i)
			continue
		}
		keys = append(keys, next)
		at := i + 1 + r.IntN(600)
		later[at] = append(later[at], next)
		next++
	}
	return keys
}

func TestWTinyLFUWindowAdapts(t *testing.T) {
	t.Parallel()
	keys := recencyTrace(200_000)
	p, hits := replayW(1000, keys)
	assert.GreaterOrEqual(t, p.maxWindow, 300, "the window grows toward recency")
	assert.Greater(t, 100*float64(hits)/float64(len(keys)), 30.0, "hit ratio on the recency trace")

	gli := traces.Need(t, "lirs/gli.trace.gz")
	p, _ = replayW(1000, gli)
	assert.LessOrEqual(t, p.maxWindow, 10, "the window stays small on gli, where frequency wins")
	// Started wide, it comes back down on gli.
	p = newWTinyLFU(1000, u64Hash)
	p.setWindow(0.9)
	require.Equal(t, 900, p.maxWindow)
	idx := map[uint64]*Node[uint64]{}
	for _, k := range gli {
		if n, ok := idx[k]; ok {
			p.Touch(n)
			continue
		}
		n := &Node[uint64]{Value: k}
		p.Add(n)
		idx[k] = n
		for p.Len() > 1000 {
			v := p.Victim()
			p.Remove(v)
			delete(idx, v.Value)
		}
	}
	assert.LessOrEqual(t, p.maxWindow, 100, "the window shrinks toward frequency on gli")
}

func TestWTinyLFUAdmission(t *testing.T) {
	t.Parallel()
	p := newWTinyLFU(10, intHash) // window 1, protected 7 of the main 9
	ns := nodes(13)
	for _, n := range ns[:10] {
		p.Add(n)
	}
	require.Equal(t, 10, p.Len())
	assert.Equal(t, 1, p.nWindow)
	assert.Equal(t, 9, p.nProbation)
	// 0 is probation's oldest; 9 is in the window.
	assert.Same(t, ns[0], p.Victim(), "not over capacity: probation's oldest")
	for range 3 {
		p.Touch(ns[0]) // 0: count 4, now protected
	}
	assert.Equal(t, 1, p.nProtected)

	// 10 pushes 9 out of the window: 9 (count 1) ties probation's oldest, 1
	// (count 1), and is turned away.
	p.Add(ns[10])
	require.Equal(t, 11, p.Len())
	assert.Same(t, ns[9], p.candidate)
	assert.Same(t, ns[9], p.Victim(), "a tie keeps the victim")
	p.Remove(ns[9])
	assert.Nil(t, p.candidate)

	// 11 pushes 10 out; 10 was used twice more, so it beats 1.
	p.Touch(ns[10])
	p.Touch(ns[10])
	p.Add(ns[11])
	assert.Same(t, ns[10], p.candidate)
	assert.Same(t, ns[1], p.Victim(), "the more frequent candidate is admitted")
	p.Remove(ns[1])
	assert.Equal(t, 10, p.Len())

	// Replacing the candidate hands its role over.
	p.Add(ns[12])
	c := p.candidate
	require.NotNil(t, c)
	repl := &Node[int]{Value: c.Value}
	p.Replace(c, repl)
	assert.Same(t, repl, p.candidate)
	assertUnlinked(t, c)
}

// TestWTinyLFUInvariants runs random operations and checks after each
// that every segment's count matches its list and that the cache never
// holds more than its capacity once it has evicted.
func TestWTinyLFUInvariants(t *testing.T) {
	t.Parallel()
	const capacity = 50
	p := newWTinyLFU(capacity, intHash)
	r := rand.New(rand.NewPCG(5, 6))
	live := map[int]*Node[int]{}
	count := func(b *bucket[int]) int {
		k := 0
		for n := b.root.next; n != &b.root; n = n.next {
			require.Same(t, b, n.bucket)
			k++
		}
		return k
	}
	for i := range 20_000 {
		k := r.IntN(200)
		switch op := r.IntN(10); {
		case op < 6:
			if n, ok := live[k]; ok {
				p.Touch(n)
				break
			}
			n := &Node[int]{Value: k}
			p.Add(n)
			live[k] = n
			for p.Len() > capacity {
				v := p.Victim()
				require.NotNil(t, v)
				p.Remove(v)
				assertUnlinked(t, v)
				delete(live, v.Value)
			}
		case op < 8:
			if n, ok := live[k]; ok {
				p.Remove(n)
				delete(live, k)
			}
		case op < 9:
			if n, ok := live[k]; ok {
				m := &Node[int]{Value: k}
				p.Replace(n, m)
				live[k] = m
			}
		default:
			if i%1000 == 0 {
				p.Clear()
				clear(live)
			}
		}
		require.Equal(t, p.nWindow, count(&p.window))
		require.Equal(t, p.nProbation, count(&p.probation))
		require.Equal(t, p.nProtected, count(&p.protected))
		require.Equal(t, len(live), p.Len())
		require.LessOrEqual(t, p.Len(), capacity)
		require.LessOrEqual(t, p.nProtected, p.maxProtected)
	}
}

func TestWTinyLFUStaleNodesAndClear(t *testing.T) {
	t.Parallel()
	p := NewSized(WTinyLFU, 4, intHash)
	other := NewSized(WTinyLFU, 4, intHash)
	ns := nodes(4)
	for _, n := range ns[:3] {
		p.Add(n)
	}
	foreign := &Node[int]{Value: 9}
	other.Add(foreign)
	p.Touch(ns[3])
	p.Remove(ns[3])
	p.Touch(foreign)
	p.Remove(foreign)
	assert.Equal(t, 3, p.Len())
	assert.Equal(t, 1, other.Len())
	require.Panics(t, func() { p.Add(ns[0]) })
	p.Clear()
	assert.Zero(t, p.Len())
	assert.Nil(t, p.Victim())
	for _, n := range ns {
		assertUnlinked(t, n)
		p.Touch(n)
		p.Remove(n)
	}
	for _, n := range ns {
		p.Add(n)
	}
	assert.Len(t, drain(p), 4)
}

func TestSketchWideForSmallCaches(t *testing.T) {
	t.Parallel()
	small := newSketch(tune.wideSketchMax)
	assert.Equal(t, 2*tune.wideSketchMax, small.maxWords, "two words per entry up to wideSketchMax")
	small.grow(600)
	assert.Equal(t, minSketchWords*2, len(small.table), "grows to two words per entry")
	large := newSketch(tune.wideSketchMax + 1)
	assert.Equal(t, 2*tune.wideSketchMax, large.maxWords, "one word per entry, rounded up to a power of two")
	large.grow(600)
	assert.Equal(t, minSketchWords, len(large.table))
}

func TestGhostSetRemembersRecentKeys(t *testing.T) {
	t.Parallel()
	var zero ghostSet
	zero.add(1)
	assert.False(t, zero.has(1), "the zero ghostSet remembers nothing")
	assert.False(t, zero.on())

	g := newGhostSet(1000)
	require.True(t, g.on())
	for k := range uint64(1000) {
		g.add(keyHash(k))
	}
	for k := range uint64(1000) {
		require.True(t, g.has(keyHash(k)), "key %d among the last n", k)
	}
	// 2000 more keys push the first thousand out of both filters.
	for k := uint64(1000); k < 3000; k++ {
		g.add(keyHash(k))
	}
	forgotten := 0
	for k := range uint64(1000) {
		if !g.has(keyHash(k)) {
			forgotten++
		}
	}
	assert.Greater(t, forgotten, 900, "keys older than 2n adds are forgotten (but for false positives)")
	for k := uint64(2000); k < 3000; k++ {
		require.True(t, g.has(keyHash(k)), "key %d among the last n", k)
	}
	fp := 0
	for k := uint64(1 << 40); k < 1<<40+10000; k++ {
		if g.has(keyHash(k)) {
			fp++
		}
	}
	assert.Less(t, fp, 10000*6/100, "false positives of keys never added")
	g.clear()
	assert.False(t, g.has(keyHash(2500)), "cleared")
}

// TestWTinyLFUGhostAdmission checks that a large cache admits a candidate
// it evicted lately even when the sketch does not favour it, and that a
// small cache keeps no history.
func TestWTinyLFUGhostAdmission(t *testing.T) {
	t.Parallel()
	small := newWTinyLFU(tune.ghostMinCap-1, u64Hash)
	assert.False(t, small.ghost.on(), "no history below ghostMinCap")
	p := newWTinyLFU(tune.ghostMinCap, u64Hash)
	require.True(t, p.ghost.on())
	for _, s := range p.minis.sims {
		require.True(t, s.ghost.on(), "the simulations model the history too")
	}
	c := &Node[uint64]{Value: 1}
	v := &Node[uint64]{Value: 2}
	for range 3 {
		p.sketch.increment(u64Hash(v))
	}
	p.sketch.increment(u64Hash(c))
	assert.False(t, p.admit(u64Hash(c), u64Hash(v)), "the more frequent victim wins")
	p.ghost.add(u64Hash(c))
	assert.True(t, p.admit(u64Hash(c), u64Hash(v)), "a candidate evicted lately is admitted")
	p.Clear()
	assert.False(t, p.ghost.has(u64Hash(c)), "Clear forgets the history")
}

// TestWTinyLFUForget checks the one-shot forget both ways: on multi2,
// where the warm-up's counts mislead admission, the cache clears its
// sketch once; on gli, where they keep the loop's keys, it does not.
func TestWTinyLFUForget(t *testing.T) {
	t.Parallel()
	multi2 := traces.Need(t, "lirs/multi2.trace.gz")
	p, _ := replayW(500, multi2)
	assert.True(t, p.forgot, "multi2@500 forgets its warm-up")
	m := p.minis
	twin := &m.sims[len(m.sims)-1]
	assert.True(t, twin.forgot, "the twin forgot")
	assert.False(t, m.sims[0].forgot, "the plain simulation did not")
	assert.Zero(t, twin.len(), "the twin's keys are released once the cache forgot")
	assert.Equal(t, len(m.sims)-1, m.fed, "and the twin is fed no more")
	indexed := 0
	for _, c := range m.table {
		if c == 0 {
			continue
		}
		indexed++
		s := c - 1
		held := 0
		for i := range m.sims {
			if m.sims[i].nodes[s].seg != 0 {
				held++
			}
		}
		require.EqualValues(t, held, m.live[s], "slot %d: live counts the simulations holding it", s)
		require.Positive(t, m.live[s], "slot %d: an indexed key is held", s)
		require.Equal(t, s, m.lookup(m.keys[s].h, m.keys[s].r()), "slot %d: found by its hash", s)
	}
	assert.Equal(t, m.used, indexed, "slots in use, indexed")
	assert.Equal(t, len(m.keys), m.used+len(m.free), "every slot in use or free")

	gli := traces.Need(t, "lirs/gli.trace.gz")
	p, _ = replayW(1000, gli)
	assert.False(t, p.forgot, "gli@1000 keeps its counts")
}

// TestMinisNoAllocationOnceFull checks that feeding the simulations new
// keys, a sampled miss each, allocates nothing once they are full: the
// nodes of a key that no simulation holds any more are reused.
func TestMinisNoAllocationOnceFull(t *testing.T) {
	m := newMinis(100, false) // every key sampled
	k := uint64(0)
	for range 20_000 {
		m.access(keyHash(k % 5000))
		k++
	}
	allocs := testing.AllocsPerRun(2000, func() {
		m.access(keyHash(k % 5000))
		k++
	})
	assert.Zero(t, allocs, "allocations per sampled request")
	assert.LessOrEqual(t, len(m.keys), len(m.sims)*100+1, "slots kept, in use or free")
}

// TestWTinyLFUFloodDefence checks the random admission against hash
// flooding: a warm candidate facing a saturated victim gets in about once
// in 4096 contests, facing a victim below saturation never.
func TestWTinyLFUFloodDefence(t *testing.T) {
	t.Parallel()
	p := newWTinyLFU(1000, u64Hash)
	c := &Node[uint64]{Value: 1}
	hot := &Node[uint64]{Value: 2}
	warm := &Node[uint64]{Value: 3}
	for range 6 {
		p.sketch.increment(u64Hash(c))
	}
	for range 15 {
		p.sketch.increment(u64Hash(hot))
	}
	for range 14 {
		p.sketch.increment(u64Hash(warm))
	}
	require.Equal(t, 15, p.sketch.estimate(u64Hash(hot)))
	const n = 1 << 16
	admitted := 0
	for range n {
		if p.admit(u64Hash(c), u64Hash(warm)) {
			admitted++
		}
	}
	assert.Zero(t, admitted, "never against a victim below saturation")
	for range n {
		if p.admit(u64Hash(c), u64Hash(hot)) {
			admitted++
		}
	}
	assert.InDelta(t, n/4096, admitted, 12, "about one in 4096 against a saturated victim")
}

// TestGhostSetLargeFalsePositives checks the history's false positives in
// a filter over 2^21 bits, where the probes switch to double hashing.
func TestGhostSetLargeFalsePositives(t *testing.T) {
	t.Parallel()
	const n = 1 << 19 // 4M bits per filter
	g := newGhostSet(n)
	require.GreaterOrEqual(t, g.mask, uint64(1<<21))
	for k := range uint64(n) {
		g.add(keyHash(k))
	}
	for k := range uint64(n) {
		require.True(t, g.has(keyHash(k)), "key %d", k)
	}
	fp := 0
	const absent = 200000
	for k := uint64(1 << 40); k < 1<<40+absent; k++ {
		if g.has(keyHash(k)) {
			fp++
		}
	}
	assert.Less(t, float64(fp)/absent, 0.04, "false positives")
}
