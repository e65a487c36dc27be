package policies

// sketch is a count-min sketch of 4-bit counters with periodic halving, the
// frequency filter of TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A
// Highly Efficient Cache Admission Policy", ACM ToS 2017). Each key has four
// counters, one in each of four lanes of one 64-byte block, as in Caffeine's
// FrequencySketch, so that an update touches one cache line. An increment
// raises all four (saturating at 15); the estimate is their minimum, never
// below the key's true count since the last halving. After sampleSize
// increments every counter is halved, so that old popularity fades.
//
// The table starts small and grows with the cache's entries (grow), up to
// its full size, so that a cache that never fills does not pay for the
// sketch of a full one. A grown table repeats the old one in each of its
// parts: a key's block moves to one of the copies of its old block, so every
// estimate is what it was and stays at or above the true count.
// (Conservative update, raising only the minimal counters, estimated more
// tightly but lost 3 to 5 points on the loop traces of the matrix.)
type sketch struct {
	table      []uint64 // 16 counters of 4 bits per word, in blocks of 8 words
	blockMask  uint64   // number of blocks - 1
	additions  int      // increments since the last halving, halved with it
	sampleSize int
	maxWords   int // the full table's length
	perEntry   int // words per entry once the cache is full
}

// minSketchWords is the length of a new table (8 KiB): about 1024 entries
// worth, the full size for caches of up to 1024 entries, which never grow.
const minSketchWords = 1024

// newSketch sizes a sketch for capacity entries: when full, 16 counters
// per entry (32 for caches of up to tune.wideSketchMax entries, where
// collisions cost the most hits and the table is small), rounded up to a
// power of two (at least 8 words), halving every tune.sampleFactor ×
// capacity increments (Caffeine halves every 10 × capacity; twice as long
// a history scored better on the matrix). The table starts at
// minSketchWords or the full size, whichever is smaller (see grow).
func newSketch(capacity int) sketch {
	capacity = max(capacity, 1)
	per := 1
	if capacity <= tune.wideSketchMax {
		per = 2
	}
	words := 8
	for words < per*capacity {
		words *= 2
	}
	s := sketch{sampleSize: tune.sampleFactor * capacity, maxWords: words, perEntry: per}
	s.resize(min(words, minSketchWords))
	return s
}

func (s *sketch) resize(words int) {
	t := make([]uint64, words)
	for i := 0; i < words; i += len(s.table) {
		if len(s.table) == 0 {
			break
		}
		copy(t[i:], s.table)
	}
	s.table = t
	s.blockMask = uint64(words/8 - 1)
}

// grow doubles the table, up to its full size, until it has perEntry
// words per entry for entries entries. O(table) when it grows, which happens
// O(log capacity) times, each after as many insertions as the table had
// words: amortized O(1) per insertion.
func (s *sketch) grow(entries int) {
	entries *= s.perEntry
	if entries <= len(s.table) || len(s.table) >= s.maxWords {
		return
	}
	words := len(s.table)
	for words < entries && words < s.maxWords {
		words *= 2
	}
	s.resize(words)
}

// spread rehashes h (MurmurHash3's finalizer), so that the sketch does not
// depend on the bits the caller's hash table uses.
func spread(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// blockOf returns the 8-word block of the counters of the key whose rehash
// is r = spread(h) and the rehash: for lane i, word 2i or 2i+1 of the block
// and one of its 16 nibbles, from 5 bits each above bit 32. Callers that
// keep a key's rehash pass it rather than spreading the hash again.
func (s *sketch) blockOf(r uint64) (*[8]uint64, uint64) {
	b := (r & s.blockMask) << 3
	return (*[8]uint64)(s.table[b : b+8]), r
}

// estimate returns how often h was counted: at least its count since the
// last halving (halved with each halving), at most 15.
func (s *sketch) estimate(h uint64) int { return s.estimateOf(spread(h)) }

// estimateOf is estimate for the rehash r = spread(h).
func (s *sketch) estimateOf(r uint64) int {
	blk, h := s.blockOf(r)
	// The four lanes unrolled, as in incrementOf: for lane i, the counter
	// that bits 32+5i to 35+5i select in word 2i + bit 36+5i.
	return int(min(
		blk[0+h>>36&1]>>(h>>32&15<<2)&15,
		blk[2+h>>41&1]>>(h>>37&15<<2)&15,
		blk[4+h>>46&1]>>(h>>42&15<<2)&15,
		blk[6+h>>51&1]>>(h>>47&15<<2)&15))
}

// increment counts one occurrence of h, and halves every counter when it
// completes the sample.
func (s *sketch) increment(h uint64) { s.incrementOf(spread(h)) }

// incrementOf is increment for the rehash r = spread(h).
func (s *sketch) incrementOf(r uint64) {
	blk, h := s.blockOf(r)
	// The four lanes unrolled and branch-free (bump): whether a hot key's
	// counter is saturated is unpredictable, and a branch per lane
	// mispredicted on about one increment in three.
	added := bump(&blk[0+h>>36&1], h>>32) |
		bump(&blk[2+h>>41&1], h>>37) |
		bump(&blk[4+h>>46&1], h>>42) |
		bump(&blk[6+h>>51&1], h>>47)
	if added == 0 {
		return
	}
	s.additions++
	if s.additions >= s.sampleSize {
		s.halve()
	}
}

// bump raises the counter of w that the low 4 bits of b select, unless it
// is 15, and returns 1 if it raised it, else 0.
func bump(w *uint64, b uint64) uint64 {
	off := (b & 15) << 2
	var inc uint64
	if (*w>>off)&15 < 15 {
		inc = 1
	}
	*w += inc << off
	return inc
}

// halve divides every counter by two, rounding down.
func (s *sketch) halve() {
	for i, x := range s.table {
		s.table[i] = (x >> 1) & 0x7777777777777777
	}
	s.additions /= 2
}

// clear zeroes every counter.
func (s *sketch) clear() {
	clear(s.table)
	s.additions = 0
}
