package memo

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
)

// TestBatchAndSingleShareKeys races a Batch function and its Single
// form over overlapping keys, with contexts that can never end (their
// leaders run inline, their records' Done made only when joined) and
// cancellable ones, while Invalidate drops keys in flight: every value
// returned must be its own key's, and no statistic is lost.
func TestBatchAndSingleShareKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const keys, workers, rounds = 24, 4, 300
		b := Batch(func(ctx context.Context, ks []int) (map[int]string, error) {
			out := make(map[int]string, len(ks))
			for _, k := range ks {
				if k%7 != 3 { // some keys absent
					out[k] = "v" + string(rune('a'+k))
				}
			}
			return out, nil
		}, WithMaxSize(8))
		one := Single(b)
		var wg sync.WaitGroup
		for g := range workers {
			wg.Go(func() {
				x := uint64(g + 5)
				for range rounds {
					x = x*6364136223846793005 + 1442695040888963407
					k := int(x>>33) % keys
					ctx := context.Background()
					var cancel context.CancelFunc
					if x>>62 == 0 {
						ctx, cancel = context.WithCancel(ctx)
						go cancel()
					}
					if x>>60&3 == 1 {
						Invalidate(b, k)
					}
					if x>>59&1 == 0 {
						v, err := one(ctx, k)
						switch {
						case err == nil && (k%7 == 3 || v != "v"+string(rune('a'+k))):
							t.Errorf("Single(%d) = %q", k, v)
						case err != nil && ctx.Err() == nil && k%7 != 3:
							t.Errorf("Single(%d): %v", k, err)
						}
					} else {
						ks := []int{k, (k + 1) % keys, (k + 5) % keys}
						m, err := b(ctx, ks)
						if err != nil && ctx.Err() == nil {
							t.Errorf("Batch(%v): %v", ks, err)
						}
						for kk, v := range m {
							if kk%7 == 3 || v != "v"+string(rune('a'+kk)) {
								t.Errorf("Batch(%v)[%d] = %q", ks, kk, v)
							}
						}
					}
					if cancel != nil {
						cancel()
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		assert.Zero(t, CacheOf(b).Stats().Pending())
	})
}
