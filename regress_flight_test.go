package memo

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/stats"
)

// Regression tests for the call semantics of issues 8 (items 1, 5, 6) and
// 9 (items 1, 2): executions that outlive a caller, calls from inside an
// execution for its own key, the statistics of misses, contexts in any
// position, and deadlines.

func rfSum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// rfAssertSettled asserts that every miss of c is accounted for.
func rfAssertSettled(t *testing.T, st stats.Stats) {
	t.Helper()
	assert.Zero(t, st.Pending(), "Misses %d = Led %d + Coalesced %d + Abandoned %d + GetMisses %d",
		st.Misses, st.Led, st.Coalesced, st.Abandoned, st.GetMisses)
}

// Issue 8.1: caller A starts the execution with buf and a 30 ms deadline,
// leaves at its deadline, then reuses buf; caller B waits for the same
// execution. The execution must compute on its own copy: B and every later
// caller get sum([1 2 3]) = 6, never 105.
func TestRegressionExecutionOutlivesCallerMemory(t *testing.T) {
	t.Parallel()
	type sumFunc = func(context.Context, []int) (int, error)
	body := func(execs *atomic.Int32) sumFunc {
		return func(_ context.Context, xs []int) (int, error) {
			execs.Add(1)
			time.Sleep(100 * time.Millisecond)
			return rfSum(xs), nil
		}
	}
	forms := map[string]func(sumFunc) sumFunc{
		"FuncCtx":  func(f sumFunc) sumFunc { return FuncCtx(f) },
		"Decorate": func(f sumFunc) sumFunc { return Decorate(f) },
	}
	for name, memoize := range forms {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var execs atomic.Int32
				f := memoize(body(&execs))

				aDone := make(chan struct{})
				go func() {
					defer close(aDone)
					buf := []int{1, 2, 3}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
					defer cancel()
					_, err := f(ctx, buf)
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					buf[0] = 100 // a caller may reuse its memory once its call has returned
				}()
				synctest.Wait() // A leads, the execution sleeps

				bGot := make(chan int, 1)
				go func() {
					v, err := f(context.Background(), []int{1, 2, 3})
					assert.NoError(t, err)
					bGot <- v
				}()
				synctest.Wait() // B waits on A's execution
				<-aDone
				assert.Equal(t, 6, <-bGot, "B")

				v, err := f(context.Background(), []int{1, 2, 3})
				require.NoError(t, err)
				assert.Equal(t, 6, v, "a later call")
				assert.EqualValues(t, 1, execs.Load())
				st := CacheOf(f).Stats()
				assert.EqualValues(t, 1, st.Hits)
				rfAssertSettled(t, st)
			})
		})
	}
}

// rfShape is a memoized function, and how callers call it: A with an
// argument it then mutates, B and later callers with a fresh equal one.
type rfShape struct {
	name   string
	decor  func(execs *atomic.Int32) any
	call   func(f any, ctx context.Context, fresh bool) (string, error)
	mutate func()
	want   string
}

// The same for the other shapes whose memory a key takes by value: maps,
// structs, interfaces, nested slices, two-argument typed functions, and
// pointees under WithDeref.
func TestRegressionExecutionOwnsEveryArgumentShape(t *testing.T) {
	t.Parallel()
	type rec struct {
		Name string
		Tags []string
	}
	var cases []rfShape
	// Each case builds the argument A passes, its mutation, and an equal
	// fresh argument for B.
	{
		var shared map[string][]int
		cases = append(cases, rfShape{
			name: "map of slices",
			decor: func(execs *atomic.Int32) any {
				return Decorate(func(_ context.Context, m map[string][]int) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("x", rfSum(m["a"])), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				m := map[string][]int{"a": {1, 2}}
				if !fresh {
					shared = m
				}
				return f.(func(context.Context, map[string][]int) (string, error))(ctx, m)
			},
			mutate: func() { shared["a"][0] = 5; shared["b"] = []int{1} },
			want:   "xxx",
		})
	}
	{
		var shared *rec
		cases = append(cases, rfShape{
			name: "pointee under WithDeref, typed two arguments",
			decor: func(execs *atomic.Int32) any {
				return Func2Ctx(func(_ context.Context, r *rec, sep string) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return r.Name + sep + strings.Join(r.Tags, sep), nil
				}, WithDeref())
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				r := &rec{Name: "n", Tags: []string{"a", "b"}}
				if !fresh {
					shared = r
				}
				return f.(func(context.Context, *rec, string) (string, error))(ctx, r, ",")
			},
			mutate: func() { shared.Name = "zz"; shared.Tags[0] = "q" },
			want:   "n,a,b",
		})
	}
	{
		var shared []any
		cases = append(cases, rfShape{
			name: "interfaces holding slices, variadic",
			decor: func(execs *atomic.Int32) any {
				return Decorate(func(_ context.Context, xs ...any) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("y", rfSum(xs[0].([]int))), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				xs := []any{[]int{1, 1}}
				if !fresh {
					shared = xs
				}
				return f.(func(context.Context, ...any) (string, error))(ctx, xs...)
			},
			mutate: func() { shared[0].([]int)[0] = 7; shared[0] = []int{9} },
			want:   "yy",
		})
	}
	{
		var shared [][]int
		cases = append(cases, rfShape{
			name: "typed nested slices",
			decor: func(execs *atomic.Int32) any {
				return FuncCtx(func(_ context.Context, xss [][]int) (string, error) {
					execs.Add(1)
					time.Sleep(100 * time.Millisecond)
					return strings.Repeat("z", rfSum(xss[1])), nil
				})
			},
			call: func(f any, ctx context.Context, fresh bool) (string, error) {
				xss := [][]int{{5}, {1, 2}}
				if !fresh {
					shared = xss
				}
				return f.(func(context.Context, [][]int) (string, error))(ctx, xss)
			},
			mutate: func() { shared[1][1] = 40 },
			want:   "zzz",
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var execs atomic.Int32
				f := tc.decor(&execs)
				aDone := make(chan struct{})
				go func() {
					defer close(aDone)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
					defer cancel()
					_, err := tc.call(f, ctx, false)
					assert.ErrorIs(t, err, context.DeadlineExceeded)
					tc.mutate()
				}()
				synctest.Wait()
				bGot := make(chan string, 1)
				go func() {
					v, err := tc.call(f, context.Background(), true)
					assert.NoError(t, err)
					bGot <- v
				}()
				synctest.Wait()
				<-aDone
				assert.Equal(t, tc.want, <-bGot, "B")
				v, err := tc.call(f, context.Background(), true)
				require.NoError(t, err)
				assert.Equal(t, tc.want, v, "a later call")
				assert.EqualValues(t, 1, execs.Load())
			})
		})
	}
}

// A leader that cannot leave (a context that never ends) needs no copy:
// the function gets the caller's own slice.
func TestContextLeaderThatCannotLeaveIsNotCopied(t *testing.T) {
	t.Parallel()
	buf := []int{1, 2}
	var got []int
	f := FuncCtx(func(_ context.Context, xs []int) (int, error) {
		got = xs
		return len(xs), nil
	})
	_, err := f(context.Background(), buf)
	require.NoError(t, err)
	assert.Equal(t, dtAddr(buf), dtAddr(got))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	buf2 := []int{3}
	_, err = f(ctx, buf2)
	require.NoError(t, err)
	assert.NotEqual(t, dtAddr(buf2), dtAddr(got), "a caller that may leave hands over a copy")
	assert.Equal(t, buf2, got)
}

// Issue 8.5: a memoized function that calls itself with the same key from
// inside its execution gets a result instead of waiting on itself.
func TestRegressionReentrantCallWithoutContext(t *testing.T) {
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
func TestRegressionReentrantCallWithContext(t *testing.T) {
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

// rfHandler collects log records.
type rfHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *rfHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *rfHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r)
	return nil
}
func (h *rfHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *rfHandler) WithGroup(string) slog.Handler      { return h }

func TestReentrantCallIsLogged(t *testing.T) {
	t.Parallel()
	h := &rfHandler{}
	var f func(int) int
	var first atomic.Bool
	first.Store(true)
	f = Decorate(func(n int) int {
		if first.CompareAndSwap(true, false) {
			return f(n) + 1
		}
		return n
	}, WithLogger(slog.New(h)), WithName("reentrant"))
	assert.Equal(t, 8, f(7))
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.recs, 1)
	r := h.recs[0]
	assert.Equal(t, slog.LevelWarn, r.Level)
	assert.True(t, strings.HasPrefix(r.Message, "memo:"), r.Message)
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	assert.Equal(t, "reentrant", attrs["cache"])
	assert.Equal(t, "func(int) int", attrs["func"])
}

// Issue 8.6: 16 goroutines × 20,000 calls of Func(k+1) over 400 keys with
// MaxSize 256. Every miss is accounted for exactly, the misses that found
// the entry stored just before inside join included.
func TestRegressionMissAccountingUnderConcurrency(t *testing.T) {
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

func TestRegressionContextAfterReceiver(t *testing.T) {
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

// The typed constructors reject a context where they would key it, at
// decoration, naming what to use instead.
func TestRegressionTypedRejectContextElsewhere(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func()
		use  string
	}{
		{"Func2, context second", func() { Func2(func(id int, ctx context.Context) int { return id }) }, "use Decorate"},
		{"Func, context only", func() { Func(func(ctx context.Context) int { return 0 }) }, "use Decorate"},
		{"FuncErr, context first", func() { FuncErr(func(ctx context.Context) (int, error) { return 0, nil }) }, "use Decorate"},
		{"Func2Err, context first", func() { Func2Err(func(ctx context.Context, id int) (int, error) { return id, nil }) }, "use FuncCtx"},
		{"Func2Err, context second", func() { Func2Err(func(id int, ctx context.Context) (int, error) { return id, nil }) }, "put the context first"},
		{"FuncCtx, a second context", func() {
			FuncCtx(func(ctx context.Context, c2 context.Context) (int, error) { return 0, nil })
		}, "use Decorate"},
		{"Func2Ctx, a later context", func() {
			Func2Ctx(func(ctx context.Context, id int, c2 context.Context) (int, error) { return id, nil })
		}, "use Decorate"},
	}
	for _, tc := range cases {
		msg := tyPanicMessage(t, tc.make)
		assert.True(t, strings.HasPrefix(msg, "memo: "), "%s: %q", tc.name, msg)
		assert.Contains(t, msg, "context.Context", tc.name)
		assert.Contains(t, msg, tc.use, tc.name)
	}
	assert.Equal(t,
		"memo: Func2 cannot memoize func(int, context.Context) int: its parameter 2 is a context.Context, which Func2 would make part of the key, so that no call would ever hit; use Decorate, which leaves a context.Context in any position out of the key",
		tyPanicMessage(t, func() { Func2(func(id int, ctx context.Context) int { return id }) }))
}

// Issue 9.2: the function sees the deadline of the caller that started
// the execution, and no deadline when that caller has none.
func TestRegressionExecutionSeesCallerDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		type seen struct {
			d  time.Time
			ok bool
		}
		saw := make(chan seen, 4)
		body := func(ctx context.Context, k int) (int, error) {
			d, ok := ctx.Deadline()
			saw <- seen{d, ok}
			return k, nil
		}
		for name, f := range map[string]func(context.Context, int) (int, error){
			"FuncCtx": FuncCtx(body), "Decorate": Decorate(body),
		} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			want, _ := ctx.Deadline()
			_, err := f(ctx, 1)
			cancel()
			require.NoError(t, err, name)
			s := <-saw
			assert.True(t, s.ok, "%s: a deadline", name)
			assert.True(t, want.Equal(s.d), "%s: the caller's deadline", name)

			_, err = f(context.Background(), 2)
			require.NoError(t, err, name)
			assert.False(t, (<-saw).ok, "%s: no deadline", name)
		}
	})
}

// A waiter with time left gets the right result after the starter's
// deadline killed the shared execution: it starts a fresh one. A waiter
// whose deadline is the same as the starter's gets the deadline error.
func TestRegressionWaiterOutlivesStartersDeadline(t *testing.T) {
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

// A deadline error of the function's own (its context still live) is the
// result like any error: waiters do not start over.
func TestFunctionsOwnDeadlineErrorIsShared(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var execs atomic.Int32
		f := FuncCtx(func(ctx context.Context, k int) (int, error) {
			execs.Add(1)
			inner, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			<-inner.Done()
			return 0, inner.Err()
		})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := f(ctx, 1)
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			})
		}
		wg.Wait()
		assert.EqualValues(t, 1, execs.Load())
	})
}

// A call whose key can never hit again runs on its own: a miss counted as
// Led (or Abandoned, its context already done), timed as an execution,
// and in Uncacheable.
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
