package policies

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/traces"
)

// splitmix is another draw of the key hash, well mixed where keyHash is
// multiplicative.
func splitmix(k uint64) uint64 {
	x := k + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// TestMinisDecideAsWTinyLFU replays traces through minis and through
// refMinis, the simulations as wtinylfu[uint64] caches that minis replaced,
// as a cache drives them (a decision's window, the one-shot forget, the
// twin dropped), and checks that they decide alike: the same answer to
// every request, the same hits per simulation, and, every few thousand
// requests and at the end, the same keys in the same order in every
// segment of every simulation, the same candidate, sketch, random state
// and forget. Whole simulations (capacity 200, 500), sampled ones (1,000
// and 2,000) and, except under -short, ones with non-resident history
// (50,000, on a Zipf stream), each with two draws of the key hash.
func TestMinisDecideAsWTinyLFU(t *testing.T) {
	t.Parallel()
	type run struct {
		name     string
		keys     []uint64
		capacity int
	}
	var runs []run
	for _, c := range []struct {
		file string
		caps []int
	}{
		{"lirs/ps.trace.gz", []int{200, 1000}},
		{"lirs/multi2.trace.gz", []int{500, 2000}},
		{"lirs/gli.trace.gz", []int{1000}},
		{"lirs/loop.trace.gz", []int{500}},
	} {
		keys := traces.Need(t, c.file)
		for _, n := range c.caps {
			runs = append(runs, run{fmt.Sprintf("%s@%d", c.file, n), keys, n})
		}
	}
	if !testing.Short() { // 3M requests: seconds, a minute under -race
		r := rand.New(rand.NewPCG(3, 4))
		z := rand.NewZipf(r, 1.01, 100, 1<<22)
		zipf := make([]uint64, 3_000_000)
		for i := range zipf {
			zipf[i] = z.Uint64()
		}
		runs = append(runs, run{"zipf@50000", zipf, tune.ghostMinCap})
	}
	for _, rn := range runs {
		for hi, hash := range []func(uint64) uint64{keyHash, splitmix} {
			t.Run(fmt.Sprintf("%s/hash%d", rn.name, hi), func(t *testing.T) {
				t.Parallel()
				ghost := rn.capacity >= tune.ghostMinCap
				m, ref := newMinis(rn.capacity, ghost), newRefMinis(rn.capacity, ghost)
				forgot := false
				for j, k := range rn.keys {
					h := hash(k)
					f, ok := m.access(h)
					rf, rok := ref.access(h)
					if ok != rok || f != rf {
						t.Fatalf("request %d: decision (%v, %v), want (%v, %v)", j, f, ok, rf, rok)
					}
					if ok && !forgot {
						due := m.forgetDue()
						require.Equal(t, ref.forgetDue(), due, "request %d: forget due", j)
						if due {
							forgot = true
							m.dropTwin()
							ref.dropTwin()
						}
					}
					for i := range m.sims {
						if m.sims[i].hits != ref.sims[i].hits {
							t.Fatalf("request %d: simulation %d has %d hits, want %d", j, i, m.sims[i].hits, ref.sims[i].hits)
						}
					}
					if j%4999 == 0 || j == len(rn.keys)-1 {
						requireSameMinis(t, m, ref, j)
					}
				}
			})
		}
	}
}

// requireSameMinis checks that m and ref hold the same state after request j.
func requireSameMinis(t *testing.T, m *minis, ref *refMinis, j int) {
	t.Helper()
	require.Equal(t, ref.fed, m.fed, "request %d: simulations fed", j)
	require.Equal(t, ref.cur, m.cur, "request %d: current simulation", j)
	require.Equal(t, ref.count, m.count, "request %d: requests since the decision", j)
	for i := range m.sims {
		s, w := &m.sims[i], ref.sims[i].p
		require.Equal(t, ref.sims[i].score, s.score, "request %d, simulation %d: score", j, i)
		bs := [...]*bucket[uint64]{&w.window, &w.probation, &w.protected}
		for seg, b := range bs {
			var want, got []uint64
			for n := b.root.next; n != &b.root; n = n.next {
				want = append(want, n.Value)
			}
			for x := s.segs[seg].head; x >= 0; x = s.nodes[x].next {
				got = append(got, m.keys[x].h)
				require.EqualValues(t, seg+1, s.nodes[x].seg, "request %d, simulation %d: segment", j, i)
			}
			require.Equal(t, want, got, "request %d, simulation %d, segment %d: keys in order", j, i, seg)
			require.Equal(t, len(want), s.segs[seg].n, "request %d, simulation %d, segment %d: length", j, i, seg)
		}
		require.Equal(t, []int{w.nWindow, w.nProbation, w.nProtected}, []int{s.segs[0].n, s.segs[1].n, s.segs[2].n})
		if w.candidate == nil {
			require.Negative(t, s.candidate, "request %d, simulation %d: no candidate", j, i)
		} else {
			require.GreaterOrEqual(t, s.candidate, slot(0), "request %d, simulation %d: a candidate", j, i)
			require.Equal(t, w.candidate.Value, m.keys[s.candidate].h, "request %d, simulation %d: candidate", j, i)
		}
		require.Equal(t, w.rand, s.rand, "request %d, simulation %d: random state", j, i)
		require.Equal(t, w.forgot, s.forgot, "request %d, simulation %d: forgot", j, i)
		require.Equal(t, w.requests, s.requests, "request %d, simulation %d: requests", j, i)
		require.Equal(t, w.shared, s.shared, "request %d, simulation %d: shared sketch", j, i)
		require.Equal(t, w.sketch.table, s.sketch.table, "request %d, simulation %d: sketch", j, i)
		require.Equal(t, w.sketch.additions, s.sketch.additions, "request %d, simulation %d: sketch additions", j, i)
		require.Equal(t, w.ghost, s.ghost, "request %d, simulation %d: history", j, i)
		require.Equal(t, []int{w.maxWindow, w.maxProtected, w.capacity}, []int{s.maxWindow, s.maxProtected, s.cap})
	}
}

// TestSketchEstimateUnrolled checks estimateOf, its lanes unrolled, against
// the lane loop it replaced, on a sketch with counts of every size.
func TestSketchEstimateUnrolled(t *testing.T) {
	t.Parallel()
	s := newSketch(64)
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 * s.sampleSize {
		s.increment(keyHash(r.Uint64N(300)))
	}
	for k := range uint64(1000) {
		blk, h := s.blockOf(spread(keyHash(k)))
		m := uint64(15)
		for i := range uint(4) {
			b := h >> (32 + 5*i)
			m = min(m, (blk[2*i+uint(b>>4&1)]>>((b&15)<<2))&15)
		}
		require.Equal(t, int(m), s.estimate(keyHash(k)), "key %d", k)
	}
}
