package memo

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of methods and pointer receivers: per-instance caching, receivers
// not kept alive by the cache, and no wrong hit when an address is reused.

type mtService struct {
	prefix string
	calls  *atomic.Int32
}

// Get's result names its receiver, so a result computed for another
// instance shows.
func (s *mtService) Get(k string) string {
	s.calls.Add(1)
	return fmt.Sprintf("%s/%s/%p", s.prefix, k, s)
}

func (s mtService) Describe(k string) string {
	s.calls.Add(1)
	return s.prefix + ":" + k
}

func TestMethodExpressionCachesPerInstance(t *testing.T) {
	t.Parallel()
	calls := new(atomic.Int32)
	a := &mtService{"p", calls}
	b := &mtService{"p", calls}
	require.Equal(t, *a, *b, "equal fields")

	get := Decorate((*mtService).Get)
	ra, rb := get(a, "k"), get(b, "k")
	assert.Equal(t, fmt.Sprintf("p/k/%p", a), ra)
	assert.Equal(t, fmt.Sprintf("p/k/%p", b), rb)
	assert.EqualValues(t, 2, calls.Load(), "one execution per instance")
	for range 3 {
		assert.Equal(t, ra, get(a, "k"))
		assert.Equal(t, rb, get(b, "k"))
	}
	assert.EqualValues(t, 2, calls.Load())
	assert.Equal(t, 2, CacheOf(get).Len())

	assert.True(t, Invalidate(get, a, "k"))
	assert.Equal(t, 1, CacheOf(get).Len(), "b's entry stays")
	assert.Equal(t, rb, get(b, "k"))
	assert.EqualValues(t, 2, calls.Load())

	// A value receiver is a value: equal receivers share an entry.
	describe := Decorate(mtService.Describe)
	assert.Equal(t, "p:k", describe(*a, "k"))
	assert.Equal(t, "p:k", describe(*b, "k"))
	assert.EqualValues(t, 3, calls.Load())
}

func TestMethodValueIsOneCachePerInstance(t *testing.T) {
	t.Parallel()
	calls := new(atomic.Int32)
	a := &mtService{"p", calls}
	b := &mtService{"p", calls}

	ga := Decorate(a.Get)
	gb := Decorate(b.Get)
	var viaInterface interface{ Get(string) string } = a
	gi := Decorate(viaInterface.Get)
	require.NotNil(t, CacheOf(ga))
	assert.NotSame(t, CacheOf(ga), CacheOf(gb))
	assert.NotSame(t, CacheOf(ga), CacheOf(gi))

	for range 3 {
		assert.Equal(t, fmt.Sprintf("p/k/%p", a), ga("k"))
		assert.Equal(t, fmt.Sprintf("p/k/%p", b), gb("k"))
		assert.Equal(t, fmt.Sprintf("p/k/%p", a), gi("k"))
	}
	assert.EqualValues(t, 3, calls.Load())
	assert.Equal(t, fmt.Sprintf("p/x/%p", a), ga("x"))
	assert.Equal(t, 2, CacheOf(ga).Len())
	assert.True(t, Invalidate(ga, "x"))
}

func TestMethodReceiverNotRetained(t *testing.T) {
	// Not parallel: it collects garbage until a cleanup runs.
	get := Decorate((*mtService).Get)
	c := CacheOf(get)
	var collected atomic.Bool
	func() {
		s := &mtService{prefix: "tmp", calls: new(atomic.Int32)}
		runtime.AddCleanup(s, func(b *atomic.Bool) { b.Store(true) }, &collected)
		get(s, "k")
		get(s, "k")
		require.EqualValues(t, 1, s.calls.Load())
	}()
	require.Equal(t, 1, c.Len())
	assert.True(t, dtGCUntil(func() bool { return collected.Load() && c.Len() == 0 }),
		"receiver collected: %v, entries: %d", collected.Load(), c.Len())
	runtime.KeepAlive(get)
}

// A method value holds its receiver, and the decorated function holds the
// method value; once the decorated function is dropped, both go.
func TestMethodValueReceiverCollectedWithFunction(t *testing.T) {
	// Not parallel: it collects garbage until a cleanup runs.
	var collected atomic.Bool
	func() {
		s := &mtService{prefix: "tmp", calls: new(atomic.Int32)}
		runtime.AddCleanup(s, func(b *atomic.Bool) { b.Store(true) }, &collected)
		g := Decorate(s.Get)
		g("k")
		g("k")
		require.EqualValues(t, 1, s.calls.Load())
	}()
	assert.True(t, dtGCUntil(collected.Load), "receiver of a dropped method value not collected")
}

type mtSmall struct{ v int } // no pointers, 8 bytes: the tiny allocator

type mtBig struct {
	v    int
	next *mtBig // a pointer: an object of its own
}

func (p *mtBig) V() int { return p.v }

// TestMethodAddressReuseNoWrongResult allocates many short-lived objects, so that
// new ones land at the addresses of collected ones, and checks that every
// call returns the result for its own object: an entry keyed by a dead
// object's address must never be hit by a new object there.
func TestMethodAddressReuseNoWrongResult(t *testing.T) {
	// Not parallel: it collects garbage in a loop.
	const n, batch = 20000, 500
	small := Decorate(func(p *mtSmall) int { return p.v })
	big := Decorate((*mtBig).V)
	cases := []struct {
		name string
		c    *Cache
		// alloc makes an object holding v and returns a call of the
		// decorated function with it, and its address.
		alloc func(v int) (call func() int, addr uintptr)
	}{
		{"tiny objects", CacheOf(small), func(v int) (func() int, uintptr) {
			p := &mtSmall{v: v}
			return func() int { return small(p) }, uintptr(unsafe.Pointer(p))
		}},
		{"method expression", CacheOf(big), func(v int) (func() int, uintptr) {
			p := &mtBig{v: v}
			return func() int { return big(p) }, uintptr(unsafe.Pointer(p))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wrong, reused := 0, 0
			seen := make(map[uintptr]bool, n)
			for i := range n {
				call, addr := tc.alloc(i)
				if seen[addr] {
					reused++
				}
				seen[addr] = true
				for range 2 { // a miss, then a hit
					if got := call(); got != i {
						wrong++
						if wrong <= 5 {
							t.Errorf("object %d at %#x: got the result %d", i, addr, got)
						}
					}
				}
				if i%batch == batch-1 {
					runtime.GC()
				}
			}
			assert.Zero(t, wrong, "wrong results")
			t.Logf("%d of %d objects at a reused address", reused, n)
			assert.Positive(t, reused, "the test needs address reuse to prove anything")
			st := tc.c.Stats()
			assert.EqualValues(t, n, st.Hits, "each object's second call hits")
			assert.EqualValues(t, n, st.TotalCalls)
		})
	}
	// Entries keyed by collected objects are dropped.
	assert.True(t, dtGCUntil(func() bool { return CacheOf(big).Len() == 0 }), "entries left: %d", CacheOf(big).Len())
}
