// Command memosim replays cache access traces through memo's eviction
// policies, one request at a time from a cold start, and prints the hit
// ratios as a Markdown table.
//
//	go run ./cmd/memosim [-traces dir] [-sizes 100,1000] [-p3]
//
// By default it replays every lirs/*.trace.gz and arc/OLTP.lis.gz, each at
// sizes suited to its number of distinct keys. Those traces ship with memo
// (internal/traces/data); -traces reads them from another folder instead.
// arc/P3 (-p3) is not shipped: it is read from -traces, else from
// $MEMO_TRACES.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/memokit/memo/internal/sim"
	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// trace is one file to replay and its default cache sizes.
type trace struct {
	path  string // slash-separated, relative to the traces folder
	sizes []int
}

var (
	lirsSizes = []int{100, 500, 1000}
	arcSizes  = []int{1000, 10000, 100000}
)

func main() {
	dir := flag.String("traces", "", "traces folder with lirs/ and arc/ (default: the traces shipped with memo; arc/P3 from $MEMO_TRACES)")
	sizes := flag.String("sizes", "", "comma-separated cache sizes in entries, for every trace (default: per trace: lirs 100,500,1000; arc 1000,10000,100000)")
	p3 := flag.Bool("p3", false, "also replay arc/P3 (3.9M requests)")
	flag.Parse()
	if err := run(os.Stdout, *dir, *sizes, *p3); err != nil {
		fmt.Fprintln(os.Stderr, "memosim:", err)
		os.Exit(1)
	}
}

// run replays the traces in dir, or the shipped ones when dir is "".
func run(w io.Writer, dir, sizeList string, p3 bool) error {
	src, load := traces.Shipped, traces.LoadName
	if dir != "" {
		src = os.DirFS(dir)
		load = func(name string) ([]uint64, error) {
			return traces.LoadFile(filepath.Join(dir, filepath.FromSlash(name)))
		}
	}
	override, err := parseSizes(sizeList)
	if err != nil {
		return err
	}
	lirs, err := fs.Glob(src, "lirs/*.trace.gz")
	if err != nil {
		return err
	}
	if len(lirs) == 0 {
		return fmt.Errorf("no lirs/*.trace.gz in %s", dir)
	}
	var list []trace
	for _, p := range lirs {
		list = append(list, trace{p, lirsSizes})
	}
	list = append(list, trace{"arc/OLTP.lis.gz", arcSizes})
	if p3 {
		list = append(list, trace{"arc/P3.lis.gz", arcSizes})
	}

	fmt.Fprintln(w, "| trace | requests | size | W-TinyLFU hit % | LRU hit % | LFU hit % |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, tr := range list {
		keys, err := load(tr.path)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(tr.path, ".gz")
		sizes := tr.sizes
		if override != nil {
			sizes = override
		}
		for _, size := range sizes {
			wt := sim.Replay(policies.WTinyLFU, size, keys)
			lru := sim.Replay(policies.LRU, size, keys)
			lfu := sim.Replay(policies.LFU, size, keys)
			fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s |\n", name, len(keys), size, wt, lru, lfu)
		}
	}
	return nil
}

func parseSizes(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, errors.New("-sizes: want positive integers separated by commas, got " + strconv.Quote(s))
		}
		out = append(out, n)
	}
	return out, nil
}
