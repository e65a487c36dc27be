package policies

// refMinis is the miniature simulations as they were before minis got its
// own simulation type (mini.go): W-TinyLFU caches of keys' hashes, one
// wtinylfu[uint64] per simulated window, and a map from a sampled key's
// hash to its nodes. It stays, in the tests only, as the reference that
// TestMinisDecideAsWTinyLFU compares minis with, request by request.
type refMinis struct {
	sims []*refMiniSim // tune.miniFracs' simulations, then the forgetting twin
	fed  int           // the first fed simulations get the requests: all, or all but the dropped twin
	// idx maps a sampled key's hash to its nodes, one per simulation, so
	// that a request looks its key up once for all of them.
	idx map[uint64]*refMiniEntry
	// free holds the entries of keys no simulation holds any more, for
	// the next sampled keys: a sampled miss allocates nothing once the
	// simulations are full.
	free   []*refMiniEntry
	shift  uint // a key is sampled when its rehash >> shift is 0; 64: every key
	period int  // requests between decisions
	count  int
	cur    int // the simulation whose window the cache uses
}

type refMiniSim struct {
	p     *wtinylfu[uint64]
	frac  float64
	cap   int
	hits  int
	score float64
}

// refMiniEntry is a sampled key's node in each simulation (nodes[i] in
// sims[i], linked while that simulation holds the key) and how many
// simulations hold it.
type refMiniEntry struct {
	nodes []Node[uint64]
	live  int
}

func refHashValue(n *Node[uint64]) uint64 { return n.Value }

// newRefMinis returns the simulations of a cache of capacity entries; ghost
// gives them non-resident history, as the cache has.
func newRefMinis(capacity int, ghost bool) *refMinis {
	k := uint(0)
	if capacity > tune.miniFull {
		k = tune.miniShift
		for capacity>>k > tune.miniCap {
			k++
		}
	}
	m := &refMinis{
		shift:  64 - k,
		period: max(int(tune.miniPeriod*float64(capacity)), tune.miniMin),
		idx:    make(map[uint64]*refMiniEntry),
	}
	mc := max(capacity>>k, 1)
	for i, f := range tune.miniFracs {
		p := newFixed(mc, refHashValue, f, ghost)
		if i > 0 && p.sketch.maxWords == len(p.sketch.table) {
			// Every simulation counts the same requests in the same
			// order, into a sketch of the same size that never grows:
			// their sketches would be equal, so they share the first
			// one's, which counts for all (the first is fed first). The
			// forgetting twin, which clears its own, keeps its own.
			p.sketch, p.shared = m.sims[0].p.sketch, true
		}
		m.sims = append(m.sims, &refMiniSim{p: p, frac: f, cap: mc})
		if f == tune.windowPercent {
			m.cur = i
		}
	}
	twin := newFixed(mc, refHashValue, tune.miniFracs[0], ghost)
	twin.forgetAt = max(1, int(tune.forgetAfter*float64(mc)))
	m.sims = append(m.sims, &refMiniSim{p: twin, frac: tune.miniFracs[0], cap: mc})
	m.fed = len(m.sims)
	return m
}

// dropTwin stops feeding the forgetting twin, once the cache has made the
// only decision the twin informs (the one-shot forget), and releases the
// keys only the twin held: the rest of the cache's life, a sampled request
// updates one simulation fewer. The plain simulations' decisions do not
// change.
func (m *refMinis) dropTwin() {
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
func (m *refMinis) access(h uint64) (float64, bool) {
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
func (m *refMinis) forgetDue() bool {
	f := m.sims[len(m.sims)-1]
	return f.p.forgot && f.score > m.sims[0].score*(1+tune.forgetMargin)
}

// feed passes a request for the key of hash h to every simulation: a hit
// is a use, a miss adds the key and evicts the simulation's victims.
func (m *refMinis) feed(h uint64) {
	e := m.idx[h]
	if e == nil {
		if n := len(m.free); n > 0 {
			e = m.free[n-1]
			m.free = m.free[:n-1]
		} else {
			e = &refMiniEntry{nodes: make([]Node[uint64], len(m.sims))}
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
