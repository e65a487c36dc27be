package traces

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Env names the environment variable that, when set, gives the traces folder.
const Env = "MEMO_TRACES"

// Dir returns the traces folder: $MEMO_TRACES if set, else ../shared/traces
// beside the module root (the nearest directory above the working directory
// holding a go.mod).
func Dir() (string, error) {
	if d := os.Getenv(Env); d != "" {
		return checkDir(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return checkDir(filepath.Join(filepath.Dir(d), "shared", "traces"))
		}
		up := filepath.Dir(d)
		if up == d {
			return "", fmt.Errorf("traces: no go.mod above %s, and $%s is not set", wd, Env)
		}
		d = up
	}
}

func checkDir(d string) (string, error) {
	fi, err := os.Stat(d)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("traces: no traces folder at %s (set $%s to its path)", d, Env)
		}
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("traces: %s is not a folder", d)
	}
	return d, nil
}

// Require returns [Dir] for a test, or ends it when there is no traces folder:
// it fails under CI (when $CI is set) and skips otherwise.
func Require(tb testing.TB) string {
	tb.Helper()
	d, err := Dir()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("traces required under CI: %v", err)
		}
		tb.Skipf("skipping, traces missing: %v", err)
	}
	return d
}
