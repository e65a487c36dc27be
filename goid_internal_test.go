package memo

import (
	"sync"
	"testing"

	"github.com/memokit/memo/internal/goid"
	"github.com/stretchr/testify/assert"
)

// curG is stable on one goroutine and differs between goroutines alive at
// the same time.
func TestCurG(t *testing.T) {
	t.Parallel()
	me := goid.Current()
	assert.NotZero(t, me)
	assert.Equal(t, me, goid.Current())
	const n = 16
	ids := make([]uintptr, n)
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	var done sync.WaitGroup
	for i := range ids {
		done.Go(func() {
			ids[i] = goid.Current()
			started.Done()
			release.Wait() // all alive at once
			assert.Equal(t, ids[i], goid.Current())
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
