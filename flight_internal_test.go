package memo

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the call semantics of decorated functions: coalescing, contexts,
// errors, panics, runtime.Goexit and invalidation while a call is in flight.

// flInFlight reports how many executions are in flight in c and how many
// callers wait on them, their leaders included, read under the shards'
// locks.
func flInFlight(c *Cache) (calls, waiters int) {
	shards := c.e.ShardList()
	for i := range shards {
		sh := &shards[i]
		sh.Mu.Lock()
		for cl := range sh.Calls.All() {
			calls++
			waiters += cl.Waiters
		}
		sh.Mu.Unlock()
	}
	return calls, waiters
}

// flAwaitInFlight waits, yielding the processor between looks, until c has
// the given executions and waiters in flight. It has no deadline: a state
// never reached hangs the test until go test's -timeout, which prints
// every goroutine.
func flAwaitInFlight(t *testing.T, c *Cache, calls, waiters int) {
	t.Helper()
	for {
		gotCalls, gotWaiters := flInFlight(c)
		if gotCalls == calls && gotWaiters == waiters {
			return
		}
		runtime.Gosched()
	}
}

// flRecv receives from ch. It has no deadline, as flAwaitInFlight.
func flRecv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	return <-ch
}

// flCatch runs f and returns what it panicked with, and whether it
// returned at all (false after runtime.Goexit). It must run in a goroutine
// of its own when f may call runtime.Goexit.
func flCatch(f func()) (r any, returned bool) {
	func() {
		defer func() { r = recover() }()
		f()
		returned = true
	}()
	return r, returned
}

func TestCoalescing100Callers(t *testing.T) {
	t.Parallel()
	const n = 100
	check := func(t *testing.T, f func(string) int, execs *atomic.Int32, results []int) {
		t.Helper()
		assert.EqualValues(t, 1, execs.Load(), "executions")
		for i, r := range results {
			assert.Equal(t, 3, r, "caller %d", i)
		}
		st := CacheOf(f).Stats()
		assert.EqualValues(t, n, st.Hits+st.Misses, "every call is a hit or a miss")
		assert.EqualValues(t, n, st.Misses, "callers that waited are misses")
		assert.EqualValues(t, n-1, st.Coalesced)
		assert.EqualValues(t, 1, st.TotalCalls)
		assert.Equal(t, 1, CacheOf(f).Len())
	}

	t.Run("synctest", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			var execs atomic.Int32
			f := Decorate(func(k string) int {
				execs.Add(1)
				<-release
				return len(k)
			})
			results := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i] = f("key") })
			}
			// Every caller is now durably blocked: one in f, the others
			// on its execution.
			synctest.Wait()
			calls, waiters := flInFlight(CacheOf(f))
			assert.Equal(t, 1, calls)
			assert.Equal(t, n, waiters)
			close(release)
			wg.Wait()
			check(t, f, &execs, results)
		})
	})

	t.Run("goroutines", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		var execs atomic.Int32
		f := Decorate(func(k string) int {
			execs.Add(1)
			<-release
			return len(k)
		})
		results := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = f("key") })
		}
		flAwaitInFlight(t, CacheOf(f), 1, n)
		close(release)
		wg.Wait()
		check(t, f, &execs, results)
	})
}

func TestContextWaiterLeavesAtOnce(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var execs atomic.Int32
	f := Decorate(func(ctx context.Context, k string) (string, error) {
		execs.Add(1)
		<-release
		return "v:" + k, nil
	})
	c := CacheOf(f)

	leader := make(chan string, 1)
	go func() {
		v, err := f(context.Background(), "k")
		assert.NoError(t, err)
		leader <- v
	}()
	flAwaitInFlight(t, c, 1, 1)

	type result struct {
		v   string
		err error
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan result, 1)
	go func() {
		v, err := f(ctx, "k")
		waiter <- result{v, err}
	}()
	flAwaitInFlight(t, c, 1, 2)

	// The waiter returns as its context ends: the execution is still
	// blocked in f (release is closed below).
	cancel()
	r := flRecv(t, waiter)
	assert.ErrorIs(t, r.err, context.Canceled)
	assert.Zero(t, r.v)

	// The execution goes on for the leader, still blocked in f.
	flAwaitInFlight(t, c, 1, 1)
	close(release)
	assert.Equal(t, "v:k", flRecv(t, leader))

	// It stored its result: a later call hits.
	v, err := f(context.Background(), "k")
	require.NoError(t, err)
	assert.Equal(t, "v:k", v)
	assert.EqualValues(t, 1, execs.Load())
	assert.EqualValues(t, 1, c.Stats().Hits)
}

type flCtxKey struct{}

func TestContextOfExecution(t *testing.T) {
	t.Parallel()
	execCtxs := make(chan context.Context, 2)
	release := make(chan struct{})
	finished := make(chan error, 2)
	var execs atomic.Int32
	f := Decorate(func(ctx context.Context, k int) (string, error) {
		execs.Add(1)
		execCtxs <- ctx
		defer func() { finished <- ctx.Err() }()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-release:
			v, _ := ctx.Value(flCtxKey{}).(string)
			return v, nil
		}
	})
	c := CacheOf(f)

	type result struct {
		v   string
		err error
	}
	call := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			v, err := f(ctx, 1)
			ch <- result{v, err}
		}()
		return ch
	}

	t.Run("cancelled when every caller has gone", func(t *testing.T) {
		ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), flCtxKey{}, "first"))
		ctx2, cancel2 := context.WithCancel(context.WithValue(context.Background(), flCtxKey{}, "second"))
		defer cancel1()
		defer cancel2()
		r1 := call(ctx1)
		execCtx := flRecv(t, execCtxs)
		r2 := call(ctx2)
		flAwaitInFlight(t, c, 1, 2)

		cancel1()
		assert.ErrorIs(t, flRecv(t, r1).err, context.Canceled)
		assert.NoError(t, execCtx.Err(), "one caller is still waiting")
		assert.Equal(t, "first", execCtx.Value(flCtxKey{}), "the first caller's values")

		cancel2()
		assert.ErrorIs(t, flRecv(t, r2).err, context.Canceled)
		assert.ErrorIs(t, execCtx.Err(), context.Canceled, "cancelled as the last caller leaves")
		assert.ErrorIs(t, flRecv(t, finished), context.Canceled, "f observed ctx.Done()")
		assert.EqualValues(t, 1, execs.Load())
	})

	t.Run("keeps the first caller's values", func(t *testing.T) {
		// The abandoned execution stored nothing and is not joined: this
		// call starts a new one.
		ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), flCtxKey{}, "first"))
		defer cancel1()
		r1 := call(ctx1)
		execCtx := flRecv(t, execCtxs)
		assert.EqualValues(t, 2, execs.Load())
		r2 := call(context.WithValue(context.Background(), flCtxKey{}, "second"))
		flAwaitInFlight(t, c, 1, 2)

		cancel1() // the first caller leaves; its values stay
		assert.ErrorIs(t, flRecv(t, r1).err, context.Canceled)
		assert.NoError(t, execCtx.Err())

		close(release)
		r := flRecv(t, r2)
		require.NoError(t, r.err)
		assert.Equal(t, "first", r.v)
		assert.NoError(t, flRecv(t, finished))

		v, err := f(context.Background(), 1)
		require.NoError(t, err)
		assert.Equal(t, "first", v, "stored")
		assert.EqualValues(t, 2, execs.Load())
	})
}

type flBoom struct{ msg string }

func TestPanics(t *testing.T) {
	t.Parallel()
	// "context" calls with a context that can be cancelled, which runs the
	// function in a goroutine of memo's; "background" with one that cannot,
	// whose caller runs it itself, as a plain call's does.
	for _, name := range []string{"plain", "context", "background"} {
		withCtx := name != "plain"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				boom := &flBoom{"boom"}
				release := make(chan struct{})
				var execs atomic.Int32
				body := func(k int) int {
					if execs.Add(1) == 1 {
						<-release
						panic(boom)
					}
					return 2 * k
				}
				var c *Cache
				var call func(int) int
				if withCtx {
					f := Decorate(func(_ context.Context, k int) (int, error) { return body(k), nil })
					c = CacheOf(f)
					call = func(k int) int {
						v, err := f(context.Background(), k)
						assert.NoError(t, err)
						return v
					}
				} else {
					f := Decorate(body)
					c = CacheOf(f)
					call = f
				}

				var wg sync.WaitGroup
				var runner any
				wg.Go(func() { runner, _ = flCatch(func() { call(1) }) })
				synctest.Wait() // the runner is in f
				const waiters = 3
				got := make([]any, waiters)
				for i := range waiters {
					wg.Go(func() { got[i], _ = flCatch(func() { call(1) }) })
				}
				synctest.Wait()
				close(release)
				wg.Wait()

				assert.Same(t, boom, runner, "the runner sees the original panic value")
				for i, r := range got {
					pe, ok := r.(*PanicError)
					if assert.True(t, ok, "waiter %d panicked with %T, want *PanicError", i, r) {
						assert.Same(t, boom, pe.Value, "waiter %d", i)
						assert.NotEmpty(t, pe.Stack)
						assert.Contains(t, pe.Error(), "memo:")
					}
				}

				// Not stored, and the cache is usable.
				assert.Equal(t, 2, call(1))
				assert.Equal(t, 2, call(1))
				assert.EqualValues(t, 2, execs.Load())
				st := c.Stats()
				assert.EqualValues(t, 2, st.TotalCalls)
				assert.EqualValues(t, 1, st.Failures)
				assert.Equal(t, 1, c.Len())
			})
		})
	}
}

func TestGoexit(t *testing.T) {
	t.Parallel()
	// "context" calls with a context that can be cancelled, which runs the
	// function in a goroutine of memo's; "background" with one that cannot,
	// whose caller runs it itself, as a plain call's does.
	for _, name := range []string{"plain", "context", "background"} {
		withCtx := name != "plain"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			entered := make(chan struct{})
			release := make(chan struct{})
			var execs atomic.Int32
			body := func(k int) int {
				if execs.Add(1) == 1 {
					close(entered)
					<-release
					runtime.Goexit()
				}
				return 2 * k
			}
			var c *Cache
			var call func(int) int
			if withCtx {
				f := Decorate(func(_ context.Context, k int) (int, error) { return body(k), nil })
				c = CacheOf(f)
				ctx := context.Background()
				if name == "context" {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				call = func(k int) int {
					v, _ := f(ctx, k)
					return v
				}
			} else {
				f := Decorate(body)
				c = CacheOf(f)
				call = f
			}

			type outcome struct {
				r        any
				returned bool
			}
			runner := make(chan outcome, 1)
			go func() {
				var o outcome
				defer func() { runner <- o }()
				o.r, o.returned = flCatch(func() { call(1) })
			}()
			flRecv(t, entered)
			const waiters = 3
			got := make(chan outcome, waiters)
			for range waiters {
				go func() {
					var o outcome
					defer func() { got <- o }()
					o.r, o.returned = flCatch(func() { call(1) })
				}()
			}
			flAwaitInFlight(t, c, 1, waiters+1)
			close(release)

			ro := flRecv(t, runner)
			if name == "context" {
				// The function ran in a goroutine of memo's; the caller
				// that started it waited like the others.
				pe, ok := ro.r.(*PanicError)
				if assert.True(t, ok, "caller panicked with %T", ro.r) {
					assert.ErrorIs(t, pe, errGoexit)
				}
			} else {
				assert.False(t, ro.returned, "the runner's goroutine exits")
				assert.Nil(t, ro.r, "Goexit is not a panic")
			}
			for range waiters {
				o := flRecv(t, got) // no waiter hangs
				pe, ok := o.r.(*PanicError)
				if assert.True(t, ok, "waiter panicked with %T", o.r) {
					assert.ErrorIs(t, pe, errGoexit)
				}
			}

			assert.Equal(t, 2, call(1), "the cache is usable")
			assert.Equal(t, 2, call(1))
			assert.EqualValues(t, 2, execs.Load())
			st := c.Stats()
			assert.EqualValues(t, 1, st.Failures)
			assert.EqualValues(t, 2, st.TotalCalls)
		})
	}
}

// An execution in flight when its key is invalidated does not store its
// result, and callers that come later start a fresh one.
func TestInvalidateDuringExecution(t *testing.T) {
	// Not parallel: ClearAll clears every cache.
	cases := []struct {
		name       string
		invalidate func(t *testing.T, f any)
	}{
		{"Invalidate", func(t *testing.T, f any) { assert.False(t, Invalidate(f, "k"), "no entry yet") }},
		{"Cache.Clear", func(t *testing.T, f any) { CacheOf(f).Clear() }},
		{"ClearAll", func(t *testing.T, f any) { ClearAll() }},
	}
	for _, tc := range cases {
		for _, withCtx := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/plain", true: "/context"}[withCtx]
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					started := make(chan chan string)
					var execs atomic.Int32
					body := func(k string) string {
						execs.Add(1)
						rel := make(chan string)
						started <- rel
						return <-rel
					}
					var f any
					var call func() string
					if withCtx {
						g := Decorate(func(_ context.Context, k string) (string, error) { return body(k), nil })
						f = g
						call = func() string {
							v, err := g(context.Background(), "k")
							assert.NoError(t, err)
							return v
						}
					} else {
						g := Decorate(body)
						f = g
						call = func() string { return g("k") }
					}
					c := CacheOf(f)

					var wg sync.WaitGroup
					var a, b, cc string
					wg.Go(func() { a = call() })
					relOld := <-started

					tc.invalidate(t, f)

					wg.Go(func() { b = call() })
					relNew := <-started // b started a fresh execution
					wg.Go(func() { cc = call() })
					synctest.Wait()
					calls, waiters := flInFlight(c)
					assert.Equal(t, 1, calls, "the old execution is detached")
					assert.Equal(t, 2, waiters, "the later caller joined the new execution")

					relOld <- "old"
					synctest.Wait()
					assert.Equal(t, "old", a, "the first caller gets its execution's result")
					assert.Zero(t, c.Len(), "the stale result is not stored")

					relNew <- "new"
					wg.Wait()
					assert.Equal(t, "new", b)
					assert.Equal(t, "new", cc)
					assert.Equal(t, "new", call(), "a hit")
					assert.EqualValues(t, 2, execs.Load())
					assert.Equal(t, 1, c.Len())
				})
			})
		}
	}
}

// rfAssertSettled asserts that every miss of c is accounted for.
func rfAssertSettled(t *testing.T, st stats.Stats) {
	t.Helper()
	assert.Zero(t, st.Pending(), "Misses %d = Led %d + Coalesced %d + Abandoned %d + GetMisses %d",
		st.Misses, st.Led, st.Coalesced, st.Abandoned, st.GetMisses)
}

// Issue 8.5: a memoized function that calls itself with the same key from
// inside its execution gets a result instead of waiting on itself.
func TestReentrantCallWithoutContext(t *testing.T) {
	t.Parallel()
	var f func(string) string
	var first atomic.Bool
	first.Store(true)
	f = Decorate(func(k string) string {
		if first.CompareAndSwap(true, false) {
			assert.Equal(t, "v:"+k, f(k), "the inner call")
		}
		return "v:" + k
	})
	got := make(chan string, 1)
	go func() { got <- f("k") }()
	assert.Equal(t, "v:k", flRecv(t, got))
	assert.Equal(t, "v:k", f("k"), "stored by the outer execution")
	st := CacheOf(f).Stats()
	assert.EqualValues(t, 2, st.TotalCalls)
	assert.EqualValues(t, 2, st.Led)
	assert.EqualValues(t, 1, st.Hits)
	rfAssertSettled(t, st)

	// The typed paths, and a chain through another memoized function on
	// the same goroutine: f(1) → g(1) → f(1).
	var tf, tg func(int) int
	var depth atomic.Int32
	tf = Func(func(n int) int {
		if depth.Add(1) == 1 {
			return tg(n) + 1
		}
		return 100
	})
	tg = Func(func(n int) int { return tf(n) * 2 })
	res := make(chan int, 1)
	go func() { res <- tf(1) }()
	assert.Equal(t, 201, flRecv(t, res))
}

// FuncCtx with key 21 and a 300 ms deadline: the inner call runs on its
// own, the outer call returns its result before the deadline, and no
// goroutine is left behind (synctest fails a test that leaves one
// blocked; TestMain's goleak checks the package).
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestReentrantCallWithContext(t *testing.T) {
	t.Parallel()
	for _, inner := range []string{"the execution's context", "a context of its own"} {
		t.Run(inner, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var f func(context.Context, int) (int, error)
				var calls atomic.Int32
				f = FuncCtx(func(ctx context.Context, k int) (int, error) {
					if calls.Add(1) == 1 {
						innerCtx := ctx
						if inner != "the execution's context" {
							innerCtx = context.Background() // found by the goroutine instead
						}
						v, err := f(innerCtx, k)
						if err != nil {
							return 0, err
						}
						return v + 1, nil
					}
					return k * 2, nil
				})
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				v, err := f(ctx, 21)
				require.NoError(t, err)
				assert.Equal(t, 43, v)
				assert.Zero(t, time.Since(start), "no waiting at all")
				v, err = f(context.Background(), 21)
				require.NoError(t, err)
				assert.Equal(t, 43, v, "the outer result is stored")
				assert.EqualValues(t, 2, calls.Load())
				rfAssertSettled(t, CacheOf(f).Stats())
			})
		})
	}
}

// A call inside an execution joins an execution of another goroutine as
// any caller does: only its own key's execution, on its own goroutine or
// along its context, is run without joining.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestNestedCallStillJoinsOtherGoroutines(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var gExecs atomic.Int32
	g := Func(func(n int) int {
		gExecs.Add(1)
		<-release
		return n * 10
	})
	f := Func(func(n int) int { return g(n) + 1 })

	gDone := make(chan int, 1)
	go func() { gDone <- g(1) }()
	flAwaitInFlight(t, CacheOf(g), 1, 1)
	fDone := make(chan int, 1)
	go func() { fDone <- f(1) }() // f's execution waits on the other goroutine's g(1)
	flAwaitInFlight(t, CacheOf(g), 1, 2)
	close(release)
	assert.Equal(t, 10, flRecv(t, gDone))
	assert.Equal(t, 11, flRecv(t, fDone))
	assert.EqualValues(t, 1, gExecs.Load())
	assert.EqualValues(t, 1, CacheOf(g).Stats().Coalesced)
}

// Issue 8.6: 16 goroutines × 20,000 calls of Func(k+1) over 400 keys with
// MaxSize 256. Every miss is accounted for exactly, the misses that found
// the entry stored just before inside join included.
func TestMissAccountingUnderConcurrency(t *testing.T) {
	t.Parallel()
	const goroutines, perG, keys = 16, 20_000, 400
	f := Func(func(k int) int { return k + 1 }, WithMaxSize(256))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range perG {
				k := r.IntN(keys)
				if v := f(k); v != k+1 {
					t.Errorf("f(%d) = %d", k, v)
					return
				}
			}
		})
	}
	wg.Wait()
	st := CacheOf(f).Stats()
	t.Logf("hits %d, misses %d, executions %d, coalesced %d", st.Hits, st.Misses, st.TotalCalls, st.Coalesced)
	assert.EqualValues(t, goroutines*perG, st.Hits+st.Misses)
	rfAssertSettled(t, st)
	assert.Equal(t, st.Misses, st.TotalCalls+st.Coalesced, "SPEC: no caller leaving early, every result storable")
	assert.Equal(t, st.TotalCalls, st.Led)
	assert.Zero(t, st.Abandoned)
}

// The same with context callers that leave, callers that arrive with a
// context already done, and Cache.Get lookups on the same cache.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestMissAccountingWithCallersThatLeave(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const goroutines, perG, keys = 16, 400, 40
		f := FuncCtx(func(ctx context.Context, k int) (int, error) {
			select {
			case <-time.After(time.Duration(k%4) * time.Millisecond):
				return k + 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}, WithMaxSize(16))
		c := CacheOf(f)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 2))
				for range perG {
					k := r.IntN(keys)
					if r.IntN(8) == 0 {
						_, _ = c.Get(k)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(4)-1)*time.Millisecond)
					v, err := f(ctx, k)
					cancel()
					if err == nil && v != k+1 {
						t.Errorf("f(%d) = %d", k, v)
					}
					if err != nil && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("f(%d): %v", k, err)
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait() // executions whose callers all left end
		st := c.Stats()
		t.Logf("hits %d, misses %d, led %d, coalesced %d, abandoned %d, get misses %d, executions %d",
			st.Hits, st.Misses, st.Led, st.Coalesced, st.Abandoned, st.GetMisses, st.TotalCalls)
		assert.NotZero(t, st.Abandoned)
		assert.NotZero(t, st.Coalesced)
		assert.NotZero(t, st.GetMisses)
		rfAssertSettled(t, st)
	})
}

// Issue 9.1: a method expression whose method takes a context after its
// receiver. Ten concurrent requests with contexts of their own share one
// execution, and Invalidate, without the context, finds the entry.
type rfRepo struct {
	execs   atomic.Int32
	release chan struct{}
}

func (r *rfRepo) Find(ctx context.Context, filter string) ([]string, error) {
	r.execs.Add(1)
	select {
	case <-r.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []string{"row:" + filter}, nil
}

// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestContextAfterReceiver(t *testing.T) {
	t.Parallel()
	repo := &rfRepo{release: make(chan struct{})}
	find := Decorate((*rfRepo).Find)
	c := CacheOf(find)
	const n = 10
	results := make(chan []string, n)
	for range n {
		go func() {
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), flCtxKey{}, "request"))
			defer cancel()
			rows, err := find(repo, ctx, "x")
			assert.NoError(t, err)
			results <- rows
		}()
	}
	flAwaitInFlight(t, c, 1, n)
	close(repo.release)
	for range n {
		assert.Equal(t, []string{"row:x"}, flRecv(t, results))
	}
	assert.EqualValues(t, 1, repo.execs.Load())
	st := c.Stats()
	assert.EqualValues(t, n-1, st.Coalesced)
	rfAssertSettled(t, st)

	rows, err := find(repo, context.Background(), "x")
	require.NoError(t, err)
	assert.Equal(t, []string{"row:x"}, rows)
	assert.EqualValues(t, 1, repo.execs.Load(), "a hit")

	assert.True(t, Invalidate(find, repo, "x"))
	assert.False(t, Invalidate(find, repo, "x"))
	_, err = find(repo, context.Background(), "x")
	require.NoError(t, err)
	assert.EqualValues(t, 2, repo.execs.Load())
}

// Several contexts in any positions: none is in the key (nor in WithKey's
// arguments), and the first governs cancellation.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestContextsInAnyPosition(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var execs atomic.Int32
	var keyArgs atomic.Value
	fn := func(a int, ctx1 context.Context, b string, ctx2 context.Context) (string, error) {
		execs.Add(1)
		<-release
		return b + ":" + ctx1.Value(flCtxKey{}).(string), nil
	}
	f := Decorate(fn)
	fk := Decorate(fn, WithKey(func(args []any) any {
		keyArgs.Store(len(args))
		return args[1]
	}))
	c := CacheOf(f)

	bg := context.Background()
	first := make(chan string, 1)
	go func() {
		v, err := f(1, context.WithValue(bg, flCtxKey{}, "one"), "b", bg)
		assert.NoError(t, err)
		first <- v
	}()
	flAwaitInFlight(t, c, 1, 1)

	ctx1, cancel1 := context.WithCancel(context.WithValue(bg, flCtxKey{}, "two"))
	ctx2, cancel2 := context.WithCancel(bg)
	defer cancel2()
	second := make(chan error, 1)
	go func() {
		_, err := f(1, ctx1, "b", ctx2)
		second <- err
	}()
	flAwaitInFlight(t, c, 1, 2)
	cancel2() // not the first context: the caller keeps waiting
	flAwaitInFlight(t, c, 1, 2)
	cancel1()
	assert.ErrorIs(t, flRecv(t, second), context.Canceled)
	close(release)
	assert.Equal(t, "b:one", flRecv(t, first))

	v, err := f(1, context.WithValue(bg, flCtxKey{}, "three"), "b", nil)
	require.NoError(t, err)
	assert.Equal(t, "b:one", v, "a hit, whatever the contexts")
	assert.EqualValues(t, 1, execs.Load())
	assert.True(t, Invalidate(f, 1, "b"))

	v, err = fk(2, context.WithValue(bg, flCtxKey{}, "k"), "c", bg)
	require.NoError(t, err)
	assert.Equal(t, "c:k", v)
	assert.Equal(t, 2, keyArgs.Load(), "WithKey gets the arguments without the contexts")
	assert.True(t, Invalidate(fk, 2, "c"))
}

// A waiter with time left gets the right result after the starter's
// deadline killed the shared execution: it starts a fresh one. A waiter
// whose deadline is the same as the starter's gets the deadline error.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestWaiterOutlivesStartersDeadline(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"FuncCtx", "Decorate"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var execs atomic.Int32
				body := func(ctx context.Context, k int) (int, error) {
					execs.Add(1)
					select {
					case <-time.After(100 * time.Millisecond):
						return k * 2, nil
					case <-ctx.Done():
						return 0, ctx.Err()
					}
				}
				f := FuncCtx(body, WithErrorTTL(time.Hour))
				if name == "Decorate" {
					f = Decorate(body, WithErrorTTL(time.Hour))
				}
				bg := context.Background()
				starter, cancel := context.WithTimeout(bg, 30*time.Millisecond)
				defer cancel()
				sameDeadline, cancelSame := context.WithCancel(starter)
				defer cancelSame()
				later, cancelLater := context.WithTimeout(bg, time.Second)
				defer cancelLater()

				type result struct {
					v   int
					err error
					at  time.Duration
				}
				start := time.Now()
				call := func(ctx context.Context) <-chan result {
					ch := make(chan result, 1)
					go func() {
						v, err := f(ctx, 21)
						ch <- result{v, err, time.Since(start)}
					}()
					return ch
				}
				rs := call(starter)
				synctest.Wait()
				rSame := call(sameDeadline)
				rLater := call(later)
				rNone := call(bg)
				synctest.Wait()

				s := <-rs
				assert.ErrorIs(t, s.err, context.DeadlineExceeded, "the starter: its own deadline")
				assert.Equal(t, 30*time.Millisecond, s.at)
				s = <-rSame
				assert.ErrorIs(t, s.err, context.DeadlineExceeded, "the same deadline is its own")
				for _, r := range []result{<-rLater, <-rNone} {
					require.NoError(t, r.err)
					assert.Equal(t, 42, r.v)
					assert.Equal(t, 130*time.Millisecond, r.at, "a fresh execution from 30 ms")
				}
				assert.EqualValues(t, 2, execs.Load())

				v, err := f(bg, 21)
				require.NoError(t, err)
				assert.Equal(t, 42, v, "the fresh result is stored; the deadline error was not")
				assert.EqualValues(t, 2, execs.Load())
				rfAssertSettled(t, CacheOf(f).Stats())
			})
		})
	}
}

// A call whose key can never hit again runs on its own: a miss counted as
// Led (or Abandoned, its context already done), timed as an execution,
// and in Uncacheable.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestUncacheableCallsInMissAccounting(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 5<<20) // past the 4 MiB key limit
	f := FuncCtx(func(_ context.Context, s string) (int, error) { return len(s), nil })
	v, err := f(context.Background(), long)
	require.NoError(t, err)
	assert.Equal(t, len(long), v)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = f(ctx, long)
	assert.ErrorIs(t, err, context.Canceled)
	st := CacheOf(f).Stats()
	assert.EqualValues(t, 2, st.Misses)
	assert.EqualValues(t, 2, st.Uncacheable)
	assert.EqualValues(t, 1, st.Led)
	assert.EqualValues(t, 1, st.Abandoned)
	assert.EqualValues(t, 1, st.TotalCalls, "the call that ran is timed")
	rfAssertSettled(t, st)
}

// A caller whose lookup found an entry due for a refresh counted a hit:
// its way through the miss path counts as no miss, whatever it finds there.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestRefreshDueCallersInMissAccounting(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var execs atomic.Int32
		f := Func(func(k int) int { return int(execs.Add(1))*100 + k }, WithTTL(time.Hour), WithRefreshAfter(10*time.Millisecond))
		assert.Equal(t, 101, f(1))
		time.Sleep(20 * time.Millisecond)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { f(1) }) // due: hits, one refresh
		}
		wg.Wait()
		synctest.Wait()
		assert.Equal(t, 201, f(1), "refreshed")
		st := CacheOf(f).Stats()
		assert.EqualValues(t, 1, st.Misses)
		assert.EqualValues(t, 9, st.Hits)
		assert.EqualValues(t, 1, st.RefreshesStarted)
		rfAssertSettled(t, st)
	})
}

// A leader with a context leaves and reuses the object whose CacheKey made
// the key; a waiter with the old key stays. The waiter must get the result
// for its own key, and nothing else may be stored under it.
func TestLeaderLeftAndReusedCacheKeyerPointer(t *testing.T) {
	fs := map[string]func(context.Context, *rcKeyed) (int, error){
		"FuncCtx": FuncCtx(func(ctx context.Context, p *rcKeyed) (int, error) {
			<-ctx.Value(rcRelease{}).(chan struct{})
			return p.ID * 10, nil
		}),
		"Decorate": Decorate(func(ctx context.Context, p *rcKeyed) (int, error) {
			<-ctx.Value(rcRelease{}).(chan struct{})
			return p.ID * 10, nil
		}),
	}
	anyF := Decorate(func(ctx context.Context, p any) (int, error) {
		<-ctx.Value(rcRelease{}).(chan struct{})
		return p.(*rcKeyed).ID * 10, nil
	})
	fs["DecorateAny"] = func(ctx context.Context, p *rcKeyed) (int, error) { return anyF(ctx, p) }
	caches := map[string]*Cache{"FuncCtx": CacheOf(fs["FuncCtx"]), "Decorate": CacheOf(fs["Decorate"]), "DecorateAny": CacheOf(anyF)}
	for name, f := range fs {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				base := context.WithValue(context.Background(), rcRelease{}, release)
				ctx, cancel := context.WithCancel(base)
				p := &rcKeyed{ID: 1}
				left := make(chan error)
				go func() { _, err := f(ctx, p); left <- err }()
				synctest.Wait()
				got := make(chan int)
				go func() { v, _ := f(base, &rcKeyed{ID: 1}); got <- v }()
				synctest.Wait()
				cancel()
				assert.ErrorIs(t, <-left, context.Canceled)
				p.ID = 2 // reused once the call returned
				close(release)
				assert.Equal(t, 10, <-got, "the waiter got the result for ID 2")
				v, err := f(base, &rcKeyed{ID: 1})
				assert.NoError(t, err)
				assert.Equal(t, 10, v, "a result for ID 2 was stored under ID 1")
				rfAssertSettled(t, caches[name].Stats())
			})
		})
	}
}
