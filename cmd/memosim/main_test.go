package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun replays the shipped traces, as go run ./cmd/memosim does on a
// fresh clone.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, "", "1000", false))
	assert.Contains(t, out.String(), "| lirs/gli.trace | 6015 | 1000 | 50.82 | 11.21 | 31.34 |\n")
	assert.Contains(t, out.String(), "| arc/OLTP.lis | 914145 | 1000 | 41.56 | 32.83 | 13.83 |\n")
	assert.True(t, strings.HasPrefix(out.String(), "| trace | requests | size | W-TinyLFU hit % | LRU hit % | LFU hit % |\n"))
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes(" 10, 20 ,30")
	require.NoError(t, err)
	assert.Equal(t, []int{10, 20, 30}, got)
	got, err = parseSizes("")
	require.NoError(t, err)
	assert.Nil(t, got)
	for _, bad := range []string{"0", "-1", "a", "10,,20"} {
		_, err := parseSizes(bad)
		assert.Error(t, err, bad)
	}
}

func gzipFile(t *testing.T, path, text string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(text))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// TestRunFolder: -traces reads the traces from a folder instead.
func TestRunFolder(t *testing.T) {
	dir := t.TempDir()
	gzipFile(t, filepath.Join(dir, "lirs", "tiny.trace.gz"), "1\n2\n1\n")
	gzipFile(t, filepath.Join(dir, "arc", "OLTP.lis.gz"), "5 2 0 0\n5 1 0 1\n")
	var out bytes.Buffer
	require.NoError(t, run(&out, dir, "2", false))
	assert.Equal(t, "| trace | requests | size | W-TinyLFU hit % | LRU hit % | LFU hit % |\n|---|---:|---:|---:|---:|---:|\n"+
		"| lirs/tiny.trace | 3 | 2 | 33.33 | 33.33 | 33.33 |\n"+
		"| arc/OLTP.lis | 3 | 2 | 33.33 | 33.33 | 33.33 |\n", out.String())

	err := run(&out, t.TempDir(), "", false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no lirs/*.trace.gz")
}

// TestRunP3: arc/P3 is not shipped; without a folder holding it, -p3 says
// where to put it.
func TestRunP3(t *testing.T) {
	t.Setenv("MEMO_TRACES", t.TempDir())
	err := run(io.Discard, "", "10", true)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "arc/P3.lis.gz is not shipped")
}
