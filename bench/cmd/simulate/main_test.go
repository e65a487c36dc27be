package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// zipfKeys returns n requests over a skewed key space, deterministic.
func zipfKeys(n int) []uint64 {
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 8)), 1.2, 1, 2000)
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = z.Uint64()
	}
	return keys
}

// TestPeersHoldSizeAndOPTBoundsThem replays a skewed trace through every
// policy: the reference S3-FIFO and SIEVE never hold more than size, and
// no policy beats Belady's optimum.
func TestPeersHoldSizeAndOPTBoundsThem(t *testing.T) {
	keys := zipfKeys(20_000)
	const size = 100
	hits := map[string]int{}
	for _, name := range policyNames {
		c, done, err := newCache(name, size, keys)
		require.NoError(t, err, name)
		for _, k := range keys {
			if c.Access(k) {
				hits[name]++
			}
			switch c := c.(type) {
			case *s3fifo:
				require.LessOrEqual(t, len(c.index), size, "s3-fifo")
				require.Equal(t, len(c.index), c.small.n+c.main.n)
				require.LessOrEqual(t, len(c.ghost), len(c.ghostQ))
			case *sieve:
				require.LessOrEqual(t, len(c.index), size, "sieve")
			case *opt:
				require.LessOrEqual(t, len(c.nextOf), size, "opt")
			}
		}
		done()
	}
	for _, name := range policyNames {
		assert.Greater(t, hits[name], 0, name)
		assert.LessOrEqual(t, hits[name], hits["opt"], "%s beats OPT", name)
	}
	_, _, err := newCache("nope", size, keys)
	assert.Error(t, err)
}

func TestSieveAndS3FIFOByHand(t *testing.T) {
	// SIEVE, size 2: 1 2 1(hit, visited) 3 evicts 2 (1 is visited: cleared,
	// skipped), so 1 hits and 2 misses.
	s := newSieve(2)
	var got []bool
	for _, k := range []uint64{1, 2, 1, 3, 1, 2} {
		got = append(got, s.Access(k))
	}
	assert.Equal(t, []bool{false, false, true, false, true, false}, got)

	// S3-FIFO, size 10 (small 1): a key seen once goes to the ghost when the
	// small queue overflows; its next request goes straight to main.
	f := newS3FIFO(10)
	for k := range uint64(11) {
		f.Access(k + 1) // 11 fills past size: 1, the oldest, leaves for the ghost
	}
	_, inGhost := f.ghost[1]
	assert.True(t, inGhost)
	assert.False(t, f.Access(1))
	assert.Equal(t, 1, f.main.n, "a ghost hit goes to main")
	assert.True(t, f.Access(1))
}

// TestRun replays a small trace file at two sizes, prints the table and
// draws the charts.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for _, k := range zipfKeys(5000) {
		fmt.Fprintln(zw, k)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lirs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lirs", "z.trace.gz"), buf.Bytes(), 0o644))
	charts := filepath.Join(dir, "charts")
	var out, errOut bytes.Buffer
	err := run([]string{"-traces", dir, "-trace", "lirs/z.trace.gz", "-sizes", "50,200", "-charts", charts, "-policies", "memo-w-tinylfu,lru,s3-fifo,opt"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 5, out.String())
	assert.Equal(t, "| trace@size | memo-w-tinylfu | lru | s3-fifo | opt |", lines[0])
	num := regexp.MustCompile(`\d+\.\d\d`)
	for _, l := range lines[2:4] {
		vals := num.FindAllString(l, -1)
		require.Len(t, vals, 4, l)
		o, _ := strconv.ParseFloat(vals[3], 64)
		for _, v := range vals[:3] {
			f, _ := strconv.ParseFloat(v, 64)
			assert.LessOrEqual(t, f, o, l)
		}
	}
	for _, ext := range []string{".png", ".svg"} {
		fi, err := os.Stat(filepath.Join(charts, "lirs_z"+ext))
		require.NoError(t, err)
		assert.Positive(t, fi.Size())
	}
	assert.Error(t, run([]string{"-traces", dir, "-trace", "lirs/z.trace.gz"}, &out, &errOut), "no sizes")
	assert.Error(t, run([]string{"-traces", dir, "-policies", "nope"}, &out, &errOut))
}
