package memo

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuietSpellStatsExact counts, through Func's public
// statistics, the hits of a full W-TinyLFU cache that enters quiet spells
// (16,384 hits and more with no store between them: one hit in 32
// recorded for the policy) and leaves them (a miss stores), from one
// goroutine and then from two: Hits and Misses must be exact, every miss
// an execution.
func TestQuietSpellStatsExact(t *testing.T) {
	const size = 64
	f := Func(func(k int) int { return k * 2 }, WithMaxSize(size)) // 52 keys in all: no eviction
	calls := 0
	for round := range 4 {
		for i := range 20000 + round*777 {
			k := i % (size / 2) // always cached once stored
			require.Equal(t, 2*k, f(k))
			calls++
		}
		require.Equal(t, 2*(1000+round), f(1000+round)) // a miss: a store
		calls++
	}
	st := CacheOf(f).Stats()
	assert.Equal(t, uint64(calls), st.Hits+st.Misses)
	assert.Equal(t, uint64(size/2+4), st.Misses)
	assert.Equal(t, st.Misses, st.Led)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 40000 {
				k := (i*3 + g) % (size / 2)
				if f(k) != 2*k {
					t.Errorf("f(%d)", k)
				}
				if i%5000 == 4999 {
					f(2000 + g*100 + i/5000) // a store now and then
				}
			}
		})
	}
	wg.Wait()
	st = CacheOf(f).Stats()
	calls += 2 * (40000 + 8)
	assert.Equal(t, uint64(calls), st.Hits+st.Misses)
	assert.Equal(t, st.Misses, st.Led)
	assert.Zero(t, st.Pending())
}
