package policies

var _ Policy[int] = (*wtinylfu[int])(nil)

// tuning holds W-TinyLFU's constants, chosen on the trace matrix
// (shared/traces/MATRIX.md). Tests in this package vary them.
type tuning struct {
	windowPercent    float64 // initial window, of the capacity
	protectedPercent float64 // protected segment, of the main space
	sampleFactor     int     // the sketch halves every sampleFactor × capacity increments
	wideSketchMax    int     // caches of up to this many entries get 2 sketch words per entry
	// Miniature simulations (see minis).
	miniFull   int       // caches of up to this many entries are simulated whole
	miniCap    int       // larger caches are sampled down to at most this many entries
	miniShift  uint      // and at least this power of two: one key in 1<<miniShift, or fewer
	miniPeriod float64   // requests between decisions, in capacities
	miniMin    int       // at least this many requests between decisions
	miniDecay  float64   // weight of the past in a simulation's score, per decision
	miniMargin float64   // a simulation must beat the chosen one's score by this fraction
	miniFracs  []float64 // the simulated windows, in fractions of the capacity, ascending
	// The one-shot forget (see minis.forgetDue).
	forgetAfter  float64 // the forgetting simulation clears its sketch after this many capacities of requests
	forgetMargin float64 // the cache forgets when that simulation beats its twin by this fraction
	// Random admission against hash flooding (see admit).
	randMin    int    // the candidate's estimate must be at least this
	randVictim int    // and the victim's at least this
	randMask   uint64 // one such candidate in randMask+1 is admitted
	// Non-resident history of large caches (see ghostSet).
	ghostMinCap  int     // caches of at least this many entries keep it
	ghostPercent float64 // remembered evictions, of the capacity
}

var tune = tuning{
	windowPercent:    0.005,
	protectedPercent: 0.80,
	sampleFactor:     20,
	wideSketchMax:    4096,
	miniFull:         512,
	miniCap:          512,
	miniShift:        2,
	miniPeriod:       0.5,
	miniMin:          1000,
	miniDecay:        0.95,
	miniMargin:       0.02,
	miniFracs:        []float64{0.005, 0.02, 0.1, 0.3, 0.6},
	forgetAfter:      1,
	forgetMargin:     0.02,
	randMin:          6,
	randVictim:       15,
	randMask:         4095,
	ghostMinCap:      50000,
	ghostPercent:     0.25,
}

// wtinylfu is Window TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A
// Highly Efficient Cache Admission Policy", ACM ToS 2017) as Caffeine lays it
// out: new entries enter an LRU window; the window's oldest entry, leaving
// it, is admitted to the main space (an SLRU of probation and protected
// segments) only if the frequency sketch counts it more often than
// probation's oldest entry, which it then replaces. Three things are added,
// each chosen on the trace matrix:
//
//   - The window's size adapts to the workload: where Caffeine climbs the
//     hit rate over time, the window steps toward the best of a few
//     miniature simulations with fixed windows, run side by side on a
//     spatial sample of the keys (see minis), which compare window sizes
//     on the same requests and react within a few capacities of requests.
//   - A one-shot forget: one more simulation clears its sketch after the
//     warm-up, and if that pays, the cache clears its own, once (see minis).
//   - Large caches keep non-resident history (see ghostSet): a candidate
//     evicted lately is admitted, as CLOCK-Pro and S3-FIFO let a returning
//     key in.
type wtinylfu[V any] struct {
	window, probation, protected    bucket[V]
	nWindow, nProbation, nProtected int

	capacity     int
	maxWindow    int
	maxProtected int
	hash         func(*Node[V]) uint64
	sketch       *sketch
	// shared is set in a simulation that shares its sketch with the one
	// before it (see newMinis), which counts every request for both. The
	// cache's simulations are miniSims, which keep these fields and this
	// logic; a wtinylfu simulation remains as their reference in the tests
	// (refMinis), which is what shared, forgetAt and requests serve.
	shared bool
	// candidate is the entry moved from the window to probation by the
	// last Add, which Victim weighs against probation's oldest entry.
	candidate *Node[V]
	rand      uint64 // xorshift state for the hash-flooding defence
	minis     *minis // nil in a simulation itself
	// ghost remembers recent evictions in caches of tune.ghostMinCap
	// entries or more (and their simulations); a candidate it remembers
	// is admitted. Empty (and unused) in smaller caches.
	ghost ghostSet
	// forgetAt, in a simulation that forgets, is the request at which it
	// clears its sketch; requests counts its requests; forgot is set once
	// it (or, in the cache, the one-shot forget) has happened.
	forgetAt, requests int
	forgot             bool
}

func newWTinyLFU[V any](capacity int, hash func(*Node[V]) uint64) *wtinylfu[V] {
	w := newFixed(capacity, hash, tune.windowPercent, capacity >= tune.ghostMinCap)
	w.minis = newMinis(w.capacity, w.ghost.on())
	return w
}

// newFixed returns a W-TinyLFU whose window stays at frac of the capacity
// (at least one entry), with a ghostSet if ghost is set.
func newFixed[V any](capacity int, hash func(*Node[V]) uint64, frac float64, ghost bool) *wtinylfu[V] {
	capacity = max(capacity, 1)
	sk := newSketch(capacity)
	w := &wtinylfu[V]{capacity: capacity, hash: hash, sketch: &sk}
	w.window.init(&w.window)
	w.probation.init(&w.window)
	w.protected.init(&w.window)
	w.reset(frac)
	if ghost {
		w.ghost = newGhostSet(int(tune.ghostPercent * float64(capacity)))
	}
	return w
}

func (w *wtinylfu[V]) reset(frac float64) {
	w.maxWindow = 0
	w.setWindow(frac)
	w.candidate = nil
	w.rand = 0x9e3779b97f4a7c15
}

func (w *wtinylfu[V]) owns(n *Node[V]) bool { return n.bucket != nil && n.bucket.owner == &w.window }

func (w *wtinylfu[V]) Len() int { return w.nWindow + w.nProbation + w.nProtected }

// Add puts n in the window, moving the window's oldest entry, if the window
// is over its size, to probation as the candidate that Victim weighs.
func (w *wtinylfu[V]) Add(n *Node[V]) {
	mustBeUnlinked(n)
	w.access(w.hash(n))
	w.window.pushBack(n)
	w.nWindow++
	if sk := w.sketch; len(sk.table) < sk.maxWords { // else grow does nothing: skip the call
		sk.grow(w.Len())
	}
	w.candidate = nil
	for w.nWindow > w.maxWindow {
		w.candidate = w.window.root.next
		w.toProbation(w.candidate)
	}
}

// access counts a request for the key of hash h.
func (w *wtinylfu[V]) access(h uint64) {
	if !w.shared {
		w.sketch.incrementOf(spread(h))
	}
	if w.minis != nil {
		if f, ok := w.minis.access(h); ok {
			w.setWindow(f)
			if !w.forgot && w.minis.forgetDue() {
				// The one-shot forget: what the sketch counted while
				// the cache warmed up misleads it on this workload.
				w.sketch.clear()
				w.forgot = true
				w.minis.dropTwin()
			}
		}
		return
	}
	if w.forgetAt > 0 && !w.forgot {
		if w.requests++; w.requests >= w.forgetAt {
			w.sketch.clear()
			w.forgot = true
		}
	}
}

func (w *wtinylfu[V]) Touch(n *Node[V]) {
	if !w.owns(n) {
		return
	}
	w.access(w.hash(n))
	switch n.bucket {
	case &w.window:
		w.window.moveToBack(n)
	case &w.probation:
		w.protected.moveIn(n)
		w.nProbation--
		w.nProtected++
		w.demote()
	default:
		w.protected.moveToBack(n)
	}
}

// toProbation moves n from the window to probation's newest end.
func (w *wtinylfu[V]) toProbation(n *Node[V]) {
	w.probation.moveIn(n)
	w.nWindow--
	w.nProbation++
}

// demote moves protected's oldest entries to probation while protected
// is over its share.
func (w *wtinylfu[V]) demote() {
	for w.nProtected > w.maxProtected {
		w.probation.moveIn(w.protected.root.next)
		w.nProtected--
		w.nProbation++
	}
}

func (w *wtinylfu[V]) Remove(n *Node[V]) {
	if !w.owns(n) {
		return
	}
	switch n.bucket {
	case &w.window:
		w.nWindow--
	case &w.probation:
		w.nProbation--
	default:
		w.nProtected--
	}
	if n == w.candidate {
		w.candidate = nil
	}
	unlink(n)
}

func (w *wtinylfu[V]) Replace(old, n *Node[V]) {
	if !w.owns(old) {
		w.Add(n)
		return
	}
	mustBeUnlinked(n)
	if old == w.candidate {
		w.candidate = n
	}
	replaceNode(old, n)
}

// Victim returns the entry to evict. When the cache is over its capacity
// after an Add moved an entry out of the window, it is the loser of
// TinyLFU's admission: that candidate or probation's oldest entry (or
// protected's, when probation holds only the candidate). Otherwise it is
// the oldest entry of probation, else protected, else the window.
func (w *wtinylfu[V]) Victim() *Node[V] {
	if c := w.candidate; c != nil && w.Len() > w.capacity {
		v := w.probation.root.next
		if v == c {
			v = w.protected.root.next
			if v == &w.protected.root {
				return c
			}
		}
		// Each key hashed once (a hash is a pass over the key), and for
		// the ghost only when there is one.
		hc, hv := w.hash(c), w.hash(v)
		if w.admit(hc, hv) {
			if w.ghost.on() {
				w.ghost.add(hv)
			}
			return v
		}
		if w.ghost.on() {
			w.ghost.add(hc)
		}
		return c
	}
	for _, b := range [...]*bucket[V]{&w.probation, &w.protected, &w.window} {
		if !b.empty() {
			return b.root.next
		}
	}
	return nil
}

// admit reports whether the candidate, of hash hc, should replace the
// victim, of hash hv: TinyLFU admits the more frequent; a tie keeps the
// victim. In a cache with non-resident history (tune.ghostMinCap entries or
// more), a candidate evicted lately is admitted too: on large caches whose
// keys come back after long gaps (ARC's P3 at 100,000 entries), the sketch,
// halved in between, no longer tells them from keys seen once.
//
// Against hash flooding (an attacker raising victims' counts through
// colliding keys, so that nothing new gets in), one warm candidate in 4096
// (an estimate of 6 or more) that loses to a saturated victim (15, the
// counters' limit, where a flood drives them) is admitted anyway. Caffeine
// admits one warm candidate in 128 whatever the victim's count; on the
// matrix's looping traces every key is warm, and admitting below
// saturation cost loop@500 two points.
func (w *wtinylfu[V]) admit(hc, hv uint64) bool {
	return admits(w.sketch.estimate(hc), w.sketch.estimate(hv), &w.ghost, hc, &w.rand)
}

// admits is the admission rule of a cache and of its simulations (see
// wtinylfu.admit): cf and vf are the candidate's and the victim's
// estimated counts, g the ghost set and hc the candidate's hash, rand the
// xorshift state of the hash-flooding defence.
func admits(cf, vf int, g *ghostSet, hc uint64, rand *uint64) bool {
	if cf > vf || (g.on() && g.has(hc)) {
		return true
	}
	if cf >= tune.randMin && vf >= tune.randVictim {
		*rand ^= *rand << 13
		*rand ^= *rand >> 7
		*rand ^= *rand << 17
		return *rand&tune.randMask == 0
	}
	return false
}

// setWindow sizes the window at frac of the capacity (at least one entry),
// protected at its share of the rest, and moves the entries over their
// segment's size to probation.
func (w *wtinylfu[V]) setWindow(frac float64) {
	nw := min(max(1, int(frac*float64(w.capacity)+0.5)), w.capacity)
	if nw == w.maxWindow {
		return
	}
	w.maxWindow = nw
	w.maxProtected = int(tune.protectedPercent * float64(w.capacity-nw))
	w.demote()
	for w.nWindow > w.maxWindow {
		w.toProbation(w.window.root.next)
	}
}

func (w *wtinylfu[V]) Clear() {
	for _, b := range [...]*bucket[V]{&w.window, &w.probation, &w.protected} {
		for n := b.root.next; n != &b.root; {
			next := n.next
			n.prev, n.next, n.bucket = nil, nil, nil
			n = next
		}
		b.init(&w.window)
	}
	w.nWindow, w.nProbation, w.nProtected = 0, 0, 0
	*w.sketch = newSketch(w.capacity) // as small as a new cache's: the same replay
	w.ghost.clear()
	w.reset(tune.windowPercent)
	w.requests, w.forgot = 0, false
	if w.minis != nil {
		w.minis = newMinis(w.capacity, w.ghost.on())
	}
}

// ghostSet is the non-resident history of a large cache: the keys it
// evicted lately (about the last n, between n and 2n), as CLOCK-Pro
// (Jiang, Chen and Zhang, USENIX ATC 2005) keeps non-resident pages and
// S3-FIFO (Yang et al., SOSP 2023) its ghost queue, held in two Bloom
// filters of 8 bits per key and 3 probes: keys go to the current one, and
// when it holds n keys it becomes the previous one and the old previous
// one, cleared, the current one. A key is present if either filter has it
// (false positives: about 3 %). Memory: 2n bytes, rounded up to powers of
// two; an add or a lookup is three bit operations, a swap O(n) once every
// n adds. The zero ghostSet remembers nothing.
type ghostSet struct {
	cur, prev []uint64
	mask      uint64 // bits per filter - 1
	n, count  int
}

// newGhostSet returns a ghostSet that remembers the last n to 2n keys.
func newGhostSet(n int) ghostSet {
	n = max(n, 1)
	bits := 64
	for bits < 8*n {
		bits *= 2
	}
	return ghostSet{cur: make([]uint64, bits/64), prev: make([]uint64, bits/64), mask: uint64(bits - 1), n: n}
}

func (g *ghostSet) on() bool { return g.cur != nil }

// add remembers h; a zero ghostSet ignores it.
func (g *ghostSet) add(h uint64) {
	if g.cur == nil {
		return
	}
	if g.count >= g.n {
		g.cur, g.prev = g.prev, g.cur
		clear(g.cur)
		g.count = 0
	}
	h = spread(h ^ 0x6a09e667f3bcc909)
	for i := range 3 {
		b := g.probe(h, i)
		g.cur[b>>6] |= 1 << (b & 63)
	}
	g.count++
}

// has reports whether h was added among about the last n to 2n adds (or is
// a false positive); false for a zero ghostSet.
func (g *ghostSet) has(h uint64) bool {
	if g.cur == nil {
		return false
	}
	h = spread(h ^ 0x6a09e667f3bcc909)
	return g.in(g.cur, h) || g.in(g.prev, h)
}

// probe returns the bit of probe i (0-2) for the rehash h: three 21-bit
// fields of h in a filter of up to 2^21 bits (caches of up to about a
// million entries), and double hashing (Kirsch and Mitzenmacher) in larger
// ones, whose probes 21-bit fields would not spread over the filter.
func (g *ghostSet) probe(h uint64, i int) uint64 {
	if g.mask < 1<<21 {
		return (h >> (21 * i)) & g.mask
	}
	return (h + uint64(i)*(spread(h)|1)) & g.mask
}

func (g *ghostSet) in(f []uint64, h uint64) bool {
	for i := range 3 {
		b := g.probe(h, i)
		if f[b>>6]&(1<<(b&63)) == 0 {
			return false
		}
	}
	return true
}

// clear forgets every key.
func (g *ghostSet) clear() {
	clear(g.cur)
	clear(g.prev)
	g.count = 0
}
