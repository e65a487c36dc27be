package policies

import "math"

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
//
// Each simulation decides exactly as a wtinylfu[uint64] of its size and
// window keyed by the hashes would (TestMinisDecideAsWTinyLFU replays
// traces through both), but is laid out for the sampled request's cost and
// the simulations' memory: a sampled key is one slot, found through an
// open-addressing table, holding its hash, the sketch's rehash of it
// (computed once per key, not once per sketch operation) and its node in
// each simulation's array of nodes (16-bit links to other slots, 6 bytes
// a node, against a Node[uint64]'s 32 and a map entry and a slice per key).
type minis struct {
	sims []miniSim // tune.miniFracs' simulations, then the forgetting twin
	fed  int       // the first fed simulations get the requests: all, or all but the dropped twin
	// keys holds the sampled keys' slots, live how many simulations hold
	// each (apart: 17 bytes a slot rather than 24), and each simulation's
	// nodes their nodes there, by slot. A slot is in use while a
	// simulation holds its key.
	keys []miniKey
	live []uint8
	// free holds the slots of keys no simulation holds any more, for the
	// next sampled keys: a sampled miss allocates nothing once the
	// simulations are full.
	free []slot
	// table indexes the slots in use by their key's hash: linear probing
	// from the rehash's low bits, each cell a slot + 1 (0: empty), at most
	// half full.
	table  []slot
	used   int  // slots in use
	shift  uint // a key is sampled when its rehash >> shift is 0; 64: every key
	period int  // requests between decisions
	count  int
	cur    int // the simulation whose window the cache uses
}

// miniKey is a sampled key: its hash.
type miniKey struct {
	h uint64
}

// r returns the key's spread hash, which places it in the table and counts
// it in the sketches: recomputed (four multiply-shifts) rather than kept,
// which would take 8 more bytes per slot.
func (k miniKey) r() uint64 { return spread(k.h) }

// slot indexes minis.keys and the simulations' nodes. A simulation holds
// at most its capacity, tune.miniFull or tune.miniCap entries (512), plus
// the key being added, so that the slots in use are fewer than
// (len(tune.miniFracs)+1) × 513: 16 bits hold them.
type slot int16

// maxSlots bounds the slots (and a table cell holds a slot + 1).
const maxSlots = math.MaxInt16 - 1

// miniNode is a key's place in one simulation: its segment (0 while the
// simulation does not hold it) and its neighbours there, as slots (-1: the
// segment's end).
type miniNode struct {
	prev, next slot
	seg        uint8
}

// The segments of a simulation, as miniNode.seg and miniSim.segs' index + 1.
const (
	segWindow = 1 + iota
	segProbation
	segProtected
)

// miniList is a simulation's segment: its oldest and newest slots (-1 when
// empty) and its length.
type miniList struct {
	head, tail slot
	n          int
}

// miniSim is one simulation: a W-TinyLFU cache of cap sampled keys whose
// window stays at frac of it, with the fields and the logic of a
// wtinylfu[uint64] that is a simulation (no minis of its own, hashes for
// keys), over the slots of its minis.
type miniSim struct {
	nodes                   []miniNode  // by slot
	segs                    [3]miniList // window, probation, protected
	cap                     int
	maxWindow, maxProtected int
	sketch                  *sketch
	shared                  bool // as wtinylfu.shared
	candidate               slot // as wtinylfu.candidate; -1: none
	rand                    uint64
	ghost                   ghostSet
	forgetAt, requests      int
	forgot                  bool
	frac                    float64
	hits                    int
	score                   float64
}

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
		table:  make([]slot, 64),
	}
	mc := max(capacity>>k, 1)
	m.sims = make([]miniSim, 0, len(tune.miniFracs)+1)
	for i, f := range tune.miniFracs {
		s := newMiniSim(mc, f, ghost)
		if i > 0 && s.sketch.maxWords == len(s.sketch.table) {
			// Every simulation counts the same requests in the same
			// order, into a sketch of the same size that never grows:
			// their sketches would be equal, so they share the first
			// one's, which counts for all (the first is fed first). The
			// forgetting twin, which clears its own, keeps its own.
			s.sketch, s.shared = m.sims[0].sketch, true
		}
		m.sims = append(m.sims, s)
		if f == tune.windowPercent {
			m.cur = i
		}
	}
	twin := newMiniSim(mc, tune.miniFracs[0], ghost)
	twin.forgetAt = max(1, int(tune.forgetAfter*float64(mc)))
	m.sims = append(m.sims, twin)
	m.fed = len(m.sims)
	return m
}

// newMiniSim is newFixed(capacity, hash, frac, ghost) as a simulation.
func newMiniSim(capacity int, frac float64, ghost bool) miniSim {
	capacity = max(capacity, 1)
	sk := newSketch(capacity)
	s := miniSim{cap: capacity, sketch: &sk, frac: frac, candidate: -1, rand: 0x9e3779b97f4a7c15}
	for i := range s.segs {
		s.segs[i] = miniList{head: -1, tail: -1}
	}
	// wtinylfu.setWindow on an empty cache.
	s.maxWindow = min(max(1, int(frac*float64(capacity)+0.5)), capacity)
	s.maxProtected = int(tune.protectedPercent * float64(capacity-s.maxWindow))
	if ghost {
		s.ghost = newGhostSet(int(tune.ghostPercent * float64(capacity)))
	}
	return s
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
	tw := &m.sims[i]
	for seg := range tw.segs {
		for s := tw.segs[seg].head; s >= 0; {
			next := tw.nodes[s].next
			tw.remove(s)
			if m.live[s]--; m.live[s] == 0 {
				m.release(s)
			}
			s = next
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
	for i := range m.sims {
		s := &m.sims[i]
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
	f := &m.sims[len(m.sims)-1]
	return f.forgot && f.score > m.sims[0].score*(1+tune.forgetMargin)
}

// feed passes a request for the key of hash h to every simulation: a hit
// is a use, a miss adds the key and evicts the simulation's victims.
func (m *minis) feed(h uint64) {
	r := spread(h)
	s := m.lookup(h, r)
	if s < 0 {
		s = m.insert(h, r)
	}
	sims := m.sims[:m.fed]
	for i := range sims {
		sim := &sims[i]
		if sim.nodes[s].seg != 0 {
			sim.touch(s, r)
			sim.hits++
			continue
		}
		sim.add(s, r)
		m.live[s]++
		for sim.len() > sim.cap {
			v := sim.victim(m.keys)
			sim.remove(v)
			if m.live[v]--; m.live[v] == 0 && v != s {
				m.release(v)
			}
		}
	}
	if m.live[s] == 0 {
		m.release(s)
	}
}

// lookup returns the slot of the key of hash h and rehash r, or -1.
func (m *minis) lookup(h, r uint64) slot {
	mask := uint64(len(m.table) - 1)
	for p := r & mask; ; p = (p + 1) & mask {
		c := m.table[p]
		if c == 0 {
			return -1
		}
		if m.keys[c-1].h == h {
			return c - 1
		}
	}
}

// insert gives the key of hash h and rehash r, not indexed, a slot (a free
// one if any) and indexes it.
func (m *minis) insert(h, r uint64) slot {
	var s slot
	if n := len(m.free); n > 0 {
		s = m.free[n-1]
		m.free = m.free[:n-1]
	} else {
		if len(m.keys) == cap(m.keys) {
			m.grow()
		}
		s = slot(len(m.keys))
		m.keys = m.keys[:s+1]
		m.live = m.live[:s+1]
		for i := range m.sims {
			m.sims[i].nodes = m.sims[i].nodes[:s+1]
		}
	}
	m.keys[s] = miniKey{h: h}
	if m.used++; 2*m.used > len(m.table) {
		m.rehash(2 * len(m.table))
	}
	m.place(s)
	return s
}

// grow makes room for a quarter more slots (at least 16): slack of at
// most a quarter of the slots, where append's doubling of small slices
// would leave up to as many slots unused as used.
func (m *minis) grow() {
	n := max(16, cap(m.keys)+cap(m.keys)/4)
	if n > maxSlots {
		panic("memo: policies: miniature simulations over their slots' range")
	}
	m.keys = append(make([]miniKey, 0, n), m.keys...)
	m.live = append(make([]uint8, 0, n), m.live...)
	for i := range m.sims {
		sim := &m.sims[i]
		sim.nodes = append(make([]miniNode, 0, n), sim.nodes...)
	}
}

// place puts slot s in the table's first empty cell from its key's home.
func (m *minis) place(s slot) {
	mask := uint64(len(m.table) - 1)
	p := m.keys[s].r() & mask
	for m.table[p] != 0 {
		p = (p + 1) & mask
	}
	m.table[p] = s + 1
}

// rehash rebuilds the table with n cells.
func (m *minis) rehash(n int) {
	old := m.table
	m.table = make([]slot, n)
	for _, c := range old {
		if c != 0 {
			m.place(c - 1)
		}
	}
}

// release unindexes slot s, which no simulation holds, and frees it:
// backward-shift deletion, which leaves no tombstones.
func (m *minis) release(s slot) {
	mask := uint64(len(m.table) - 1)
	p := m.keys[s].r() & mask
	for m.table[p] != s+1 {
		p = (p + 1) & mask
	}
	for q := (p + 1) & mask; m.table[q] != 0; q = (q + 1) & mask {
		// The entry at q may move to the hole at p if its home is not
		// in (p, q], cyclically.
		if home := m.keys[m.table[q]-1].r() & mask; (q-home)&mask >= (q-p)&mask {
			m.table[p] = m.table[q]
			p = q
		}
	}
	m.table[p] = 0
	m.used--
	m.free = append(m.free, s)
}

func (s *miniSim) len() int { return s.segs[0].n + s.segs[1].n + s.segs[2].n }

// pushBack links slot x at the newest end of segment seg.
func (s *miniSim) pushBack(seg uint8, x slot) {
	l := &s.segs[seg-1]
	n := &s.nodes[x]
	n.prev, n.next, n.seg = l.tail, -1, seg
	if l.tail >= 0 {
		s.nodes[l.tail].next = x
	} else {
		l.head = x
	}
	l.tail = x
	l.n++
}

// unlink removes slot x from its segment.
func (s *miniSim) unlink(x slot) {
	n := &s.nodes[x]
	l := &s.segs[n.seg-1]
	if n.prev >= 0 {
		s.nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	if n.next >= 0 {
		s.nodes[n.next].prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.seg = 0
	l.n--
}

// request is wtinylfu.access for the key of rehash r.
func (s *miniSim) request(r uint64) {
	if !s.shared {
		s.sketch.incrementOf(r)
	}
	if s.forgetAt > 0 && !s.forgot {
		if s.requests++; s.requests >= s.forgetAt {
			s.sketch.clear()
			s.forgot = true
		}
	}
}

// add is wtinylfu.Add for slot x, of rehash r.
func (s *miniSim) add(x slot, r uint64) {
	if !s.shared || s.forgetAt > 0 { // else request does nothing: skip the call
		s.request(r)
	}
	s.pushBack(segWindow, x)
	if sk := s.sketch; len(sk.table) < sk.maxWords { // else grow does nothing
		sk.grow(s.len())
	}
	s.candidate = -1
	for s.segs[0].n > s.maxWindow {
		s.candidate = s.segs[0].head
		s.unlink(s.candidate)
		s.pushBack(segProbation, s.candidate)
	}
}

// touch is wtinylfu.Touch for slot x, of rehash r, which s holds.
func (s *miniSim) touch(x slot, r uint64) {
	if !s.shared || s.forgetAt > 0 {
		s.request(r)
	}
	nodes := s.nodes
	n := &nodes[x]
	if n.seg == segProbation {
		// unlink and pushBack to protected, then demote, written out.
		pb, pt := &s.segs[1], &s.segs[2]
		if n.prev >= 0 {
			nodes[n.prev].next = n.next
		} else {
			pb.head = n.next
		}
		if n.next >= 0 {
			nodes[n.next].prev = n.prev
		} else {
			pb.tail = n.prev
		}
		pb.n--
		n.prev, n.next, n.seg = pt.tail, -1, segProtected
		if pt.tail >= 0 {
			nodes[pt.tail].next = x
		} else {
			pt.head = x
		}
		pt.tail = x
		pt.n++
		for pt.n > s.maxProtected {
			// Protected's oldest to probation's newest end.
			d := pt.head
			dn := &nodes[d]
			pt.head = dn.next
			if dn.next >= 0 {
				nodes[dn.next].prev = -1
			} else {
				pt.tail = -1
			}
			pt.n--
			dn.prev, dn.next, dn.seg = pb.tail, -1, segProbation
			if pb.tail >= 0 {
				nodes[pb.tail].next = d
			} else {
				pb.head = d
			}
			pb.tail = d
			pb.n++
		}
		return
	}
	// bucket.moveToBack: the segment's length and n's segment stay.
	l := &s.segs[n.seg-1]
	if l.tail == x {
		return
	}
	// x is not the tail: it has a next, and the tail is another slot.
	if n.prev >= 0 {
		nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	nodes[n.next].prev = n.prev
	nodes[l.tail].next = x
	n.prev, n.next = l.tail, -1
	l.tail = x
}

// remove is wtinylfu.Remove for slot x, which s holds.
func (s *miniSim) remove(x slot) {
	if x == s.candidate {
		s.candidate = -1
	}
	s.unlink(x)
}

// victim is wtinylfu.Victim; keys are the slots' keys.
func (s *miniSim) victim(keys []miniKey) slot {
	if c := s.candidate; c >= 0 && s.len() > s.cap {
		v := s.segs[1].head
		if v == c {
			v = s.segs[2].head
			if v < 0 {
				return c
			}
		}
		if s.admit(&keys[c], &keys[v]) {
			if s.ghost.on() {
				s.ghost.add(keys[v].h)
			}
			return v
		}
		if s.ghost.on() {
			s.ghost.add(keys[c].h)
		}
		return c
	}
	for _, seg := range [...]int{1, 2, 0} {
		if l := s.segs[seg]; l.n > 0 {
			return l.head
		}
	}
	return -1
}

// admit is wtinylfu.admit for the keys c and v.
func (s *miniSim) admit(c, v *miniKey) bool {
	return admits(s.sketch.estimateOf(c.r()), s.sketch.estimateOf(v.r()), &s.ghost, c.h, &s.rand)
}
