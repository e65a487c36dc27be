package memo

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Regression tests for issue 8, item 2: memory that must be freed. Each
// measures the heap after collection against a bound far below what the
// leak kept. They do not run in parallel, so that no other test's garbage
// is measured.

const lkMiB = 1 << 20

// lkHeap returns the bytes of live heap objects after a full collection.
func lkHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// lkGrowth returns how much the live heap grew from before to after run.
func lkGrowth(run func()) int64 {
	before := lkHeap()
	run()
	after := lkHeap()
	return int64(after) - int64(before)
}

type lkService struct {
	payload []byte
	get     func(int) int
}

func (s *lkService) load(k int) int { return k + len(s.payload) }

// A decorated method value stored in its own receiver reaches itself: the
// registry must not keep it alive. 20 dropped services of 8 MiB leaked
// 160 MiB.
func TestLeakSelfReachingDecorate(t *testing.T) {
	grown := lkGrowth(func() {
		for range 20 {
			s := &lkService{payload: make([]byte, 8*lkMiB)}
			s.get = Decorate(s.load)
			require.Equal(t, 8*lkMiB+1, s.get(1))
			require.NotNil(t, CacheOf(s.get))
		}
	})
	assert.Less(t, grown, int64(16*lkMiB), "dropped self-reaching decorated functions must be freed")
}

// The same with each typed path.
func TestLeakSelfReachingTyped(t *testing.T) {
	type svc struct {
		payload []byte
		f1      func(int) int
		f2      func(int, int) (int, error)
		f3      func(context.Context, int) (int, error)
	}
	grown := lkGrowth(func() {
		for range 20 {
			s := &svc{payload: make([]byte, 8*lkMiB)}
			s.f1 = Func(func(k int) int { return k + len(s.payload) })
			s.f2 = Func2Err(func(a, b int) (int, error) { return a + b + len(s.payload), nil })
			s.f3 = FuncCtx(func(_ context.Context, a int) (int, error) { return a + len(s.payload), nil })
			v3, err := s.f3(context.Background(), 2)
			require.NoError(t, err)
			require.Equal(t, 8*lkMiB+2, v3)
			require.Equal(t, 8*lkMiB+1, s.f1(1))
			v, err := s.f2(1, 2)
			require.NoError(t, err)
			require.Equal(t, 8*lkMiB+3, v)
		}
	})
	assert.Less(t, grown, int64(16*lkMiB))
}

// A recursive helper made per call refers to itself through its variable.
// Each helper's registry entry goes with it: the registry records the
// closure's address, which the test keeps as a number only.
func TestLeakRecursiveHelper(t *testing.T) {
	var addrs []uintptr
	fib := func(payload []byte) int {
		var f func(int) int
		f = Func(func(n int) int {
			if n < 2 {
				return n + len(payload)*0
			}
			return f(n-1) + f(n-2)
		})
		addrs = append(addrs, uintptr(closureOf(f)))
		return f(40)
	}
	fibDecorate := func(payload []byte) int {
		var f func(int) int
		f = Decorate(func(n int) int {
			if n < 2 {
				return n + len(payload)*0
			}
			return f(n-1) + f(n-2)
		})
		addrs = append(addrs, uintptr(closureOf(f)))
		return f(40)
	}
	grown := lkGrowth(func() {
		for range 10 {
			require.Equal(t, 102334155, fib(make([]byte, 8*lkMiB)))
			require.Equal(t, 102334155, fibDecorate(make([]byte, 8*lkMiB)))
		}
	})
	assert.Less(t, grown, int64(16*lkMiB), "dropped recursive helpers must be freed")
	// The registry forgets them too: the cleanup on each closure removes
	// its entry (a closure allocated at the same address since would be
	// registered with a weak pointer of its own, and is not one of them).
	require.Len(t, addrs, 20)
	forgotten := func() bool {
		for _, a := range addrs {
			if reg, ok := registry.load(a); ok && reg.w.Value() == nil {
				return false // still there, for a function that is gone
			}
		}
		return true
	}
	assert.True(t, dtGCUntil(forgotten), "the registry keeps entries of collected functions")
}

// A copy of a decorated function keeps it, and its registry entry, alive.
func TestRegistryCopyKeepsFunction(t *testing.T) {
	var calls int
	f := Decorate(func(k int) int { calls++; return k })
	var held any = f
	f = nil
	runtime.GC()
	runtime.GC()
	g := held.(func(int) int)
	require.NotNil(t, CacheOf(g))
	assert.Equal(t, 1, g(1))
	assert.Equal(t, 1, g(1))
	assert.Equal(t, 1, calls)
	assert.True(t, Invalidate(g, 1))
	ClearAll()
}

// A dropped function with a TTL must not keep its cache until its last
// entry expires: 25 functions with 4 MiB results and a one-hour TTL kept
// 100 MiB.
func TestLeakTTLTimer(t *testing.T) {
	grown := lkGrowth(func() {
		for i := range 25 {
			f := Func(func(k int) []byte { return make([]byte, 4*lkMiB) }, WithTTL(time.Hour), WithMaxSize(10))
			require.Len(t, f(i), 4*lkMiB)
		}
	})
	assert.Less(t, grown, int64(12*lkMiB), "a pending expiry timer must not keep a dropped cache")
}

// The timer still expires entries of a live cache, with no caller. In a
// synctest bubble, so that the TTL passes on the bubble's clock rather
// than by polling the wall clock.
func TestTTLTimerStillExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := MustNew(WithMaxSize(10), WithTTL(time.Millisecond))
		c.Set(1, 1)
		c.Set(2, 2)
		size := func() int {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.size()
		}
		require.Equal(t, 2, size())
		time.Sleep(time.Millisecond - time.Nanosecond)
		synctest.Wait()
		assert.Equal(t, 2, size(), "not expired before the TTL")
		time.Sleep(time.Nanosecond)
		synctest.Wait() // the timer has fired and removed them
		assert.Equal(t, 0, size(), "the timer expires entries with no caller")
		assert.Equal(t, uint64(2), c.rec.Snapshot().Expirations)
		runtime.KeepAlive(c)
	})
}

type lkBig struct{ b [lkMiB]byte }

// A pooled key state must not keep objects of earlier keys alive: with one
// processor, a 1 MiB object used once as a []*lkBig argument stayed alive
// (and its entry stayed) while other decorated functions were called.
func TestLeakPooledKeyState(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f := Decorate(func(xs []*lkBig) int { return len(xs) + int(xs[0].b[0]) })
	g := Decorate(func(k int) int { return k }, WithMaxSize(1))
	collected := make(chan struct{})
	func() {
		big := new(lkBig)
		runtime.AddCleanup(big, func(ch chan struct{}) { close(ch) }, collected)
		require.Equal(t, 1, f([]*lkBig{big}))
	}()
	ok := dtGCUntil(func() bool {
		for i := range 10 {
			g(i) // a miss: takes and returns a pooled state
		}
		select {
		case <-collected:
			return CacheOf(f).Len() == 0
		default:
			return false
		}
	})
	assert.True(t, ok, "the argument's object (or its entry) outlived its only call; Len=%d", CacheOf(f).Len())
}

// putState drops every pointer the state held, beyond its lengths too.
func TestPutStateClearsPointers(t *testing.T) {
	s := getState()
	x := new(int)
	s.path = append(s.path, visit{p: unsafe.Pointer(x)}, visit{p: unsafe.Pointer(x)})
	s.leave()
	s.leave()
	putState(s)
	for _, v := range s.path[:cap(s.path)] {
		assert.Nil(t, v.p)
		assert.Nil(t, v.t)
	}
	for _, p := range s.refs[:cap(s.refs)] {
		assert.Nil(t, p)
	}
}

// A decorated function costs at most 1 KiB before its first call (it cost
// 7.6 KiB), and what it makes on use is made by its first call.
func TestFootprintBeforeFirstCall(t *testing.T) {
	const n = 2000
	perFunc := func(mk func(i int) any) int64 {
		keep := make([]any, n)
		grown := lkGrowth(func() {
			for i := range keep {
				keep[i] = mk(i)
			}
		})
		runtime.KeepAlive(keep)
		return grown / n
	}
	dec := perFunc(func(i int) any {
		return Decorate(func(x int, s string) int { return x + i }, WithMaxSize(10))
	})
	typed := perFunc(func(i int) any {
		return Func(func(x int) int { return x + i }, WithMaxSize(10))
	})
	cache := perFunc(func(i int) any { return MustNew(WithMaxSize(10)) })
	t.Logf("bytes per function before its first call: Decorate %d, Func %d; per unused Cache %d", dec, typed, cache)
	assert.LessOrEqual(t, dec, int64(1024))
	assert.LessOrEqual(t, typed, int64(1024))
	assert.LessOrEqual(t, cache, int64(512))
}

// Entries keyed by a collected object are dropped for objects of 16 bytes
// or more, or holding pointers. Smaller pointer-free objects share a block
// of the runtime's tiny allocator with other small values (the cache's
// own among them) and may never be collected: the README states the
// limit; this tests its boundary.
func TestTinyObjectBoundary(t *testing.T) {
	type ptrful struct{ p *int }
	const n = 2000
	f16 := Decorate(func(p *[2]int64) int { return int(p[0]) }, WithMaxSize(2*n))
	fp := Func(func(p *ptrful) int {
		if p.p == nil {
			return 1
		}
		return 2
	}, WithMaxSize(2*n))
	func() {
		for i := range n {
			require.Equal(t, i, f16(&[2]int64{int64(i), 0}))
			require.Equal(t, 1, fp(&ptrful{}))
		}
	}()
	ok := dtGCUntil(func() bool { return CacheOf(f16).Len() == 0 && CacheOf(fp).Len() == 0 })
	assert.True(t, ok, "entries left: 16-byte %d, pointerful %d", CacheOf(f16).Len(), CacheOf(fp).Len())
}
