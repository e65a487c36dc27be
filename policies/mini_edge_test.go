package policies

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMinisEdgeCapacities replays random streams through the 16-bit
// simulations and the reference ones at the capacities the trace runs
// leave out: the smallest caches (1 to 3 entries), the bound of whole
// simulations (511, 512: the most slots, about 6 x 513 keys with every
// simulation full of different keys) and the first sampled ones (513,
// 2,048, 2,049), over key spaces four and sixty-four times the capacity
// (every simulation full, victims released and their slots reused through
// the free list). Every decision, hit count and, periodically, every
// simulation's state must be the reference's; the slots in use must stay
// within the documented bound.
func TestMinisEdgeCapacities(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 511, 512, 513, 2048, 2049} {
		for _, spread := range []int{4, 64} {
			t.Run(fmt.Sprintf("%d/x%d", capacity, spread), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(capacity), uint64(spread)))
				n := min(30*capacity+10000, 60000)
				ghost := capacity >= tune.ghostMinCap
				m, ref := newMinis(capacity, ghost), newRefMinis(capacity, ghost)
				forgot := false
				maxUsed := 0
				for j := range n {
					k := r.Uint64N(uint64(spread * capacity))
					if j%3 == 0 { // a hot set too
						k = r.Uint64N(uint64(max(capacity/4, 1)))
					}
					h := splitmix(k)
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
					maxUsed = max(maxUsed, m.used)
					if j%9973 == 0 || j == n-1 {
						requireSameMinis(t, m, ref, j)
					}
				}
				require.LessOrEqual(t, maxUsed, (len(tune.miniFracs)+1)*513, "slots in use")
				require.LessOrEqual(t, len(m.keys), (len(tune.miniFracs)+1)*513, "slots made")
				t.Logf("capacity %d: %d slots at most in use, %d made", capacity, maxUsed, len(m.keys))
			})
		}
	}
}
