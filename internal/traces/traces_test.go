package traces

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeGzip(t *testing.T, name string, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

func TestEach(t *testing.T) {
	t.Parallel()
	be := func(words ...any) []byte {
		var b bytes.Buffer
		for _, w := range words {
			require.NoError(t, binary.Write(&b, binary.BigEndian, w))
		}
		return b.Bytes()
	}
	tests := []struct {
		name   string
		format Format
		data   []byte
		want   []uint64
	}{
		{"arc", ARC, []byte("5 3 0 0\n\n1 1 0 1\r\n7 0 0 2\n"), []uint64{5, 6, 7, 1}},
		{"lirs", LIRS, []byte("3\n*\n\n 4 \n3\r\n*\n"), []uint64{3, 4, 3}},
		{"int64", Int64, be(int64(1), int64(-1), int64(1<<40)), []uint64{1, 1<<64 - 1, 1 << 40}},
		{"int32", Int32, be(int32(2), int32(-2)), []uint64{2, 1<<64 - 2}},
		{"uint32", Uint32, be(uint32(2), uint32(1<<32-2)), []uint64{2, 1<<32 - 2}},
		{"empty", Int64, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeGzip(t, tt.name+".gz", tt.data)
			got, err := Load(path, tt.format)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEachErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format Format
		data   []byte
		errMsg string
	}{
		{"arc-short", ARC, []byte("1 1 0 0\n5\n"), "line 2"},
		{"arc-word", ARC, []byte("x 1 0 0\n"), "line 1"},
		{"lirs-word", LIRS, []byte("1\n2\nthree\n"), "line 3"},
		{"int64-fragment", Int64, []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, "fragment"},
		{"format", Format(99), nil, "unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeGzip(t, tt.name+".gz", tt.data)
			err := Each(path, tt.format, func(uint64) {})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.errMsg)
		})
	}
	t.Run("not-gzip", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "plain")
		require.NoError(t, os.WriteFile(path, []byte("1\n2\n"), 0o644))
		require.Error(t, Each(path, LIRS, func(uint64) {}))
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		require.Error(t, Each(filepath.Join(t.TempDir(), "nope.gz"), LIRS, func(uint64) {}))
	})
}

func TestFormatOf(t *testing.T) {
	t.Parallel()
	tests := map[string]Format{
		"traces/arc/OLTP.lis.gz":                            ARC,
		"traces/arc/P3.lis":                                 ARC,
		"traces/lirs/gli.trace.gz":                          LIRS,
		"traces/caffeine-other/cache2k/web07.trace.gz":      Int32,
		"traces/caffeine-other/cloudphysics-w106.trace.gz":  Uint32,
		"traces/caffeine-other/scarab-recs.trace.gz":        Int64,
		"traces/caffeine-other/corda-trace_vaultservice.gz": Int64,
	}
	for path, want := range tests {
		got, err := FormatOf(path)
		require.NoError(t, err, path)
		assert.Equal(t, want, got, path)
	}
	_, err := FormatOf("traces/caffeine-other/adaptsize-request.trace.gz")
	assert.Error(t, err)
}

// TestRealTraces checks request counts against shared/traces/README.md.
// TestShipped reads every trace shipped in the repository, through Open,
// and checks its request count (data/README.md).
func TestShipped(t *testing.T) {
	t.Parallel()
	want := map[string]int{
		"arc/OLTP.lis.gz":       914145,
		"lirs/2_pools.trace.gz": 100000,
		"lirs/backf.trace.gz":   9000,
		"lirs/cpp.trace.gz":     9047,
		"lirs/cs.trace.gz":      6781,
		"lirs/gli.trace.gz":     6015,
		"lirs/loop.trace.gz":    505500,
		"lirs/multi1.trace.gz":  15858,
		"lirs/multi2.trace.gz":  26311,
		"lirs/multi3.trace.gz":  30241,
		"lirs/ps.trace.gz":      10448,
		"lirs/scan.trace.gz":    50025,
		"lirs/sprite.trace.gz":  133996,
		"lirs/zigzag.trace.gz":  52001,
	}
	var names []string
	err := fs.WalkDir(Shipped, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, slices.Collect(maps.Keys(want)), names, "the shipped files")
	for name, n := range want {
		keys, err := LoadName(name)
		require.NoError(t, err, name)
		assert.Len(t, keys, n, name)
	}
}

// TestOptional reads traces that are not shipped, from $MEMO_TRACES: it
// skips without them (fails under CI).
func TestOptional(t *testing.T) {
	t.Parallel()
	keys := Need(t, "caffeine-other/cache2k/web07.trace.gz")
	assert.Len(t, keys, 76118)
}

func TestOpenFolder(t *testing.T) {
	// Not parallel: it sets the environment.
	dir := t.TempDir()
	t.Setenv(Env, dir)
	t.Setenv("CI", "")
	// A trace that is not shipped comes from the folder.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "lirs"), 0o755))
	extra := writeGzip(t, "extra.trace.gz", []byte("7\n8\n7\n"))
	data, err := os.ReadFile(extra)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lirs", "extra.trace.gz"), data, 0o644))
	keys, err := LoadName("lirs/extra.trace.gz")
	require.NoError(t, err)
	assert.Equal(t, []uint64{7, 8, 7}, keys)
	// A shipped one comes from the repository even if the folder has a
	// file of that name.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "lirs", "gli.trace.gz"), data, 0o644))
	keys, err = LoadName("lirs/gli.trace.gz")
	require.NoError(t, err)
	assert.Len(t, keys, 6015)

	// A trace in neither place: an error that says so, and a skip in a test.
	_, err = LoadName("arc/P3.lis.gz")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "arc/P3.lis.gz is not shipped")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Need(t, "arc/P3.lis.gz")
		t.Error("Need returned for a missing trace")
	})
	assert.True(t, skipped, "a missing optional trace skips")

	t.Setenv(Env, filepath.Join(dir, "none"))
	_, err = LoadName("arc/P3.lis.gz")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), Env)
}

func TestDir(t *testing.T) {
	// Not parallel: it sets the environment.
	empty := t.TempDir()
	t.Setenv(Env, empty)
	got, err := Dir()
	require.NoError(t, err)
	assert.Equal(t, empty, got)

	t.Setenv(Env, filepath.Join(empty, "missing"))
	_, err = Dir()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
	assert.Contains(t, err.Error(), Env)
}
