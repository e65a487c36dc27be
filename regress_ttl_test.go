package memo

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A huge TTL (a common way to say "practically forever") overflows
// now+ttl in store: the entry is born expired and never hits.
func TestRegressionHugeTTLOverflow(t *testing.T) {
	calls := 0
	f := Decorate(func(x int) int { calls++; return x }, WithTTL(time.Duration(math.MaxInt64)))
	f(1)
	f(1)
	assert.Equal(t, 1, calls, "the second call missed: expires overflowed")

	c := MustNew(WithMaxSize(4), WithTTL(time.Duration(math.MaxInt64)))
	c.Set("k", 1)
	_, err := c.Get("k")
	assert.NoError(t, err)
	assert.Equal(t, 1, c.Len())
}
