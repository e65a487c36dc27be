package memo

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// readBuffer records cache hits for the policy without a cache-wide lock,
// as Caffeine's and otter's read buffers do. It starts with one stripe, so
// uses from one goroutine keep their order and a replay stays exact; when
// goroutines contend for a stripe it doubles its stripes, up to about four
// per processor, and hits spread over them by key hash. A full or contended
// stripe drops the use record (the hit still counts), which makes eviction
// order approximate only under contention.
type readBuffer struct {
	n         atomic.Uint32 // stripes in use, a power of two
	contended atomic.Bool
	stripes   [maxStripes]atomic.Pointer[readStripe]
}

const (
	maxStripes  = 64
	stripeSize  = 64
	cacheLine   = 64
	stripeBytes = 16 + 8 + 8 + stripeSize*8
)

type readStripe struct {
	mu   sync.Mutex
	n    int
	hits uint64 // hits counted here, moved to Cache.hits by drains
	buf  [stripeSize]*node
	_    [cacheLine - stripeBytes%cacheLine]byte
}

func (b *readBuffer) init() {
	b.stripes[0].Store(new(readStripe))
	b.n.Store(1)
}

// add records a use of n and counts a hit. It reports whether the stripe
// is full, so the caller should drain.
func (b *readBuffer) add(n *node, h uint64) bool {
	st := b.stripes[h&uint64(b.n.Load()-1)].Load()
	if !st.mu.TryLock() {
		b.contended.Store(true)
		st.mu.Lock()
	}
	st.hits++
	if st.n < stripeSize {
		st.buf[st.n] = n
		st.n++
	}
	full := st.n == stripeSize
	st.mu.Unlock()
	return full
}

// drain appends the recorded uses to dst in order, empties the stripes and
// returns the hits they counted. The caller holds Cache.mu. If stripes were
// contended, it adds more.
func (b *readBuffer) drain(dst []*node) ([]*node, uint64) {
	var hits uint64
	k := b.n.Load()
	for i := range k {
		st := b.stripes[i].Load()
		st.mu.Lock()
		dst = append(dst, st.buf[:st.n]...)
		clear(st.buf[:st.n])
		st.n = 0
		hits += st.hits
		st.hits = 0
		st.mu.Unlock()
	}
	if b.contended.Load() && k < maxStripes && int(k) < 4*runtime.GOMAXPROCS(0) {
		for i := k; i < 2*k; i++ {
			b.stripes[i].Store(new(readStripe))
		}
		b.n.Store(2 * k)
		b.contended.Store(false)
	}
	return dst, hits
}

// reset drops the recorded uses and hits.
func (b *readBuffer) reset() {
	for i := range b.n.Load() {
		st := b.stripes[i].Load()
		st.mu.Lock()
		clear(st.buf[:st.n])
		st.n, st.hits = 0, 0
		st.mu.Unlock()
	}
}

// takeHits zeroes the hits counted in the stripes.
func (b *readBuffer) takeHits() {
	for i := range b.n.Load() {
		st := b.stripes[i].Load()
		st.mu.Lock()
		st.hits = 0
		st.mu.Unlock()
	}
}

// pendingHits returns the hits counted in the stripes and not yet drained.
func (b *readBuffer) pendingHits() uint64 {
	var hits uint64
	for i := range b.n.Load() {
		st := b.stripes[i].Load()
		st.mu.Lock()
		hits += st.hits
		st.mu.Unlock()
	}
	return hits
}
