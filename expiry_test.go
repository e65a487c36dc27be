package memo_test

import (
	"math"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
)

// A huge TTL (a common way to say "practically forever") overflows
// now+ttl in store: the entry is born expired and never hits.
func TestHugeTTLOverflow(t *testing.T) {
	calls := 0
	f := memo.Decorate(func(x int) int { calls++; return x }, memo.WithTTL(time.Duration(math.MaxInt64)))
	f(1)
	f(1)
	assert.Equal(t, 1, calls, "the second call missed: expires overflowed")

	c := memo.MustNew(memo.WithMaxSize(4), memo.WithTTL(time.Duration(math.MaxInt64)))
	c.Set("k", 1)
	_, err := c.Get("k")
	assert.NoError(t, err)
	assert.Equal(t, 1, c.Len())
}
