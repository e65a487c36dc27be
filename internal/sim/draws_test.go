package sim

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// TestReplaySeeded checks that a seeded replay is deterministic, that the
// seed changes W-TinyLFU's hits (its hash) and leaves LRU's alone (LRU
// hashes nothing).
func TestReplaySeeded(t *testing.T) {
	t.Parallel()
	keys := traces.Need(t, "lirs/ps.trace.gz")
	lru := Replay(policies.LRU, 200, keys)
	w1 := ReplaySeeded(policies.WTinyLFU, 200, keys, 1)
	assert.Equal(t, lru, ReplaySeeded(policies.LRU, 200, keys, 1), "LRU, seed 1")
	assert.Equal(t, lru, ReplaySeeded(policies.LRU, 200, keys, 2), "LRU, seed 2")
	assert.Equal(t, w1, ReplaySeeded(policies.WTinyLFU, 200, keys, 1), "W-TinyLFU, seed 1 again")
	assert.NotEqual(t, w1.Hits, ReplaySeeded(policies.WTinyLFU, 200, keys, 2).Hits, "W-TinyLFU, seeds 1 and 2")
}

// TestMatrixHashDraws replays the 29-row matrix through W-TinyLFU with
// eight draws of the hash (SeededHash, seeds 1 to 8) and prints, for each
// row, the spread of the hit ratio over the draws and how many fall more
// than 1.5 points below the best peer: what a memo cache's hit ratio may be
// for a key type whose encoding the policy has not been tuned on (issue 20,
// item 3). It checks nothing and takes minutes, so it runs only when
// MEMO_MATRIX is set: MEMO_MATRIX=1 go test -run TestMatrixHashDraws -v.
func TestMatrixHashDraws(t *testing.T) {
	if os.Getenv("MEMO_MATRIX") == "" {
		t.Skip("set MEMO_MATRIX=1 to replay the matrix over eight hash draws")
	}
	const draws = 8
	loaded := map[string][]uint64{}
	for _, r := range Matrix {
		if loaded[r.File] == nil {
			loaded[r.File] = traces.Need(t, r.File)
		}
	}
	res := make([][draws]float64, len(Matrix))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, r := range Matrix {
		for d := range draws {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				res[i][d] = ReplaySeeded(policies.WTinyLFU, r.Size, loaded[r.File], uint64(d+1)).HitRatio()
			})
		}
	}
	wg.Wait()
	var b strings.Builder
	b.WriteString("| trace@size | best peer | min | mean | max | draws below bar |\n|---|---|---|---|---|---|\n")
	var means [draws]float64
	var worst [draws]float64
	for i, r := range Matrix {
		lo, hi, sum, below := 100.0, 0.0, 0.0, 0
		for d, x := range res[i] {
			lo, hi, sum = min(lo, x), max(hi, x), sum+x
			if x < r.Best-1.5 {
				below++
			}
			means[d] += x / float64(len(Matrix))
			worst[d] = min(worst[d], x-r.Best)
		}
		fmt.Fprintf(&b, "| %s@%d | %.2f | %.2f | %.2f | %.2f | %d |\n", r.File, r.Size, r.Best, lo, sum/draws, hi, below)
	}
	b.WriteString("\n| draw | mean of 29 rows | worst row against its best peer |\n|---|---|---|\n")
	for d := range draws {
		fmt.Fprintf(&b, "| seed %d | %.2f | %+.2f |\n", d+1, means[d], worst[d])
	}
	fmt.Print(b.String())
}
