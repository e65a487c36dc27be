package engine

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// probeKey is the encoded key of i for the probes below.
func probeKey(i int) []byte { return binary.LittleEndian.AppendUint64([]byte("rv"), uint64(i)) }

// TestQuietSpellHitsExactUnderFlush counts hits from two goroutines
// into a full W-TinyLFU cache that has entered a quiet spell (one hit in
// 32 recorded, the others counted with one atomic addition), while a third
// goroutine flushes and refills the cache: every lookup that found its
// entry must be in Hits (drained or pending), none twice, whatever
// the spell's state when each hit was made (a flush ends the spell, and
// the refill's hits start a new one).
func TestQuietSpellHitsExactUnderFlush(t *testing.T) {
	const size, perWorker, flushes = 64, 60000, 40
	var c Core
	c.Init(size, 0, policies.WTinyLFU, "", nil, nil)
	fill := func() {
		for i := range size {
			k := probeKey(i)
			c.Store(string(k), HashKey(k), i, 0, nil, nil)
		}
	}
	fill()
	// One goroutine alone enters the spell first.
	var found uint64
	for i := range quietHits {
		k := probeKey(i % size)
		if _, ok := c.Lookup(k, HashKey(k)); ok {
			found++
		}
	}
	c.Mu.Lock()
	require.GreaterOrEqual(t, c.quiet, int32(quietHits), "no quiet spell")
	c.Mu.Unlock()

	var wg sync.WaitGroup
	counts := make([]uint64, 2)
	stop := make(chan struct{})
	for g := range 2 {
		wg.Go(func() {
			for i := range perWorker {
				k := probeKey((i*7 + g) % size)
				if v, ok := c.Lookup(k, HashKey(k)); ok {
					if v != (i*7+g)%size {
						t.Errorf("key %d: got %v", (i*7+g)%size, v)
					}
					counts[g]++
				}
			}
		})
	}
	wg.Go(func() {
		for range flushes {
			select {
			case <-stop:
				return
			default:
			}
			c.Flush()
			fill()
		}
	})
	wg.Wait()
	close(stop)
	c.Mu.Lock()
	got := c.Hits.Load() + c.Reads.PendingHits()
	c.Mu.Unlock()
	assert.Equal(t, found+counts[0]+counts[1], got, "hits counted")
}

// TestQuietSpellResetStats: ResetStats racing with sampled hits
// leaves nothing of them behind: once it has returned and every hit made
// before it is done, the hits counted are exactly those made after.
func TestQuietSpellResetStats(t *testing.T) {
	const size = 64
	var c Core
	c.Init(size, 0, policies.WTinyLFU, "", nil, nil)
	for i := range size {
		k := probeKey(i)
		c.Store(string(k), HashKey(k), i, 0, nil, nil)
	}
	hit := func(n, off int) (found uint64) {
		for i := range n {
			k := probeKey((i + off) % size)
			if _, ok := c.Lookup(k, HashKey(k)); ok {
				found++
			}
		}
		return found
	}
	hit(quietHits, 0)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() { hit(40000, g) })
	}
	wg.Go(func() {
		for range 200 {
			c.Mu.Lock()
			c.ResetStats()
			c.Mu.Unlock()
		}
	})
	wg.Wait()
	c.Mu.Lock()
	c.ResetStats()
	c.Mu.Unlock()
	var after [2]uint64
	for g := range 2 {
		wg.Go(func() { after[g] = hit(30000, 3*g) })
	}
	wg.Wait()
	c.Mu.Lock()
	got := c.Hits.Load() + c.Reads.PendingHits()
	c.Mu.Unlock()
	assert.Equal(t, after[0]+after[1], got)
}
