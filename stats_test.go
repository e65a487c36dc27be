package memo_test

import (
	"sync"
	"testing"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
)

// TestStatsExactUnderContention: every Get is exactly one hit or one
// miss, even while stripes grow and drains run.
func TestStatsExactUnderContention(t *testing.T) {
	c := memo.MustNew(memo.WithMaxSize(64))
	for i := range 32 {
		c.Set(i, i)
	}
	const G, N = 16, 20000
	var wg sync.WaitGroup
	for g := range G {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range N {
				c.Get((i + g) % 48) // 2/3 hits
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	assert.Equal(t, uint64(G*N), st.Hits+st.Misses)
	var hits uint64
	for g := range G {
		for i := range N {
			if (i+g)%48 < 32 {
				hits++
			}
		}
	}
	assert.Equal(t, hits, st.Hits)
}
