package memo

import (
	"testing"
	"unsafe"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWTinyLFURecordsHitsFromHalfFull checks that a W-TinyLFU cache passes
// hits to its policy only once it has been half full (as Caffeine and
// otter start their sketch), that the hits before still count in Stats,
// and that LRU records from the first hit.
func TestWTinyLFURecordsHitsFromHalfFull(t *testing.T) {
	c, err := New(WithMaxSize(100), WithPolicy(policies.WTinyLFU))
	require.NoError(t, err)
	for k := range 49 {
		c.Set(k, k)
	}
	for range 3 {
		for k := range 49 {
			_, err := c.Get(k)
			require.NoError(t, err)
		}
	}
	assert.False(t, c.e.Reads.Recording(), "not recording below half full")
	assert.Zero(t, c.e.Reads.First.Load().N, "no use recorded")
	c.Set(49, 49)
	assert.True(t, c.e.Reads.Recording(), "recording from half full")
	_, err = c.Get(1)
	require.NoError(t, err)
	assert.Equal(t, 1, c.e.Reads.First.Load().N, "the use is recorded")
	assert.Equal(t, uint64(3*49+1), c.Stats().Hits, "every hit counts")
	c.Clear()
	assert.False(t, c.e.Reads.Recording(), "cleared, it starts over as a new cache")

	lru, err := New(WithMaxSize(100), WithPolicy(policies.LRU))
	require.NoError(t, err)
	lru.Set(1, 1)
	_, err = lru.Get(1)
	require.NoError(t, err)
	assert.Equal(t, 1, lru.e.Reads.First.Load().N, "LRU records from the first hit")
}

// TestFlushKeepsUndrainedHits checks that flush (a tier's remote Clear,
// which keeps the statistics) keeps the hits still counted in the read
// stripes: a W-TinyLFU cache below half full never drains them on hits.
func TestFlushKeepsUndrainedHits(t *testing.T) {
	for _, k := range []policies.Kind{policies.WTinyLFU, policies.LRU, policies.LFU} {
		c := MustNew(WithMaxSize(1000), WithPolicy(k))
		c.Set(1, 1)
		for range 1000 {
			_, err := c.Get(1)
			require.NoError(t, err)
		}
		c.e.Flush()
		assert.Equal(t, uint64(1000), c.Stats().Hits, "%v", k)
		assert.Zero(t, c.Len())
	}
}

func TestReadStripeFillsCacheLines(t *testing.T) {
	assert.Zero(t, unsafe.Sizeof(engine.ReadStripe{})%engine.CacheLine, "stripes must not share cache lines")
}
