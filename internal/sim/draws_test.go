package sim

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
// several draws of the hash (SeededHash, seeds 1 to 8 unless MEMO_DRAWS
// gives another count) and prints, for each row, the spread of the hit
// ratio over the draws and how many fall more than 1.5 points below the
// best peer, then each draw's mean over the rows: what a memo cache's hit
// ratio may be for a key type whose encoding the policy has not been tuned
// on (issue 20, item 3). MEMO_ROWS, a comma-separated list of substrings
// of "file@size", replays only the rows that match one ("cs.trace.gz@500,
// P3"). It checks nothing and takes tens of seconds, so it runs only when
// MEMO_MATRIX is set: MEMO_MATRIX=1 go test -run TestMatrixHashDraws -v.
func TestMatrixHashDraws(t *testing.T) {
	if os.Getenv("MEMO_MATRIX") == "" {
		t.Skip("set MEMO_MATRIX=1 to replay the matrix over draws of the hash")
	}
	draws := 8
	if v := os.Getenv("MEMO_DRAWS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "MEMO_DRAWS")
		require.Positive(t, n, "MEMO_DRAWS")
		draws = n
	}
	rows := matrixRows(os.Getenv("MEMO_ROWS"))
	require.NotEmpty(t, rows, "MEMO_ROWS=%q matches no row", os.Getenv("MEMO_ROWS"))
	loaded := map[string][]uint64{}
	for _, r := range rows {
		if loaded[r.File] == nil {
			loaded[r.File] = traces.Need(t, r.File)
		}
	}
	res := make([][]float64, len(rows))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, r := range rows {
		res[i] = make([]float64, draws)
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
	means := make([]float64, draws)
	worst := make([]float64, draws)
	var all float64
	for i, r := range rows {
		lo, hi, sum, below := 100.0, 0.0, 0.0, 0
		for d, x := range res[i] {
			lo, hi, sum = min(lo, x), max(hi, x), sum+x
			if x < r.Best-1.5 {
				below++
			}
			means[d] += x / float64(len(rows))
			worst[d] = min(worst[d], x-r.Best)
		}
		all += sum / float64(draws*len(rows))
		fmt.Fprintf(&b, "| %s@%d | %.2f | %.2f | %.2f | %.2f | %d |\n", r.File, r.Size, r.Best, lo, sum/float64(draws), hi, below)
	}
	fmt.Fprintf(&b, "| mean of %d rows | | %.2f | %.3f | %.2f | |\n", len(rows), slices.Min(means), all, slices.Max(means))
	fmt.Fprintf(&b, "\n| draw | mean of %d rows | worst row against its best peer |\n|---|---|---|\n", len(rows))
	for d := range draws {
		fmt.Fprintf(&b, "| seed %d | %.2f | %+.2f |\n", d+1, means[d], worst[d])
	}
	fmt.Print(b.String())
}

// matrixRows returns the rows of Matrix whose "file@size" contains one of
// the comma-separated substrings of filter; all of them for an empty
// filter.
func matrixRows(filter string) []MatrixRow {
	if filter == "" {
		return Matrix
	}
	var rows []MatrixRow
	for _, r := range Matrix {
		name := fmt.Sprintf("%s@%d", r.File, r.Size)
		if slices.ContainsFunc(strings.Split(filter, ","), func(f string) bool { return f != "" && strings.Contains(name, f) }) {
			rows = append(rows, r)
		}
	}
	return rows
}

// TestMatrixRows checks MEMO_ROWS' filter: empty selects every row, a
// substring every row whose "file@size" holds it, a list their union.
func TestMatrixRows(t *testing.T) {
	t.Parallel()
	assert.Len(t, matrixRows(""), len(Matrix))
	assert.Len(t, matrixRows("cs.trace.gz@500"), 1)
	assert.Len(t, matrixRows("P3"), 2)
	assert.Len(t, matrixRows("cs.trace.gz@500,P3,"), 3)
	assert.Empty(t, matrixRows("nothing"))
}
