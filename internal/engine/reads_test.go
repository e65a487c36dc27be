package engine

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// TestQuietSpellSamples checks the quiet spell of a full W-TinyLFU cache
// (readBuffer.setSampling): after quietHits hits with no
// write between them, one hit in sampleRate is recorded for the policy and
// every hit still counts in the statistics; writes end the spell once they
// have used up its margin; a store every quietWrite/2 hits never starts
// one, and a store every 4*quietWrite hits does; an LRU cache served by one
// stripe never samples.
func TestQuietSpellSamples(t *testing.T) {
	for _, kind := range []policies.Kind{policies.WTinyLFU, policies.LRU} {
		var c Core
		c.Init(64, 0, kind, "", nil, nil)
		key := func(i int) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(i)) }
		for i := range 64 {
			k := key(i)
			require.True(t, c.Store(string(k), HashKey(k), i, 0, nil, nil))
		}
		hit := func(i int) {
			k := key(i)
			v, ok := c.Lookup(k, HashKey(k))
			require.True(t, ok)
			require.Equal(t, i, v)
		}
		hits := 0
		for range quietHits {
			hit(hits % 64)
			hits++
		}
		if kind == policies.LRU {
			assert.Zero(t, c.Reads.sampleMask.Load(), "LRU with one stripe samples")
			continue
		}
		assert.Equal(t, uint64(sampleRate-1), c.Reads.sampleMask.Load(), "no quiet spell after %d hits", hits)
		// While sampling, a stripe fills only after sampleRate times as many hits.
		recorded := c.Reads.First.Load().N
		for range sampleRate {
			hit(hits % 64)
			hits++
		}
		assert.Equal(t, recorded+1, c.Reads.First.Load().N, "uses recorded in %d sampled hits", sampleRate)
		c.Mu.Lock()
		c.drainFull()
		c.Mu.Unlock()
		assert.Equal(t, uint64(hits), c.Hits.Load(), "hits counted")
		store := func(i int) {
			k := key(i)
			c.Store(string(k), HashKey(k), i, 0, nil, nil)
		}
		for range quietHits { // to the bucket's cap
			hit(hits % 64)
			hits++
		}
		store(1000) // one write does not end a spell with hits to spare...
		assert.Equal(t, uint64(sampleRate-1), c.Reads.sampleMask.Load(), "one store ended the spell")
		for i := range quietHits / quietWrite { // ...but writes with few hits between them do
			store(1001 + i)
		}
		assert.Zero(t, c.Reads.sampleMask.Load(), "sampling after %d stores", 1+quietHits/quietWrite)
		// Misses every 512 hits never start a spell; every 4,096 hits
		// they do, as a cache that rarely stores does.
		for _, every := range []int{quietWrite / 2, 4 * quietWrite} {
			for round := range 16 * quietHits / every {
				for range every {
					k := key(hits % 64)
					c.Lookup(k, HashKey(k))
					hits++
				}
				store(2000 + round%2)
			}
			assert.Equal(t, every > quietWrite, c.Reads.sampleMask.Load() != 0, "a store every %d hits", every)
		}
	}
}
