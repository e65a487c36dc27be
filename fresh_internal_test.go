package memo

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// body is the function every shape below memoizes: int key, int result,
// an error and a context where the shape has them.
type body = func(ctx context.Context, k int) (int, error)

// shape memoizes a body through one of memo's constructors and returns a
// way to call it and the memoized function (for Invalidate and CacheOf).
type shape struct {
	name string
	errs bool // the shape has an error result
	make func(b body, opts ...Option) (call func(int) (int, error), fn any)
}

var shapes = []shape{
	{"Decorate", true, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := Decorate(func(k int) (int, error) { return b(context.Background(), k) }, opts...)
		return f, f
	}},
	{"DecorateCtx", true, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := Decorate(b, opts...)
		return func(k int) (int, error) { return f(context.Background(), k) }, f
	}},
	{"Func", false, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := Func(func(k int) int {
			v, err := b(context.Background(), k)
			if err != nil {
				panic(err)
			}
			return v
		}, opts...)
		return func(k int) (int, error) { return f(k), nil }, f
	}},
	{"FuncErr", true, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := FuncErr(func(k int) (int, error) { return b(context.Background(), k) }, opts...)
		return f, f
	}},
	{"FuncCtx", true, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := FuncCtx(b, opts...)
		return func(k int) (int, error) { return f(context.Background(), k) }, f
	}},
	{"Func2Err", true, func(b body, opts ...Option) (func(int) (int, error), any) {
		f := Func2Err(func(k int, s string) (int, error) { return b(context.Background(), k) }, opts...)
		return func(k int) (int, error) { return f(k, "x") }, f
	}},
}

// invalidate drops the entry of key k for a function made by a shape.
func invalidate(fn any, k int) bool {
	if f, ok := fn.(func(int, string) (int, error)); ok {
		return Invalidate(f, k, "x")
	}
	return Invalidate(fn, k)
}

var errBoom = errors.New("boom")

// 100 concurrent hits on an entry older than the refresh interval start
// exactly one refresh, get the stored result at once (the refresh is
// blocked until they are all done), and the refresh's result replaces it.
func TestRefreshOneForManyHits(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				release := make(chan struct{})
				f, fn := sh.make(func(_ context.Context, k int) (int, error) {
					n := calls.Add(1)
					if n > 1 {
						<-release
					}
					return k*100 + int(n), nil
				}, WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
				v, err := f(1)
				require.NoError(t, err)
				require.Equal(t, 101, v)

				time.Sleep(5 * time.Second)
				v, _ = f(1) // before the interval: a plain hit
				assert.Equal(t, 101, v)
				assert.Equal(t, uint64(0), CacheOf(fn).Stats().RefreshesStarted)

				time.Sleep(6 * time.Second)
				var wg sync.WaitGroup
				got := make([]int, 100)
				for i := range got {
					wg.Go(func() { got[i], _ = f(1) })
				}
				wg.Wait()       // would deadlock the bubble if a caller waited for the refresh
				synctest.Wait() // the refresh has started and is blocked
				for i, v := range got {
					require.Equal(t, 101, v, "caller %d", i)
				}
				st := CacheOf(fn).Stats()
				assert.Equal(t, int32(2), calls.Load(), "one refresh")
				assert.Equal(t, uint64(1), st.RefreshesStarted)
				assert.Equal(t, uint64(101), st.Hits)
				assert.Equal(t, uint64(1), st.Misses)

				close(release)
				synctest.Wait()
				v, _ = f(1)
				assert.Equal(t, 102, v, "the refresh replaced the entry")
				st = CacheOf(fn).Stats()
				assert.Equal(t, uint64(1), st.RefreshesSucceeded)
				assert.Equal(t, uint64(0), st.RefreshesFailed)
				assert.Equal(t, uint64(2), st.TotalCalls)
				assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced, "the README's invariant")

				// The new entry has a TTL and a refresh interval of its own.
				time.Sleep(59 * time.Second)
				v, _ = f(1)
				assert.Equal(t, 102, v)
				synctest.Wait()
				v, _ = f(1)
				assert.Equal(t, 103, v, "refreshed again, 10s after its own store")
			})
		})
	}
}

// A refresh that fails, by an error or a panic, keeps the old entry: it is
// served until its TTL, a later hit tries again, and past the TTL the key
// misses.
func TestRefreshFailureKeepsOld(t *testing.T) {
	for _, sh := range shapes {
		for _, how := range []string{"error", "panic"} {
			if how == "error" && !sh.errs {
				continue
			}
			t.Run(sh.name+"/"+how, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls atomic.Int32
					fail := true
					opts := []Option{WithTTL(time.Minute), WithRefreshAfter(10 * time.Second)}
					if sh.errs { // a failed refresh is not stored, even with WithErrorTTL
						opts = append(opts, WithErrorTTL(time.Hour))
					}
					f, fn := sh.make(func(_ context.Context, k int) (int, error) {
						n := calls.Add(1)
						if n > 1 && fail {
							if how == "panic" {
								panic("refresh panicked")
							}
							return 0, errBoom
						}
						return int(n), nil
					}, opts...)
					v, _ := f(1)
					require.Equal(t, 1, v)
					time.Sleep(20 * time.Second)
					v, err := f(1)
					require.NoError(t, err)
					assert.Equal(t, 1, v)
					synctest.Wait()
					st := CacheOf(fn).Stats()
					assert.Equal(t, uint64(1), st.RefreshesStarted)
					assert.Equal(t, uint64(1), st.RefreshesFailed)
					assert.Equal(t, uint64(1), st.Failures)

					v, err = f(1) // the old entry, and another try
					require.NoError(t, err)
					assert.Equal(t, 1, v)
					synctest.Wait()
					assert.Equal(t, int32(3), calls.Load())
					assert.Equal(t, uint64(2), CacheOf(fn).Stats().RefreshesFailed)

					time.Sleep(40 * time.Second) // past the first entry's TTL
					fail = false
					v, err = f(1)
					require.NoError(t, err)
					assert.Equal(t, 4, v, "past its TTL the old entry is gone")
				})
			})
		}
	}
}

// An Invalidate during a refresh makes the refresh not store: the next call
// runs the function again.
func TestRefreshInvalidatedDoesNotStore(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				release := make(chan struct{})
				f, fn := sh.make(func(_ context.Context, k int) (int, error) {
					n := calls.Add(1)
					if n == 2 {
						<-release
					}
					return int(n), nil
				}, WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
				f(1)
				time.Sleep(11 * time.Second)
				v, _ := f(1)
				require.Equal(t, 1, v)
				synctest.Wait() // the refresh is running, blocked
				require.Equal(t, int32(2), calls.Load())
				assert.True(t, invalidate(fn, 1))
				close(release)
				synctest.Wait()
				v, _ = f(1)
				assert.Equal(t, 3, v, "the refresh stored after Invalidate")
				assert.Equal(t, 1, CacheOf(fn).Len())
			})
		})
	}
}

// Stale-if-error: within the window every caller of a failing execution
// gets the stale result; past the window they get the error; a successful
// execution replaces the entry and nobody gets the stale one.
func TestStaleIfError(t *testing.T) {
	for _, sh := range shapes {
		for _, how := range []string{"error", "panic"} {
			if how == "error" && !sh.errs {
				continue
			}
			t.Run(sh.name+"/"+how, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls atomic.Int32
					var fail atomic.Bool
					gate := make(chan struct{})
					f, fn := sh.make(func(_ context.Context, k int) (int, error) {
						n := calls.Add(1)
						<-gate
						if fail.Load() {
							if how == "panic" {
								panic(errBoom)
							}
							return 0, errBoom
						}
						return int(n), nil
					}, WithTTL(time.Minute), WithStaleIfError(5*time.Minute))
					close(gate)
					v, _ := f(1)
					require.Equal(t, 1, v)

					// Within the window: 10 callers share one failing execution.
					time.Sleep(2 * time.Minute)
					fail.Store(true)
					gate = make(chan struct{})
					var wg sync.WaitGroup
					type res struct {
						v   int
						err error
						p   any
					}
					out := make([]res, 10)
					for i := range out {
						wg.Go(func() {
							defer func() { out[i].p = recover() }()
							out[i].v, out[i].err = f(1)
						})
					}
					synctest.Wait()
					close(gate)
					wg.Wait()
					for i, r := range out {
						assert.Equal(t, res{1, nil, nil}, r, "caller %d", i)
					}
					st := CacheOf(fn).Stats()
					assert.Equal(t, int32(2), calls.Load())
					assert.Equal(t, uint64(10), st.StaleServed)
					assert.Equal(t, uint64(1), st.Failures)

					// Past the window: the error (or the panic).
					time.Sleep(4 * time.Minute)
					var r res
					func() {
						defer func() { r.p = recover() }()
						r.v, r.err = f(1)
					}()
					if how == "panic" {
						assert.Equal(t, errBoom, r.p)
					} else {
						assert.Equal(t, res{0, errBoom, nil}, r)
					}
					assert.Equal(t, uint64(10), CacheOf(fn).Stats().StaleServed)

					// A success replaces the entry; within a new window a
					// success is never stale.
					fail.Store(false)
					v, err := f(1)
					require.NoError(t, err)
					assert.Equal(t, 4, v)
					time.Sleep(90 * time.Second)
					v, err = f(1)
					require.NoError(t, err)
					assert.Equal(t, 5, v)
					assert.Equal(t, uint64(10), CacheOf(fn).Stats().StaleServed)
				})
			})
		}
	}
}

// Results that the predicate or the TTL function rejects are returned to
// every caller of their execution and not stored.
func TestCacheIfAndTTLFuncReject(t *testing.T) {
	opts := map[string]Option{
		"CacheIf": WithCacheIf(func(r []any) bool { return r[0].(int)%2 == 0 }),
		"TTLFunc": WithTTLFunc(func(r []any) time.Duration {
			if r[0].(int)%2 == 0 {
				return time.Minute
			}
			return 0
		}),
	}
	for oname, opt := range opts {
		for _, sh := range shapes {
			t.Run(oname+"/"+sh.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls atomic.Int32
					gate := make(chan struct{})
					f, fn := sh.make(func(_ context.Context, k int) (int, error) {
						calls.Add(1)
						<-gate
						return k, nil
					}, opt)
					var wg sync.WaitGroup
					out := make([]int, 8)
					for i := range out {
						wg.Go(func() { out[i], _ = f(3) })
					}
					synctest.Wait()
					close(gate)
					wg.Wait()
					for i, v := range out {
						assert.Equal(t, 3, v, "caller %d", i)
					}
					assert.Equal(t, int32(1), calls.Load(), "one execution for all")
					v, _ := f(3)
					assert.Equal(t, 3, v)
					assert.Equal(t, int32(2), calls.Load(), "the rejected result was stored")
					f(4)
					f(4)
					assert.Equal(t, int32(3), calls.Load(), "an accepted result was not stored")
					st := CacheOf(fn).Stats()
					assert.Equal(t, uint64(2), st.Rejected)
					assert.Equal(t, 1, st.CurrentSize)
				})
			})
		}
	}
}

// The predicate sees the error result too, and decides for errors stored
// with WithErrorTTL.
func TestCacheIfSeesErrors(t *testing.T) {
	var calls int
	notFound := errors.New("not found")
	f := FuncErr(func(k int) (int, error) {
		calls++
		if k == 1 {
			return 0, notFound
		}
		return 0, errBoom
	}, WithErrorTTL(time.Minute), WithCacheIf(func(r []any) bool { return r[1] == nil || r[1] == notFound }))
	for range 2 {
		_, err := f(1)
		assert.Equal(t, notFound, err)
		_, err = f(2)
		assert.Equal(t, errBoom, err)
	}
	assert.Equal(t, 3, calls)
}

// WithTTLFunc gives each result its TTL, bounded by WithTTL.
func TestTTLFunc(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				f, _ := sh.make(func(_ context.Context, k int) (int, error) {
					return k*1000 + int(calls.Add(1)), nil
				}, WithTTL(time.Hour), WithTTLFunc(func(r []any) time.Duration {
					return time.Duration(r[0].(int)/1000) * time.Minute
				}))
				// key k: a TTL of k minutes, at most 60
				for _, k := range []int{1, 30, 120} {
					f(k)
				}
				check := func(k, want int) {
					t.Helper()
					v, _ := f(k)
					assert.Equal(t, want, v%1000, "key %d", k)
				}
				time.Sleep(59 * time.Second)
				check(1, 1)
				check(30, 2)
				check(120, 3)
				time.Sleep(2 * time.Second)
				check(1, 4)
				time.Sleep(29 * time.Minute)
				check(30, 5)
				check(120, 3)
				time.Sleep(30 * time.Minute)
				check(120, 6)
			})
		})
	}
}

// Jitter: over 10,000 entries stored at once, the TTLs fall inside
// [TTL×(1−f), TTL] and spread evenly across it.
func TestTTLJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, buckets = 10000, 10
		c := MustNew(WithMaxSize(n), WithTTL(100*time.Second), WithTTLJitter(0.2))
		c.e.SeedJitter(1)
		for i := range n {
			c.Set(i, i)
		}
		time.Sleep(80*time.Second - time.Nanosecond)
		require.Equal(t, n, c.Len(), "an entry expired before TTL×(1−f)")
		left := n
		for b := range buckets {
			time.Sleep(2 * time.Second)
			l := c.Len()
			gone := left - l
			left = l
			// Uniform: 1,000 per bucket; 4 standard deviations is ±120.
			assert.InDelta(t, n/buckets, gone, 120, "bucket %d", b)
		}
		assert.Equal(t, 0, left, "an entry outlived its TTL")
		assert.Equal(t, uint64(n), c.Stats().Expirations)
	})
}

// Jitter with Decorate, through WithTTLFunc, and the heap with entries that
// are replaced, invalidated and evicted.
func TestFreshHeap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		f := Func(func(k int) int { return k }, WithMaxSize(500), WithTTLJitter(0.5),
			WithTTLFunc(func(r []any) time.Duration { return time.Duration(r[0].(int)%97+1) * time.Second }),
			WithRefreshAfter(time.Second), WithStaleIfError(time.Second))
		c := CacheOf(f)
		for range 5000 {
			k := r.IntN(1000)
			switch r.IntN(4) {
			case 0:
				Invalidate(f, k)
			default:
				f(k)
			}
			if r.IntN(50) == 0 {
				time.Sleep(time.Duration(r.IntN(3000)) * time.Millisecond)
				synctest.Wait()
			}
			c.e.Mu.Lock()
			checkHeap(t, c)
			c.e.Mu.Unlock()
		}
		time.Sleep(200 * time.Second)
		synctest.Wait()
		assert.Equal(t, 0, c.Len())
		c.e.Mu.Lock()
		assert.Empty(t, c.e.Fresh.Heap)
		c.e.Mu.Unlock()
	})
}

// checkHeap verifies the expiry heap against the index. c.mu is held.
func checkHeap(t *testing.T, c *Cache) {
	t.Helper()
	var h []engine.HeapItem
	if c.e.Fresh != nil {
		h = c.e.Fresh.Heap
	}
	for i, it := range h {
		fx := engine.FreshOf(it.N)
		if fx.Hidx != i || it.At != fx.RemoveAt {
			t.Fatalf("heap item %d: hidx %d, at %d, removeAt %d", i, fx.Hidx, it.At, fx.RemoveAt)
		}
		if i > 0 && h[(i-1)/2].At > it.At {
			t.Fatalf("heap order broken at %d", i)
		}
		if c.e.Index.Get(engine.UnsafeBytes(engine.KeyOf(it.N)), engine.HashString(engine.KeyOf(it.N))) != it.N {
			t.Fatalf("heap item %d is not in the index", i)
		}
	}
	entries := 0
	if c.e.Policy != nil { // made by the first store
		entries = c.e.Policy.Len()
	}
	if len(h) != entries {
		t.Fatalf("heap %d entries, policy %d", len(h), entries)
	}
}

// Plain entries keep their expiry exactly as before (odd times); fresh
// ones are tagged.
func TestExpiryTags(t *testing.T) {
	for _, ttl := range []int64{1, 2, 1e9, math.MaxInt64} {
		for _, now := range []int64{1, 3, 1e9 + 1} {
			e := engine.AddTime(now, time.Duration(ttl))
			p := engine.PlainExpiry(e)
			assert.True(t, p&1 == 1 && p <= e && p >= e-1, "plainExpiry(%d) = %d", e, p)
		}
	}
	assert.Equal(t, uintptr(48), unsafe.Sizeof(engine.Extra{}), "a plain TTL entry's extra")
	assert.Equal(t, uintptr(96), unsafe.Sizeof(engine.FreshX{}), "the README says 96 bytes")
	assert.Equal(t, uintptr(40), unsafe.Sizeof(engine.Node{}), "a node (the README's bytes per entry)")
	synctest.Test(t, func(t *testing.T) {
		c := MustNew(WithMaxSize(4), WithTTL(time.Minute))
		c.Set(1, 1)
		d := MustNew(WithMaxSize(4), WithTTL(time.Minute), WithTTLJitter(0.1))
		d.Set(1, 1)
		get := func(c *Cache) *engine.Node {
			s := keys.GetState()
			defer keys.PutState(s)
			encodeKey(s, 1)
			return c.e.Index.Get(s.Buf, engine.HashKey(s.Buf))
		}
		assert.False(t, engine.Tagged(get(c)))
		assert.True(t, engine.Tagged(get(d)))
	})
}

// Under concurrent hits, refreshes, failures, invalidations and expiry, a
// caller only ever gets a result computed for its own key, and every
// refresh ends.
func TestFreshStress(t *testing.T) {
	var version atomic.Int64
	f := FuncErr(func(k int) (int, error) {
		v := version.Add(1)
		if v%7 == 0 {
			return 0, errBoom
		}
		if v%11 == 0 {
			panic(errBoom)
		}
		return k*1_000_000 + int(v%1_000_000), nil
	}, WithMaxSize(16), WithTTL(3*time.Millisecond), WithRefreshAfter(time.Millisecond),
		WithStaleIfError(2*time.Millisecond), WithTTLJitter(0.5),
		WithCacheIf(func(r []any) bool { return r[0].(int)%5 != 0 }))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 3000 {
				k := r.IntN(24) + 1
				if r.IntN(50) == 0 {
					Invalidate(f, k)
					continue
				}
				func() {
					defer func() { _ = recover() }()
					v, err := f(k)
					if err == nil && v/1_000_000 != k {
						t.Errorf("f(%d) = %d: another key's result", k, v)
					}
				}()
			}
		})
	}
	wg.Wait()
	st := CacheOf(f).Stats()
	for st.RefreshesStarted != st.RefreshesSucceeded+st.RefreshesFailed {
		runtime.Gosched() // the last refreshes are ending
		st = CacheOf(f).Stats()
	}
	t.Logf("refreshes %d (ok %d, failed %d), stale %d, rejected %d, calls %d",
		st.RefreshesStarted, st.RefreshesSucceeded, st.RefreshesFailed, st.StaleServed, st.Rejected, st.TotalCalls)
	assert.LessOrEqual(t, CacheOf(f).Len(), 16)
}
