package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/memokit/memo/policies"
)

// readBuffer records cache hits for the policy without a cache-wide lock,
// as Caffeine's and otter's read buffers do. It starts with one stripe, so
// uses from one goroutine keep their order and a replay stays exact; when
// goroutines contend for a stripe it doubles its stripes, up to about four
// per processor, each goroutine records into the stripe its stack address
// picks (so goroutines on different processors rarely share a stripe's
// cache lines, as Java's Striped64 does with its thread probe), and from
// then on one
// use in sampleRate is recorded (as Caffeine and otter, which record uses
// lossily). A full stripe drops the use record too. The hit always counts in
// the statistics; only the eviction order becomes approximate, and only once
// the cache has seen contention.
//
// The first stripe is made with the cache's first entry (no hit can come
// before it), the table of further stripes at the first contention, so that
// an unused cache does not pay for them.
type readBuffer struct {
	n atomic.Uint32 // stripes in use, a power of two; 0 before init
	// flags holds flagContended and flagRecording (one word, so that the
	// readBuffer, and a Cache, stay in their size class).
	flags atomic.Uint32
	// flagRecording is set while uses are recorded; until then add only counts
	// hits. LRU and LFU caches record from the start; a W-TinyLFU cache
	// once it has been half full, as Caffeine and otter start their
	// frequency sketch and read buffer then: until entries compete for
	// room, order and frequency decide nothing, and the hits of the
	// warm-up misled admission later (the matrix's mean rose by 0.1 to 0.2
	// points without them). Set under Cache.mu; cleared with the entries.
	First atomic.Pointer[ReadStripe]
	more  atomic.Pointer[[maxStripes]atomic.Pointer[ReadStripe]] // all stripes, once n > 1
	// sampleMask is 0 to record every use (lossy only when a stripe is
	// full), or sampleRate-1 to record one use in sampleRate (see
	// setSampling). Written under Cache.mu, read by add.
	sampleMask atomic.Uint64
}

// readBuffer.flags.
const (
	flagContended = 1 << iota // a goroutine waited for a stripe: drain adds stripes
	flagRecording             // uses are recorded (see readBuffer)
	flagAddFirst              // the cache's policy admits (see Core.addFirst); never changes
)

// Recording reports whether uses are recorded.
func (b *readBuffer) Recording() bool { return b.flags.Load()&flagRecording != 0 }

// record starts recording uses.
func (b *readBuffer) record() { b.flags.Or(flagRecording) }

// pause stops recording uses (a W-TinyLFU cache emptied by Clear starts
// over, as a new one).
func (b *readBuffer) pause() { b.flags.And(^uint32(flagRecording)) }

const (
	sampleRate  = 32
	maxStripes  = 64
	StripeSize  = 64
	CacheLine   = 64
	stripeBytes = 8 + 8 + 8 + 8 + StripeSize*8 + 8 // mu, n, hits, counted, buf, scratch
)

type ReadStripe struct {
	mu   sync.Mutex
	N    int
	hits uint64 // hits counted here under mu, moved to Cache.hits by drains
	// counted counts the hits add takes while the buffer is not recording,
	// with one atomic operation instead of mu's two; moved to Cache.hits
	// by drains too.
	counted atomic.Uint64
	buf     [StripeSize]*Node
	// scratch, in the first stripe only, holds a stripe's uses while a
	// drain applies them after the stripe's lock (see drain): made by the
	// first drain with uses to apply, and guarded by Cache.mu.
	scratch *[StripeSize]*Node
	_       [CacheLine - stripeBytes%CacheLine]byte
}

// init makes the first stripe, if it is not made yet. Cache.mu is held.
func (b *readBuffer) init() {
	if b.n.Load() == 0 {
		b.First.Store(new(ReadStripe))
		b.n.Store(1)
	}
}

// stripe returns stripe i, which is in use.
func (b *readBuffer) stripe(i uint32) *ReadStripe {
	if i == 0 {
		return b.First.Load()
	}
	return b.more.Load()[i].Load()
}

// add records a use of n and counts a hit. It reports whether the stripe
// is full, so the caller should drain.
func (b *readBuffer) add(n *Node, h uint64) bool {
	k := b.n.Load()
	st := b.First.Load()
	if k > 1 {
		st = b.more.Load()[stackProbe()&uint64(k-1)].Load()
	}
	if !b.Recording() {
		// Only count. A failed swap is contention: the caller drains,
		// which adds stripes.
		if v := st.counted.Load(); st.counted.CompareAndSwap(v, v+1) {
			return false
		}
		st.counted.Add(1)
		b.flags.Or(flagContended)
		return true
	}
	mask := b.sampleMask.Load()
	if mask != 0 {
		// Sampling (see setSampling): count with one atomic addition, and
		// take the lock only to record one use in sampleRate.
		if st.counted.Add(1)&mask != 0 {
			return false
		}
	}
	if !st.mu.TryLock() {
		b.flags.Or(flagContended)
		st.mu.Lock()
	}
	if mask == 0 {
		st.hits++ // else counted above
	}
	if st.N < StripeSize {
		st.buf[st.N] = n
		st.N++
	}
	full := st.N == StripeSize
	st.mu.Unlock()
	return full
}

// drain applies the recorded uses to p (p.Touch, a no-op for entries
// removed since), in order, empties the stripes and returns the hits they
// counted. The caller holds Cache.mu. If stripes were contended, it adds
// more. p is called directly, not through a closure: drains run once per
// stripeSize hits from one goroutine, so each use pays for the call.
//
// A stripe's uses are copied, under its lock, to the first stripe's
// scratch and applied from there, after the lock: a drain with nothing to
// apply (every miss's store drains) costs no buffer to clear.
func (b *readBuffer) drain(p policies.Policy[item]) uint64 {
	var hits uint64
	k := b.n.Load()
	for i := range k {
		st := b.stripe(i)
		st.mu.Lock()
		hits += st.hits
		st.hits = 0
		if st.counted.Load() != 0 { // no atomic write when nothing was counted there (a recording W-TinyLFU)
			hits += st.counted.Swap(0)
		}
		n := st.N
		if n == 0 {
			st.mu.Unlock()
			continue
		}
		first := b.First.Load()
		if first.scratch == nil {
			first.scratch = new([StripeSize]*Node)
		}
		buf := first.scratch
		copy(buf[:], st.buf[:n])
		clear(st.buf[:n])
		st.N = 0
		st.mu.Unlock()
		for _, u := range buf[:n] {
			p.Touch(u)
		}
		clear(buf[:n]) // keeps no entry alive
	}
	if b.flags.Load()&flagContended != 0 && k < maxStripes && int(k) < 4*runtime.GOMAXPROCS(0) {
		more := b.more.Load()
		if more == nil {
			more = new([maxStripes]atomic.Pointer[ReadStripe])
			more[0].Store(b.First.Load())
			b.more.Store(more)
		}
		for i := k; i < 2*k; i++ {
			more[i].Store(new(ReadStripe))
		}
		b.n.Store(2 * k)
		b.flags.And(^uint32(flagContended))
		if b.flags.Load()&flagAddFirst == 0 {
			b.sampleMask.Store(sampleRate - 1) // see setSampling
		}
	}
	return hits
}

// setSampling sets which uses add records. Cache.mu is held.
//
// LRU and LFU caches record every use while one stripe serves them, so
// that uses from one goroutine keep their order and a replay stays exact,
// and one in sampleRate once goroutines have contended (more than one
// stripe): replaying every hit onto the policy under Cache.mu would
// serialize parallel hits.
//
// W-TinyLFU's sketch needs every use, contended or not, while entries
// compete for room; but in a quiet spell (quiet set: the cache has served
// 16,384 hits without storing or removing an entry, or far more hits than
// writes, see Core.drain) it records one use in sampleRate until writes
// end it. A cache that
// stores nothing evicts nothing, so its order decides nothing meanwhile,
// and the hot keys still count the most when misses come back: sampling
// then keeps the sketch's proportions at a 32nd of the cost, as otter and
// Caffeine drop the uses their full read buffers cannot take.
func (b *readBuffer) setSampling(quiet bool) {
	var mask uint64
	if b.flags.Load()&flagAddFirst != 0 {
		if quiet {
			mask = sampleRate - 1
		}
	} else if b.n.Load() > 1 {
		mask = sampleRate - 1
	}
	b.sampleMask.Store(mask)
}

// reset drops the recorded uses and returns the hits counted in the
// stripes, zeroing them.
func (b *readBuffer) reset() uint64 {
	var hits uint64
	for i := range b.n.Load() {
		st := b.stripe(i)
		st.mu.Lock()
		clear(st.buf[:st.N])
		hits += st.hits + st.counted.Swap(0)
		st.N, st.hits = 0, 0
		st.mu.Unlock()
	}
	return hits
}

// takeHits zeroes the hits counted in the stripes.
func (b *readBuffer) takeHits() {
	for i := range b.n.Load() {
		st := b.stripe(i)
		st.mu.Lock()
		st.hits = 0
		st.counted.Store(0)
		st.mu.Unlock()
	}
}

// PendingHits returns the hits counted in the stripes and not yet drained.
func (b *readBuffer) PendingHits() uint64 {
	var hits uint64
	for i := range b.n.Load() {
		st := b.stripe(i)
		st.mu.Lock()
		hits += st.hits + st.counted.Load()
		st.mu.Unlock()
	}
	return hits
}

// stackProbe returns a number that differs between goroutines and stays
// the same for one goroutine: a hash of where its stack lies. It is only a
// hint for choosing a stripe; a goroutine whose stack moves just picks
// another stripe.
func stackProbe() uint64 {
	var x byte
	return mix(uint64(uintptr(unsafe.Pointer(&x))>>12), 0x9e3779b97f4a7c15)
}
