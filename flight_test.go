package memo

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the call semantics of decorated functions: coalescing, contexts,
// errors, panics, runtime.Goexit and invalidation while a call is in flight.

// flInFlight reports how many executions are in flight in c and how many
// callers wait on them, their leaders included, read under the shards'
// locks.
func flInFlight(c *Cache) (calls, waiters int) {
	shards := c.shardList()
	for i := range shards {
		sh := &shards[i]
		sh.mu.Lock()
		for _, cl := range sh.calls {
			calls++
			waiters += cl.waiters
		}
		sh.mu.Unlock()
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

// The same with a deadline, in a bubble: the waiter leaves exactly at its
// deadline, while the execution is still blocked.
func TestContextWaiterDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var execs atomic.Int32
		f := Decorate(func(ctx context.Context) (int, error) {
			execs.Add(1)
			<-release
			return 7, nil
		})
		var wg sync.WaitGroup
		wg.Go(func() {
			v, err := f(context.Background())
			assert.NoError(t, err)
			assert.Equal(t, 7, v)
		})
		synctest.Wait()

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		v, err := f(ctx)
		assert.Equal(t, 10*time.Millisecond, time.Since(start))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, v)

		close(release)
		wg.Wait()
		v, err = f(context.Background())
		assert.NoError(t, err)
		assert.Equal(t, 7, v)
		assert.EqualValues(t, 1, execs.Load())
	})
}

// A caller whose context has already ended gets ctx.Err() without starting
// an execution (unless the result is stored: then it hits).
func TestContextAlreadyCancelled(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	f := Decorate(func(ctx context.Context, k int) (int, error) {
		execs.Add(1)
		return k, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := f(ctx, 1)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, v)
	assert.Zero(t, execs.Load())

	_, err = f(context.Background(), 1)
	require.NoError(t, err)
	v, err = f(ctx, 1)
	assert.NoError(t, err, "a hit does not look at the context")
	assert.Equal(t, 1, v)
	assert.EqualValues(t, 1, execs.Load())
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

var errFlight = errors.New("flight test error")

func TestFlightErrorsReturnedToAllCallersNotStored(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var execs atomic.Int32
		f := Decorate(func(k int) (int, error) {
			if execs.Add(1) == 1 {
				<-release
				return -1, errFlight
			}
			return k, nil
		})
		const n = 5
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				v, err := f(1)
				assert.ErrorIs(t, err, errFlight)
				assert.Equal(t, -1, v, "the execution's results")
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		c := CacheOf(f)
		assert.Zero(t, c.Len(), "an error is not stored")
		st := c.Stats()
		assert.EqualValues(t, n-1, st.Coalesced)
		assert.EqualValues(t, 1, st.Failures)

		v, err := f(1)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.EqualValues(t, 2, execs.Load(), "the next call executes again")
	})
}

func TestFlightErrorTTL(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var execs atomic.Int32
		var fail atomic.Bool
		fail.Store(true)
		f := Decorate(func(k int) (int, error) {
			execs.Add(1)
			if fail.Load() {
				return 0, errFlight
			}
			return k, nil
		}, WithErrorTTL(time.Minute))
		c := CacheOf(f)

		_, err := f(1)
		assert.ErrorIs(t, err, errFlight)
		time.Sleep(time.Minute - time.Nanosecond)
		_, err = f(1)
		assert.ErrorIs(t, err, errFlight, "stored")
		assert.EqualValues(t, 1, execs.Load())

		time.Sleep(time.Nanosecond)
		assert.Zero(t, c.Len(), "expired")
		fail.Store(false)
		v, err := f(1)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.EqualValues(t, 2, execs.Load())

		time.Sleep(time.Hour)
		v, err = f(1)
		assert.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.EqualValues(t, 2, execs.Load(), "results without error keep no TTL")
	})
}

type flBoom struct{ msg string }

func TestPanics(t *testing.T) {
	t.Parallel()
	for _, withCtx := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "context"}[withCtx]
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

func TestPanicErrorUnwrap(t *testing.T) {
	t.Parallel()
	pe := &PanicError{Value: errFlight}
	assert.ErrorIs(t, pe, errFlight)
	assert.NoError(t, (&PanicError{Value: "text"}).Unwrap())
}

func TestGoexit(t *testing.T) {
	t.Parallel()
	for _, withCtx := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "context"}[withCtx]
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
				call = func(k int) int {
					v, _ := f(context.Background(), k)
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
			if withCtx {
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
