package engine

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// TestQuietSpellSamples checks the quiet spell of a full W-TinyLFU cache
// (readBuffer.setSampling): after quietDrains full stripes of hits with no
// write between them, one hit in sampleRate is recorded for the policy,
// every hit still counts in the statistics, and the next store records
// every use again; an LRU cache served by one stripe never samples.
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
		for range quietDrains * StripeSize {
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
		c.drainReads()
		c.Mu.Unlock()
		assert.Equal(t, uint64(hits), c.Hits.Load(), "hits counted")
		k := key(1000)
		c.Store(string(k), HashKey(k), 1000, 0, nil, nil) // a write ends the spell
		assert.Zero(t, c.Reads.sampleMask.Load(), "sampling after a store")
	}
}
