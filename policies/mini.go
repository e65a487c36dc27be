package policies

// minis choose W-TinyLFU's window by miniature simulation (Waldspurger,
// Saemundsson, Ahmad and Park, "Cache Modeling and Optimization using
// Miniature Simulations", USENIX ATC 2017): a few W-TinyLFU caches with
// fixed windows (tune.miniFracs), each fed the requests for the same
// spatially sampled keys and scaled down to the sample (at most
// tune.miniCap entries), run beside the real cache. Every decision period
// each simulation's hits are added to its decaying score, and the real
// window moves one simulated size toward the best scorer's when it leads
// clearly (one step at a time, so that a short phase does not swing the
// window across the cache).
//
// One more simulation, the twin of the smallest window's, clears its
// sketch once, after tune.forgetAfter capacities of requests. When it then
// scores clearly above its twin, what the sketch counted during the
// warm-up misleads admission (keys that were hot once hold the main space
// against today's), and the real cache clears its own sketch, once (see
// forgetDue). This is theine's accidental advantage on the LIRS traces (its
// sketch is re-made empty as the cache grows) made a decision: on gli,
// where the warm-up counts are what keeps the loop's keys, the forgetting
// twin loses and nothing is forgotten.
//
// A sampled request costs one update per simulation; with capacities above
// tune.miniCap, one key in about capacity/miniCap is sampled.
type minis struct {
	sims []*miniSim // tune.miniFracs' simulations, then the forgetting twin
	// idx maps a sampled key's hash to its nodes, one per simulation, so
	// that a request looks its key up once for all of them.
	idx    map[uint64]*miniEntry
	shift  uint // a key is sampled when its rehash >> shift is 0; 64: every key
	period int  // requests between decisions
	count  int
	cur    int // the simulation whose window the cache uses
}

type miniSim struct {
	p     *wtinylfu[uint64]
	frac  float64
	cap   int
	hits  int
	score float64
}

// miniEntry is a sampled key's node in each simulation (nodes[i] in
// sims[i], linked while that simulation holds the key) and how many
// simulations hold it.
type miniEntry struct {
	nodes []Node[uint64]
	live  int
}

func hashValue(n *Node[uint64]) uint64 { return n.Value }

// newMinis returns the simulations of a cache of capacity entries; ghost
// gives them non-resident history, as the cache has.
func newMinis(capacity int, ghost bool) *minis {
	k := uint(0)
	for capacity>>k > tune.miniCap {
		k++
	}
	m := &minis{
		shift:  64 - k,
		period: max(int(tune.miniPeriod*float64(capacity)), tune.miniMin),
		idx:    make(map[uint64]*miniEntry),
	}
	mc := max(capacity>>k, 1)
	for i, f := range tune.miniFracs {
		p := newFixed(mc, hashValue, f, ghost)
		if i > 0 && p.sketch.maxWords == len(p.sketch.table) {
			// Every simulation counts the same requests in the same
			// order, into a sketch of the same size that never grows:
			// their sketches would be equal, so they share the first
			// one's, which counts for all (the first is fed first). The
			// forgetting twin, which clears its own, keeps its own.
			p.sketch, p.shared = m.sims[0].p.sketch, true
		}
		m.sims = append(m.sims, &miniSim{p: p, frac: f, cap: mc})
		if f == tune.windowPercent {
			m.cur = i
		}
	}
	twin := newFixed(mc, hashValue, tune.miniFracs[0], ghost)
	twin.forgetAt = max(1, int(tune.forgetAfter*float64(mc)))
	m.sims = append(m.sims, &miniSim{p: twin, frac: tune.miniFracs[0], cap: mc})
	return m
}

// access feeds one request for the key of hash h to the simulations. When a
// decision is due it returns the window fraction to use and true.
func (m *minis) access(h uint64) (float64, bool) {
	if m.shift == 64 || spread(h^0x2545f4914f6cdd1d)>>m.shift == 0 {
		m.feed(h)
	}
	if m.count++; m.count < m.period {
		return 0, false
	}
	m.count = 0
	best, bi := -1.0, 0
	for i, s := range m.sims {
		s.score = s.score*tune.miniDecay + float64(s.hits)
		s.hits = 0
		if i < len(tune.miniFracs) && s.score > best {
			best, bi = s.score, i
		}
	}
	if best > m.sims[m.cur].score*(1+tune.miniMargin) {
		if bi > m.cur {
			m.cur++
		} else {
			m.cur--
		}
	}
	return m.sims[m.cur].frac, true
}

// forgetDue reports whether the forgetting twin has forgotten and now
// scores tune.forgetMargin above its twin.
func (m *minis) forgetDue() bool {
	f := m.sims[len(m.sims)-1]
	return f.p.forgot && f.score > m.sims[0].score*(1+tune.forgetMargin)
}

// feed passes a request for the key of hash h to every simulation: a hit
// is a use, a miss adds the key and evicts the simulation's victims.
func (m *minis) feed(h uint64) {
	e := m.idx[h]
	if e == nil {
		e = &miniEntry{nodes: make([]Node[uint64], len(m.sims))}
		m.idx[h] = e
	}
	for i, s := range m.sims {
		n := &e.nodes[i]
		if n.bucket != nil {
			s.p.Touch(n)
			s.hits++
			continue
		}
		n.Value = h
		s.p.Add(n)
		e.live++
		for s.p.Len() > s.cap {
			v := s.p.Victim()
			s.p.Remove(v)
			ve := e
			if v.Value != h {
				ve = m.idx[v.Value]
			}
			if ve.live--; ve.live == 0 && ve != e {
				delete(m.idx, v.Value)
			}
		}
	}
	if e.live == 0 {
		delete(m.idx, h)
	}
}
