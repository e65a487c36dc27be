package redistier

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cross-process batch functions (issue 21, item 3): a function memoized
// by memo.Batch with a tier shares its per-key entries across replicas;
// the keys a batch misses are read together and their leases taken
// together, so that a cold batch across replica processes with
// overlapping keys runs each key once in all.

const (
	batchKeys       = 60 // the key space
	batchSize       = 12 // keys per batch call
	batchGoroutines = 8  // per process
	batchRounds     = 5  // batch calls per goroutine
)

// batchChild is the child mode "batch": it prints "ready", waits for a
// line on stdin, then batchGoroutines goroutines each make batchRounds
// calls of batchSize overlapping keys; it prints the keys fn was given
// and its calls ("keys K calls C bad B (local runs L, ...)").
func batchChild(tier *Tier, name string) {
	var keys, calls atomic.Int64
	f := memo.Batch(func(_ context.Context, ks []int) (map[int]string, error) {
		calls.Add(1)
		keys.Add(int64(len(ks)))
		time.Sleep(20 * time.Millisecond) // a slow source widens every race window
		m := make(map[int]string, len(ks))
		for _, k := range ks {
			m[k] = "v" + strconv.Itoa(k)
		}
		return m, nil
	}, memo.WithName(name), memo.WithTier(tier))
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range batchGoroutines {
		wg.Go(func() {
			for r := range batchRounds {
				ks := make([]int, batchSize)
				for i := range ks {
					ks[i] = (g*5 + r*11 + i*3) % batchKeys
				}
				got, err := f(context.Background(), ks)
				if err != nil {
					bad.Add(1)
					continue
				}
				for _, k := range ks {
					if got[k] != "v"+strconv.Itoa(k) {
						bad.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	st := tier.Stats()
	fmt.Printf("keys %d calls %d bad %d (local runs %d, errors %d, breaker opened %d, lease waits %d)\n",
		keys.Load(), calls.Load(), bad.Load(), st.LocalRuns, st.Errors, st.BreakerOpened, st.LeaseWaits)
}

// The acceptance scenario of issue 21's item 3: 4 replica processes,
// each with 8 goroutines making overlapping batch calls on 60 cold keys,
// all at once. Each key is loaded once in all (but for calls that ran
// locally because the tier failed open: local runs), every caller gets
// every value, and fn is called with batches, not one key at a time.
func TestCrossProcessBatchRunsEachKeyOnce(t *testing.T) {
	flushAll(t)
	const procs = 4
	children := make([]*child, procs)
	for i := range children {
		children[i] = startChild(t, "batch", srv)
	}
	for _, c := range children {
		require.Equal(t, "ready", c.line(t))
	}
	for _, c := range children { // go, all at once
		_, err := io.WriteString(c.stdin, "go\n")
		require.NoError(t, err)
	}
	keys, calls, locals := 0, 0, 0
	for i, c := range children {
		var k, n, bad, local, errs, opened int
		l := c.line(t)
		_, err := fmt.Sscanf(l, "keys %d calls %d bad %d (local runs %d, errors %d, breaker opened %d", &k, &n, &bad, &local, &errs, &opened)
		require.NoError(t, err, l)
		assert.Zero(t, bad, "child %d returned a wrong value or an error", i)
		assert.Zero(t, opened, "child %d opened its breaker: it stopped sharing", i)
		t.Logf("child %d: %d keys in %d calls of fn: %s", i, k, n, l)
		keys += k
		calls += n
		locals += local
	}
	assert.GreaterOrEqual(t, keys, batchKeys, "every key was loaded")
	assert.LessOrEqual(t, keys, batchKeys+locals, "%d processes on %d cold keys: each key loaded once in all, but for local runs", procs, batchKeys)
	assert.Less(t, calls, keys, "fn was given batches, not one key per call")
}
