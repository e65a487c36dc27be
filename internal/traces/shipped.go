package traces

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"
)

//go:embed data/lirs/*.trace.gz data/arc/OLTP.lis.gz
var data embed.FS

// Shipped holds the traces kept in the repository (data/README.md gives
// their origin and terms): lirs/*.trace.gz and arc/OLTP.lis.gz, named by
// slash-separated paths such as "lirs/gli.trace.gz".
var Shipped fs.FS = mustSub(data, "data")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Open opens the trace name, a slash-separated path such as
// "lirs/gli.trace.gz" or "arc/P3.lis.gz": from [Shipped] if it is there,
// else from the traces folder ([Dir]).
func Open(name string) (fs.File, error) {
	f, err := Shipped.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	dir, derr := Dir()
	if derr != nil {
		return nil, fmt.Errorf("traces: %s is not shipped, and %v: %w", name, derr, fs.ErrNotExist)
	}
	f, err = os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return nil, fmt.Errorf("traces: %s is not shipped: %w", name, err)
	}
	return f, nil
}

// LoadName returns every key of the trace name (see [Open]), in the format
// its name tells ([FormatOf]).
func LoadName(name string) ([]uint64, error) {
	format, err := FormatOf(name)
	if err != nil {
		return nil, err
	}
	f, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []uint64
	err = each(f, path.Clean(name), format, func(k uint64) { keys = append(keys, k) })
	return keys, err
}

// Need returns the keys of the trace name for a test (see [LoadName]). A
// trace that is neither shipped nor in the traces folder ends the test: it
// fails under CI ($CI set) and is skipped otherwise, saying how to provide
// it (go test shows the reason with -v). A trace that cannot be read fails
// the test.
func Need(tb testing.TB, name string) []uint64 {
	tb.Helper()
	keys, err := LoadName(name)
	switch {
	case err == nil:
		return keys
	case errors.Is(err, fs.ErrNotExist) && os.Getenv("CI") == "":
		tb.Skipf("skipping: trace %s is not shipped with memo; set $%s to a folder that holds it (%v)", name, Env, err)
	case errors.Is(err, fs.ErrNotExist):
		tb.Fatalf("trace %s required under CI: %v", name, err)
	default:
		tb.Fatalf("trace %s: %v", name, err)
	}
	return nil
}
