package memo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMissAllocs guards the cost of a miss in a full cache, the steady
// state of a memoizer: a Func(int) int miss allocates the entry and the
// boxed result (an int above 255 in an any) and nothing else: no in-flight
// record (recycled when nobody joined it), no request or closure. Func2's
// miss has the same bound. Each run calls with a key never seen, so every
// run is a miss that stores and evicts.
func TestMissAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	const size = 1000
	fi := Func(func(x int) int { return x * 2 }, WithMaxSize(size))
	f2 := Func2(func(x, y int) int { return x + y }, WithMaxSize(size))
	fe := FuncErr(func(x int) (int, error) { return x * 2, nil }, WithMaxSize(size))
	fc := FuncCtx(func(_ context.Context, x int) (int, error) { return x * 2, nil }, WithMaxSize(size))
	next := 1 << 20
	for range 4 * size { // full, and past the policy's first decisions
		next++
		benchSink += fi(next) + f2(next, 1)
		r, _ := fe(next)
		benchSink += r
	}
	allocs := func(call func(k int)) float64 {
		return testing.AllocsPerRun(1000, func() {
			next++
			call(next)
		})
	}
	assert.LessOrEqual(t, allocs(func(k int) { benchSink += fi(k) }), 2.0, "a Func(int) int miss")
	assert.LessOrEqual(t, allocs(func(k int) { benchSink += f2(k, 1) }), 2.0, "a Func2(int, int) int miss")
	assert.LessOrEqual(t, allocs(func(k int) { r, _ := fe(k); benchSink += r }), 2.0, "a FuncErr(int) (int, error) miss")
	t.Logf("FuncCtx(Background) miss: %v allocations", allocs(func(k int) { r, _ := fc(context.Background(), k); benchSink += r }))
	st := CacheOf(fi).Stats()
	assert.Equal(t, uint64(size), uint64(CacheOf(fi).Len()))
	assert.Zero(t, st.Hits)
}
