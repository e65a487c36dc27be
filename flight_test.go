package memo_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The same with a deadline, in a bubble: the waiter leaves exactly at its
// deadline, while the execution is still blocked.
func TestContextWaiterDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var execs atomic.Int32
		f := memo.Decorate(func(ctx context.Context) (int, error) {
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
	f := memo.Decorate(func(ctx context.Context, k int) (int, error) {
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

var errFlight = errors.New("flight test error")

func TestFlightErrorsReturnedToAllCallersNotStored(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var execs atomic.Int32
		f := memo.Decorate(func(k int) (int, error) {
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
		c := memo.CacheOf(f)
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
		f := memo.Decorate(func(k int) (int, error) {
			execs.Add(1)
			if fail.Load() {
				return 0, errFlight
			}
			return k, nil
		}, memo.WithErrorTTL(time.Minute))
		c := memo.CacheOf(f)

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

func TestPanicErrorUnwrap(t *testing.T) {
	t.Parallel()
	pe := &memo.PanicError{Value: errFlight}
	assert.ErrorIs(t, pe, errFlight)
	assert.NoError(t, (&memo.PanicError{Value: "text"}).Unwrap())
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

func (h *rfHandler) WithGroup(string) slog.Handler { return h }

// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestReentrantCallIsLogged(t *testing.T) {
	t.Parallel()
	h := &rfHandler{}
	var f func(int) int
	var first atomic.Bool
	first.Store(true)
	f = memo.Decorate(func(n int) int {
		if first.CompareAndSwap(true, false) {
			return f(n) + 1
		}
		return n
	}, memo.WithLogger(slog.New(h)), memo.WithName("reentrant"))
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

// Issue 9.2: the function sees the deadline of the caller that started
// the execution, and no deadline when that caller has none.
func TestExecutionSeesCallerDeadline(t *testing.T) {
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
			"FuncCtx": memo.FuncCtx(body), "Decorate": memo.Decorate(body),
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

// A deadline error of the function's own (its context still live) is the
// result like any error: waiters do not start over.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestFunctionsOwnDeadlineErrorIsShared(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var execs atomic.Int32
		f := memo.FuncCtx(func(ctx context.Context, k int) (int, error) {
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

// Coalesced counted callers when they joined an execution, also those that
// left before it finished (their context ended) and so were not served.
func TestCoalescedCountsOnlyServedCallers(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		f := memo.Decorate(func(ctx context.Context, k int) (int, error) {
			<-release
			return k, nil
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			v, err := f(context.Background(), 1)
			assert.NoError(t, err)
			assert.Equal(t, 1, v)
		}()
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		left := make(chan error)
		go func() {
			_, err := f(ctx, 1)
			left <- err
		}()
		served := make(chan struct{})
		go func() {
			defer close(served)
			v, err := f(context.Background(), 1)
			assert.NoError(t, err)
			assert.Equal(t, 1, v)
		}()
		synctest.Wait()
		cancel()
		assert.ErrorIs(t, <-left, context.Canceled)
		close(release)
		<-done
		<-served
		st := memo.CacheOf(f).Stats()
		assert.Equal(t, uint64(3), st.Misses)
		assert.Equal(t, uint64(1), st.Coalesced, "only the caller that got the result")
	})
}
