package policies

// minis choose W-TinyLFU's window by miniature simulation (Waldspurger,
// Saemundsson, Ahmad and Park, "Cache Modeling and Optimization using
// Miniature Simulations", USENIX ATC 2017): a few W-TinyLFU caches with
// fixed windows (tune.miniFracs), each fed the requests for the same
// spatially sampled keys and scaled down to the sample, run beside the
// real cache. Caches of up to tune.miniFull entries are simulated whole;
// larger ones sample one key in 1<<tune.miniShift (4) or fewer, down to
// at most tune.miniCap entries: a cache of 1,000 entries simulates 250 of
// them on a quarter of its requests rather than 500 on half (which cost
// more than the cache's own work per request); the matrix's rows moved by
// 0.1 point or less, with its keys' hash and over eight other draws of
// the hash. Every decision period
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
// A sampled request costs one update per simulation, one fewer once the
// cache has forgotten (see dropTwin); with capacities above tune.miniFull,
// one key in max(4, about capacity/miniCap) is sampled. A sampled
// key's nodes are recycled when no simulation holds it any more, so that
// feeding the simulations allocates nothing once they are full.
type minis struct {
	sims []*miniSim // tune.miniFracs' simulations, then the forgetting twin
	fed  int        // the first fed simulations get the requests: all, or all but the dropped twin
	// idx maps a sampled key's hash to its nodes, one per simulation, so
	// that a request looks its key up once for all of them.
	idx map[uint64]*miniEntry
	// free holds the entries of keys no simulation holds any more, for
	// the next sampled keys: a sampled miss allocates nothing once the
	// simulations are full.
	free   []*miniEntry
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
	if capacity > tune.miniFull {
		k = tune.miniShift
		for capacity>>k > tune.miniCap {
			k++
		}
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
	m.fed = len(m.sims)
	return m
}

// dropTwin stops feeding the forgetting twin, once the cache has made the
// only decision the twin informs (the one-shot forget), and releases the
// keys only the twin held: the rest of the cache's life, a sampled request
// updates one simulation fewer. The plain simulations' decisions do not
// change.
func (m *minis) dropTwin() {
	if m.fed < len(m.sims) {
		return
	}
	m.fed--
	i := m.fed
	tw := m.sims[i].p
	var held []*Node[uint64]
	for _, b := range [...]*bucket[uint64]{&tw.window, &tw.probation, &tw.protected} {
		for n := b.root.next; n != &b.root; n = n.next {
			held = append(held, n)
		}
	}
	for _, n := range held {
		h := n.Value
		tw.Remove(n)
		e := m.idx[h]
		if e.live--; e.live == 0 {
			delete(m.idx, h)
			m.free = append(m.free, e)
		}
	}
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
		if n := len(m.free); n > 0 {
			e = m.free[n-1]
			m.free = m.free[:n-1]
		} else {
			e = &miniEntry{nodes: make([]Node[uint64], len(m.sims))}
		}
		m.idx[h] = e
	}
	for i, s := range m.sims[:m.fed] {
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
				m.free = append(m.free, ve)
			}
		}
	}
	if e.live == 0 {
		delete(m.idx, h)
		m.free = append(m.free, e)
	}
}
