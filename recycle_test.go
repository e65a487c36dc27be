package memo

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecycledCallsNeverCross hammers the miss path whose in-flight
// records are recycled (engine.Core.Recycle) with everything that can
// still touch a Call around its end: joiners, Invalidate and Delete of the
// key in flight, Clear, re-entrant calls for the same key and nested calls
// for other keys from inside an execution (so a record is recycled and
// reused while its caller's own execution runs), panics and
// runtime.Goexit. Every result must be its own key's: a recycled record
// read by anyone after its reuse would hand one key's result to another.
func TestRecycledCallsNeverCross(t *testing.T) {
	const keys, workers, rounds = 48, 8, 1500
	var f func(int) int
	var panics atomic.Int64
	var reentering atomic.Bool // one re-entrant call at a time, one deep
	f = Func(func(k int) int {
		switch {
		case k%11 == 0 && panics.Add(1)%3 == 0:
			panic("boom " + strconv.Itoa(k))
		case k%13 == 0 && reentering.CompareAndSwap(false, true):
			// Re-entrant: runs on its own, unstored.
			r := f(k)
			reentering.Store(false)
			if r != 7*k+1 {
				panic("re-entrant call got " + strconv.Itoa(r))
			}
		case k%5 == 0:
			// A nested miss for other keys, led here: its record is
			// recycled and reused while this execution runs.
			for j := 1; j <= 3; j++ {
				if r := f(k + j); r != 7*(k+j)+1 {
					panic("nested call got " + strconv.Itoa(r))
				}
			}
		}
		return 7*k + 1
	}, WithMaxSize(8))
	c := CacheOf(f)
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			x := uint64(g + 1)
			for range rounds {
				x = x*6364136223846793005 + 1442695040888963407
				k := int(x>>33) % keys
				switch x >> 60 {
				case 0:
					Invalidate(f, k)
				case 1:
					c.Delete(k) // not f's key shape: a no-op, but it takes the locks
				case 2:
					if x>>58&3 == 0 {
						c.Clear()
					}
				}
				func() {
					defer func() {
						if r := recover(); r != nil {
							for { // a nested call's joiner wraps the panic it got again
								pe, ok := r.(*PanicError)
								if !ok {
									break
								}
								r = pe.Value
							}
							s, _ := r.(string)
							if !strings.HasPrefix(s, "boom ") {
								wrong.Add(1)
								t.Errorf("f(%d) panicked with %v", k, r)
							} else if s != "boom "+strconv.Itoa(k) && !nestedBoom(s, k) {
								wrong.Add(1)
								t.Errorf("f(%d) panicked with another key's panic: %v", k, r)
							}
						}
					}()
					if r := f(k); r != 7*k+1 {
						wrong.Add(1)
						t.Errorf("f(%d) = %d, want %d", k, r, 7*k+1)
					}
				}()
			}
		})
	}
	wg.Wait()
	assert.Zero(t, wrong.Load())
}

// nestedBoom reports whether s is the panic of a key that f(k) calls
// nested (k+1..k+3 when k%5 == 0).
func nestedBoom(s string, k int) bool {
	if k%5 != 0 {
		return false
	}
	for j := 1; j <= 3; j++ {
		if s == "boom "+strconv.Itoa(k+j) {
			return true
		}
	}
	return false
}

// TestRecycledStringCalls is the probe above for string keys, short
// (kept in the recycled record's own bytes) and longer than 24 bytes (not
// pooled), through Func and through a FuncCtx whose callers mix a context
// that can never end (the leader runs inline, with a context carrying the
// record) and one that is cancelled before or while it leads or waits; then that no statistic
// was lost.
func TestRecycledStringCalls(t *testing.T) {
	// In a bubble, so that synctest.Wait can wait for the executions that
	// callers left, which go on after them.
	synctest.Test(t, testReviewRecycledStringCalls)
}

func testReviewRecycledStringCalls(t *testing.T) {
	const keys, workers, rounds = 40, 6, 1200
	key := func(i int) string {
		if i%2 == 0 {
			return "k" + strconv.Itoa(i) // 9+2..3 bytes: pooled
		}
		return strings.Repeat("long-key-", 3) + strconv.Itoa(i) // over 24
	}
	want := func(s string) string { return "<" + s + ">" }
	f := Func(func(s string) string { return want(s) }, WithMaxSize(6))
	fc := FuncCtx(func(ctx context.Context, s string) (string, error) {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return want(s), nil
	}, WithMaxSize(6))
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			x := uint64(g + 11)
			for range rounds {
				x = x*6364136223846793005 + 1442695040888963407
				k := key(int(x>>33) % keys)
				if x>>61 == 0 {
					Invalidate(f, k)
					Invalidate(fc, k)
				}
				if got := f(k); got != want(k) {
					t.Errorf("f(%q) = %q", k, got)
				}
				ctx := context.Background()
				var cancel context.CancelFunc
				if x>>59&1 == 1 {
					ctx, cancel = context.WithCancel(ctx)
					switch x >> 57 & 3 {
					case 0:
						cancel() // ended already: the cancelled answer
					case 1:
						go cancel() // ends while the call leads or waits, or not before it returns
					}
				}
				got, err := fc(ctx, k)
				if cancel != nil {
					cancel()
				}
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("fc(%q): %v", k, err)
					}
					continue
				}
				if got != want(k) {
					t.Errorf("fc(%q) = %q", k, got)
				}
			}
		})
	}
	wg.Wait()
	synctest.Wait() // the executions abandoned by their leaders have ended
	// No statistic lost: every call is a hit or a miss, every miss ended
	// one way, and every execution was led by a caller that got it or left.
	for name, fn := range map[string]any{"Func": f, "FuncCtx": fc} {
		st := CacheOf(fn).Stats()
		assert.Equal(t, uint64(workers*rounds), st.Hits+st.Misses, "%s: Hits+Misses", name)
		assert.Zero(t, st.Pending(), "%s: Pending", name)
		assert.Equal(t, st.TotalCalls, st.Led+st.AbandonedLeaders, "%s: TotalCalls", name)
	}
}

// TestGoexitLeaderNotRecycled: a leader whose function calls
// runtime.Goexit ends its goroutine while a caller waits on its
// execution; the record must not be recycled under the joiner, which
// panics with a *PanicError, and later calls for the key and others (whose
// records come from the pool) get their own results.
func TestGoexitLeaderNotRecycled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		entered := make(chan struct{})
		var calls atomic.Int64
		f := Func(func(k int) int {
			if calls.Add(1) == 1 {
				close(entered)
				<-release
				runtime.Goexit()
			}
			return k + 100
		}, WithMaxSize(4))
		done := make(chan struct{})
		go func() {
			defer close(done)
			f(1)
		}()
		<-entered
		joiner := make(chan any, 1)
		go func() {
			defer func() { joiner <- recover() }()
			f(1)
		}()
		synctest.Wait() // the joiner waits
		close(release)
		<-done
		j := <-joiner
		require.IsType(t, (*PanicError)(nil), j)
		for k := range 50 {
			require.Equal(t, k+100, f(k))
		}
		assert.Equal(t, 101, f(1))
		assert.Zero(t, CacheOf(f).Stats().Pending())
	})
}
