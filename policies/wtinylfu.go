package policies

var _ Policy[int] = (*wtinylfu[int])(nil)

// tuning holds W-TinyLFU's constants, chosen on the trace matrix
// (shared/traces/MATRIX.md). Tests in this package vary them.
type tuning struct {
	windowPercent    float64 // initial window, of the capacity
	protectedPercent float64 // protected segment, of the main space
	// Miniature simulations (see minis).
	miniCap    int       // largest simulated cache; larger caches are sampled down to it
	miniPeriod float64   // requests between decisions, in capacities
	miniMin    int       // at least this many requests between decisions
	miniDecay  float64   // weight of the past in a simulation's score, per decision
	miniMargin float64   // a simulation must beat the chosen one's score by this fraction
	miniFracs  []float64 // the simulated windows, in fractions of the capacity
}

var tune = tuning{
	windowPercent:    0.01,
	protectedPercent: 0.80,
	miniCap:          256,
	miniPeriod:       0.5,
	miniMin:          1000,
	miniDecay:        0.95,
	miniMargin:       0.02,
	miniFracs:        []float64{0.01, 0.1, 0.3, 0.6, 0.9},
}

// wtinylfu is Window TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A
// Highly Efficient Cache Admission Policy", ACM ToS 2017) as Caffeine lays it
// out: new entries enter an LRU window; the window's oldest entry, leaving
// it, is admitted to the main space (an SLRU of probation and protected
// segments) only if the frequency sketch counts it more often than
// probation's oldest entry, which it then replaces. The window's size adapts
// to the workload: where Caffeine climbs the hit rate over time, the window
// follows the best of a few miniature simulations with fixed windows, run
// side by side on a spatial sample of the keys (see minis), which compares
// window sizes on the same requests and reacts within a few capacities of
// requests.
type wtinylfu[V any] struct {
	window, probation, protected    bucket[V]
	nWindow, nProbation, nProtected int

	capacity     int
	maxWindow    int
	maxProtected int
	hash         func(*Node[V]) uint64
	sketch       sketch
	// candidate is the entry moved from the window to probation by the
	// last Add, which Victim weighs against probation's oldest entry.
	candidate *Node[V]
	rand      uint64 // xorshift state for the hash-flooding defence
	minis     *minis // nil in a simulation itself
}

func newWTinyLFU[V any](capacity int, hash func(*Node[V]) uint64) *wtinylfu[V] {
	w := newFixed(capacity, hash, tune.windowPercent)
	w.minis = newMinis(w.capacity, tune.miniFracs)
	return w
}

// newFixed returns a W-TinyLFU whose window stays at frac of the capacity
// (at least one entry).
func newFixed[V any](capacity int, hash func(*Node[V]) uint64, frac float64) *wtinylfu[V] {
	capacity = max(capacity, 1)
	w := &wtinylfu[V]{capacity: capacity, hash: hash, sketch: newSketch(capacity)}
	w.window.init(&w.window)
	w.probation.init(&w.window)
	w.protected.init(&w.window)
	w.reset(frac)
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
	if n := w.Len(); n > len(w.sketch.table) {
		w.sketch.grow(n)
	}
	w.candidate = nil
	for w.nWindow > w.maxWindow {
		w.candidate = w.window.root.next
		w.toProbation(w.candidate)
	}
}

// access counts a request for the key of hash h.
func (w *wtinylfu[V]) access(h uint64) {
	w.sketch.increment(h)
	if w.minis != nil {
		if f, ok := w.minis.access(h); ok {
			w.setWindow(f)
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
		if n.next != &w.window.root {
			unlink(n)
			w.window.pushBack(n)
		}
	case &w.probation:
		unlink(n)
		w.nProbation--
		w.protected.pushBack(n)
		w.nProtected++
		w.demote()
	default:
		if n.next != &w.protected.root {
			unlink(n)
			w.protected.pushBack(n)
		}
	}
}

// toProbation moves n from the window to probation's newest end.
func (w *wtinylfu[V]) toProbation(n *Node[V]) {
	unlink(n)
	w.nWindow--
	w.probation.pushBack(n)
	w.nProbation++
}

// demote moves protected's oldest entries to probation while protected
// is over its share.
func (w *wtinylfu[V]) demote() {
	for w.nProtected > w.maxProtected {
		d := w.protected.root.next
		unlink(d)
		w.nProtected--
		w.probation.pushBack(d)
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
		if w.admit(c, v) {
			return v
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

// admit reports whether candidate c should replace victim v: TinyLFU admits
// the more frequent; a tie keeps the victim. Against hash flooding (an
// attacker raising victims' counts through colliding keys, so that nothing
// new gets in), one warm candidate in 4096 that does not win is admitted
// anyway, as Caffeine does with one in 128: on the matrix's looping traces
// every key is warm, and one in 128 cost loop@1000 two points.
func (w *wtinylfu[V]) admit(c, v *Node[V]) bool {
	cf := w.sketch.estimate(w.hash(c))
	vf := w.sketch.estimate(w.hash(v))
	if cf > vf {
		return true
	}
	if cf >= 6 {
		w.rand ^= w.rand << 13
		w.rand ^= w.rand >> 7
		w.rand ^= w.rand << 17
		return w.rand&4095 == 0
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
	w.sketch.clear()
	w.reset(tune.windowPercent)
	if w.minis != nil {
		w.minis = newMinis(w.capacity, tune.miniFracs)
	}
}
