package memo

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInlineLeaderInvalidatedWithLeavingJoiner: a FuncCtx caller
// whose context can never end leads on its own goroutine (its record's
// Done made only when someone joins). A joiner with a cancellable context
// joins, then leaves; Invalidate detaches the execution; a second caller
// then leads a fresh execution of the key. The first leader must get its
// own result, which is not stored; the fresh execution's is; nothing is
// served from the detached execution afterwards, and no statistic is
// lost.
func TestInlineLeaderInvalidatedWithLeavingJoiner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		entered := make(chan int64, 2)
		release := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		f := FuncCtx(func(ctx context.Context, k string) (int64, error) {
			g := gen.Add(1)
			entered <- g
			<-release[g-1]
			return g, nil
		})
		first := make(chan int64, 1)
		go func() {
			v, err := f(context.Background(), "k")
			assert.NoError(t, err)
			first <- v
		}()
		require.Equal(t, int64(1), <-entered)
		jctx, cancel := context.WithCancel(context.Background())
		joined := make(chan error, 1)
		go func() {
			_, err := f(jctx, "k")
			joined <- err
		}()
		synctest.Wait() // the joiner waits on the first execution
		cancel()
		assert.ErrorIs(t, <-joined, context.Canceled)
		assert.False(t, Invalidate(f, "k"), "no entry yet")
		second := make(chan int64, 1)
		go func() {
			v, err := f(context.Background(), "k")
			assert.NoError(t, err)
			second <- v
		}()
		require.Equal(t, int64(2), <-entered, "the second caller joined the detached execution")
		close(release[0])
		assert.Equal(t, int64(1), <-first)
		close(release[1])
		assert.Equal(t, int64(2), <-second)
		v, err := f(context.Background(), "k")
		require.NoError(t, err)
		assert.Equal(t, int64(2), v, "the detached execution's result was stored over the fresh one's")
		st := CacheOf(f).Stats()
		assert.Zero(t, st.Pending())
		assert.Equal(t, uint64(2), st.TotalCalls)
		assert.Equal(t, st.TotalCalls, st.Led+st.AbandonedLeaders)
		assert.Equal(t, uint64(1), st.Abandoned)
	})
}

// TestInlineLeaderReentrantWithContext: inside an inline execution
// (a context that can never end), a call for the same key with the
// execution's context runs on its own rather than waiting, and a call
// through context.WithoutCancel of that context (its Done nil too) does
// as well; a call for another key leads and recycles its record. Nothing
// deadlocks, and the results are each key's.
func TestInlineLeaderReentrantWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f func(context.Context, int) (int, error)
		var depth atomic.Int32
		f = FuncCtx(func(ctx context.Context, k int) (int, error) {
			if k < 100 && depth.Add(1) == 1 {
				defer depth.Add(-1)
				for _, c := range []context.Context{ctx, context.WithoutCancel(ctx)} {
					if v, err := f(c, k); err != nil || v != k*3 {
						return 0, errors.New("re-entrant call: wrong result")
					}
					if v, err := f(c, k+100); err != nil || v != (k+100)*3 {
						return 0, errors.New("nested call: wrong result")
					}
				}
			}
			return k * 3, nil
		})
		for k := range 20 {
			v, err := f(context.Background(), k)
			require.NoError(t, err)
			require.Equal(t, 3*k, v)
		}
		for k := range 20 {
			v, err := f(context.Background(), k+100)
			require.NoError(t, err)
			require.Equal(t, 3*(k+100), v)
		}
	})
}
