package memo_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every result must belong to its argument, under eviction, TTL expiry,
// Invalidate, Clear and context cancellation, on both the reflective and the
// typed paths.
func TestStressNoWrongHit(t *testing.T) {
	for _, pol := range []policies.Kind{policies.LRU, policies.LFU, policies.WTinyLFU} {
		t.Run(pol.String(), func(t *testing.T) {
			var bad atomic.Int64
			dec := memo.Decorate(func(ctx context.Context, x int, s string) (string, error) {
				return fmt.Sprint(x, s), nil
			}, memo.WithMaxSize(8), memo.WithPolicy(pol), memo.WithTTL(time.Millisecond))
			typ := memo.Func2(func(x int, s string) string { return fmt.Sprint(x, s) },
				memo.WithMaxSize(8), memo.WithPolicy(pol))
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 3000 {
						x, s := (i*7+g)%23, fmt.Sprint((i+g)%3)
						ctx := context.Background()
						var cancel context.CancelFunc = func() {}
						if i%5 == 0 {
							ctx, cancel = context.WithCancel(ctx)
							if i%10 == 0 {
								cancel()
							}
						}
						r, err := dec(ctx, x, s)
						cancel()
						if err == nil && r != fmt.Sprint(x, s) {
							bad.Add(1)
						}
						if typ(x, s) != fmt.Sprint(x, s) {
							bad.Add(1)
						}
						switch i % 97 {
						case 0:
							memo.Invalidate(dec, x, s)
							memo.Invalidate(typ, x, s)
						case 1:
							memo.CacheOf(dec).Clear()
						}
					}
				}()
			}
			wg.Wait()
			require.Zero(t, bad.Load())
			assert.LessOrEqual(t, memo.CacheOf(dec).Len(), 8)
		})
	}
}

// After Invalidate returns, no caller may get a result computed before it.
func TestStressInvalidateNotStale(t *testing.T) {
	var version atomic.Int64
	f := memo.Decorate(func(x int) int64 { return version.Load() })
	var stale atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f(1)
			}
		}()
	}
	for range 3000 {
		v := version.Add(1)
		memo.Invalidate(f, 1)
		if got := f(1); got < v {
			stale.Add(1)
		}
	}
	close(stop)
	wg.Wait()
	assert.Zero(t, stale.Load())
}
