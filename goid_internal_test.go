package memo

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// curG is stable on one goroutine and differs between goroutines alive at
// the same time.
func TestCurG(t *testing.T) {
	t.Parallel()
	me := curG()
	assert.NotZero(t, me)
	assert.Equal(t, me, curG())
	const n = 16
	ids := make([]uintptr, n)
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for i := range ids {
		done.Go(func() {
			ids[i] = curG()
			started.Done()
			release.Wait() // all alive at once
			assert.Equal(t, ids[i], curG())
		})
	}
	started.Wait()
	release.Done()
	done.Wait()
	seen := map[uintptr]bool{me: true}
	for _, id := range ids {
		assert.False(t, seen[id], "two live goroutines share %#x", id)
		seen[id] = true
	}
}
