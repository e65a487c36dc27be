package memo_test

import (
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
)

// TestShortTTLRunsOnce is the failure the check prevents: WithTTL(60)
// meant as a minute made every call a miss. With the unit, calls hit.
func TestShortTTLRunsOnce(t *testing.T) {
	t.Parallel()
	execs := 0
	f := memo.Func(func(k int) int { execs++; return k }, memo.WithTTL(60*time.Second))
	for i := range 1000 {
		f(i % 10)
	}
	assert.Equal(t, 10, execs)
}
