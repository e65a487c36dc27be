package redistier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Adversarial probes of Batch over the Redis tier: each fails if the bug
// it names is there.

// liveCtx returns a context that ends after hangAfter (a liveness bound).
func liveCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
	t.Cleanup(cancel)
	return ctx
}

// Two replicas of one batch function share per-key entries through the
// tier: what replica A's Batch loaded, replica B's Batch and Single read
// without calling fn, and the key B adds is then read by A's Single.
func TestBatchProbeTierSharesEntriesAcrossForms(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var calls atomic.Int64
	fn := func(_ context.Context, ks []int) (map[int]string, error) {
		calls.Add(1)
		m := map[int]string{}
		for _, k := range ks {
			m[k] = fmt.Sprint("v", k)
		}
		return m, nil
	}
	fa := memo.Batch(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Batch(fn, memo.WithName(t.Name()), memo.WithTier(b))
	got, err := fa(liveCtx(t), []int{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: "v1", 2: "v2", 3: "v3"}, got)
	require.EqualValues(t, 1, calls.Load())
	got, err = fb(liveCtx(t), []int{3, 2})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{2: "v2", 3: "v3"}, got)
	v, err := memo.Single(fb)(liveCtx(t), 1)
	require.NoError(t, err)
	assert.Equal(t, "v1", v)
	assert.EqualValues(t, 1, calls.Load(), "replica B ran fn for keys A had stored in the tier")
	v, err = memo.Single(fb)(liveCtx(t), 4)
	require.NoError(t, err)
	assert.Equal(t, "v4", v)
	got, err = fa(liveCtx(t), []int{4, 1})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: "v1", 4: "v4"}, got)
	assert.EqualValues(t, 2, calls.Load())
}

// Two different batch functions (different names) on one tier, with the
// same keys, never read each other's values.
func TestBatchProbeTierKeepsFunctionsApart(t *testing.T) {
	flushAll(t)
	tier := newTier(t, srv)
	mk := func(p string) func(context.Context, []int) (map[int]string, error) {
		return func(_ context.Context, ks []int) (map[int]string, error) {
			m := map[int]string{}
			for _, k := range ks {
				m[k] = fmt.Sprint(p, k)
			}
			return m, nil
		}
	}
	fa := memo.Batch(mk("a"), memo.WithName(t.Name()+"/a"), memo.WithTier(tier))
	fb := memo.Batch(mk("b"), memo.WithName(t.Name()+"/b"), memo.WithTier(newTier(t, srv)))
	for range 2 {
		got, err := fa(liveCtx(t), []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "a1", 2: "a2"}, got)
		got, err = fb(liveCtx(t), []int{1, 2})
		require.NoError(t, err)
		assert.Equal(t, map[int]string{1: "b1", 2: "b2"}, got)
	}
}

// A panic in fn under a tier fails the keys with a *PanicError and is
// never stored, not even with WithErrorTTL (a panic is never stored): the
// next call gets the values.
func TestBatchProbeTierPanicNotStored(t *testing.T) {
	for name, opts := range map[string][]memo.Option{
		"plain":        nil,
		"WithErrorTTL": {memo.WithErrorTTL(hangAfter)},
	} {
		t.Run(name, func(t *testing.T) {
			flushAll(t)
			var calls atomic.Int64
			fn := func(_ context.Context, ks []int) (map[int]string, error) {
				if calls.Add(1) == 1 {
					panic("boom")
				}
				m := map[int]string{}
				for _, k := range ks {
					m[k] = fmt.Sprint("v", k)
				}
				return m, nil
			}
			f := memo.Batch(fn, append([]memo.Option{memo.WithName(t.Name()), memo.WithTier(newTier(t, srv))}, opts...)...)
			_, err := f(liveCtx(t), []int{1, 2})
			var pe *memo.PanicError
			require.ErrorAs(t, err, &pe)
			got, err := f(liveCtx(t), []int{1, 2})
			require.NoError(t, err, "a panic was stored as the keys' error")
			assert.Equal(t, map[int]string{1: "v1", 2: "v2"}, got)
			v, err := memo.Single(f)(liveCtx(t), 2)
			require.NoError(t, err)
			assert.Equal(t, "v2", v)
			// Another replica does not read the panic from the tier either.
			g := memo.Batch(fn, append([]memo.Option{memo.WithName(t.Name()), memo.WithTier(newTier(t, srv))}, opts...)...)
			got, err = g(liveCtx(t), []int{1, 2})
			require.NoError(t, err, "another replica read the panic")
			assert.Equal(t, map[int]string{1: "v1", 2: "v2"}, got)
		})
	}
}

// When every caller of a tiered batch call has left, fn's context is
// cancelled (Batch's doc: the execution is cancelled only when every
// caller waiting on any key of it has gone, and then it is), so that fn
// ends, its keys' leases go, and a later caller gets the values rather
// than wait on a lease held by an execution nobody wants.
func TestBatchProbeTierCallerLeaves(t *testing.T) {
	flushAll(t)
	started := make(chan struct{})
	ended := make(chan struct{})
	unstick := make(chan struct{}) // frees fn if its context is never cancelled
	t.Cleanup(func() { close(unstick) })
	var once sync.Once
	var calls atomic.Int64
	fn := func(ctx context.Context, ks []int) (map[int]string, error) {
		if calls.Add(1) == 1 {
			once.Do(func() { close(started) })
			select {
			case <-ctx.Done():
				close(ended)
				return nil, ctx.Err()
			case <-unstick:
				return nil, errors.New("never cancelled")
			}
		}
		m := map[int]string{}
		for _, k := range ks {
			m[k] = fmt.Sprint("v", k)
		}
		return m, nil
	}
	f := memo.Batch(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)))
	ctx, cancel := context.WithCancel(liveCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := f(ctx, []int{1, 2, 3})
		done <- err
	}()
	<-started
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	select {
	case <-ended:
	case <-time.After(probeHang):
		t.Fatal("fn's context was not cancelled although every caller had left: the execution runs on, holding its keys' leases")
	}
	got, err := f(liveCtx(t), []int{1, 2, 3})
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: "v1", 2: "v2", 3: "v3"}, got)
}

// probeHang bounds a probe's wait for an event that follows at once when
// the code is right: a liveness bound, shorter than hangAfter so that a
// failing probe fails soon.
const probeHang = 20 * time.Second

// Two replicas, each with 6 goroutines making seeded Batch and Single
// calls over 30 keys through the tier, some with contexts that end early:
// every value returned is its key's, every error is the caller's own
// cancellation, nobody hangs, nothing races or leaks.
func TestBatchProbeTierMixedStress(t *testing.T) {
	flushAll(t)
	fn := func(ctx context.Context, ks []int) (map[int]string, error) {
		m := map[int]string{}
		for _, k := range ks {
			m[k] = fmt.Sprint("v", k)
		}
		return m, nil
	}
	reps := []func(context.Context, []int) (map[int]string, error){
		memo.Batch(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)), memo.WithMaxBatch(5)),
		memo.Batch(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)), memo.WithMaxBatch(5)),
	}
	var wg sync.WaitGroup
	for r, f := range reps {
		one := memo.Single(f)
		for g := range 6 {
			wg.Go(func() {
				seed := uint64(r*100+g)*0x9e3779b97f4a7c15 + 1
				rnd := func(n int) int {
					seed ^= seed << 13
					seed ^= seed >> 7
					seed ^= seed << 17
					return int(seed % uint64(n))
				}
				for range 40 {
					ctx := liveCtx(t)
					var cancel context.CancelFunc
					short := rnd(4) == 0
					if short {
						ctx, cancel = context.WithCancel(ctx)
						go cancel()
					}
					if rnd(3) == 0 {
						k := rnd(30)
						v, err := one(ctx, k)
						if err != nil {
							assert.True(t, short && errors.Is(err, context.Canceled), "key %d: %v", k, err)
						} else {
							assert.Equal(t, fmt.Sprint("v", k), v)
						}
					} else {
						ks := make([]int, 1+rnd(12))
						for i := range ks {
							ks[i] = rnd(30)
						}
						got, err := f(ctx, ks)
						if err != nil {
							assert.True(t, short && errors.Is(err, context.Canceled), "%v: %v", ks, err)
						} else {
							for _, k := range ks {
								assert.Equal(t, fmt.Sprint("v", k), got[k])
							}
						}
					}
					if cancel != nil {
						cancel()
					}
				}
			})
		}
	}
	wg.Wait()
}
