// Command simulate replays cache access traces through memo's eviction
// policies and its peers, prints the hit ratios as a Markdown table and
// draws one chart per trace (hit ratio against cache size, one line per
// policy) as PNG and SVG.
//
// Each replay is one request at a time from a cold start: look up; on a
// miss, insert. Hit ratio = hits / all requests, in percent. The peers are
// driven so that each holds at most size entries: otter v2 with its
// maintenance run inline (CleanUp after each Set), theine-go with Wait
// after each Set, golang-lru v2's LRU, ARC and 2Q, and reference
// implementations of S3-FIFO and SIEVE written here from their papers
// (github.com/scalalang2/golang-fifo is not reachable from this project's
// module proxy), and Belady's optimum with bypass (OPT).
//
// Usage:
//
//	go run ./cmd/simulate                       # the 29-row matrix of shared/traces/MATRIX.md
//	go run ./cmd/simulate -trace lirs/gli.trace.gz -sizes 250,500,1000,2000
//	go run ./cmd/simulate -charts ../docs/charts -policies memo-w-tinylfu,otter,lru,opt
//
// Traces are read from -traces; without it, from those shipped in
// internal/traces (the LIRS traces and arc/OLTP), else $MEMO_TRACES, else
// ../shared/traces beside the repository.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"

	"github.com/memokit/memo/internal/sim"
	"github.com/memokit/memo/internal/traces"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(1)
	}
}

// job is one replay: a trace at a size through a policy.
type job struct {
	file   string
	size   int
	policy string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("traces", "", "traces folder (default: the traces shipped in internal/traces, then $MEMO_TRACES or ../shared/traces)")
	trace := fs.String("trace", "", "one trace, relative to the traces folder (default: the matrix)")
	sizesFlag := fs.String("sizes", "", "comma-separated cache sizes for -trace")
	pols := fs.String("policies", strings.Join(policyNames, ","), "comma-separated policies: "+strings.Join(policyNames, ", "))
	charts := fs.String("charts", "", "folder to write one chart per trace to (PNG and SVG)")
	only := fs.String("only", "", "with the matrix: only rows whose trace name contains this")
	workers := fs.Int("j", runtime.GOMAXPROCS(0), "replays run in parallel")
	quiet := fs.Bool("q", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := strings.Split(*pols, ",")
	for _, n := range names {
		if !slices.Contains(policyNames, n) {
			return fmt.Errorf("unknown policy %q (want %s)", n, strings.Join(policyNames, ", "))
		}
	}
	type row struct {
		file string
		size int
	}
	var rows []row
	if *trace != "" {
		if *sizesFlag == "" {
			return fmt.Errorf("-trace needs -sizes")
		}
		for _, s := range strings.Split(*sizesFlag, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("bad size %q", s)
			}
			rows = append(rows, row{*trace, n})
		}
	} else {
		for _, r := range sim.Matrix {
			if strings.Contains(r.File, *only) {
				rows = append(rows, row{r.File, r.Size})
			}
		}
	}
	loaded := map[string][]uint64{}
	var total int64
	for _, r := range rows {
		if loaded[r.file] == nil {
			var keys []uint64
			var err error
			if *dir != "" {
				keys, err = traces.LoadFile(filepath.Join(*dir, r.file))
			} else {
				keys, err = traces.LoadName(r.file) // shipped, else $MEMO_TRACES or ../shared/traces
			}
			if err != nil {
				return err
			}
			loaded[r.file] = keys
		}
		total += int64(len(loaded[r.file]) * len(names))
	}
	var bar *progressbar.ProgressBar
	if !*quiet {
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("replaying"), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(200_000_000), progressbar.OptionClearOnFinish())
	}
	results := map[job]float64{}
	var mu sync.Mutex
	jobs := make(chan job)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(1, *workers) {
		wg.Go(func() {
			for j := range jobs {
				ratio, err := replay(j, loaded[j.file], bar)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				mu.Lock()
				results[j] = ratio
				mu.Unlock()
			}
		})
	}
	for _, r := range rows {
		for _, p := range names {
			jobs <- job{r.file, r.size, p}
		}
	}
	close(jobs)
	wg.Wait()
	if bar != nil {
		_ = bar.Finish()
	}
	select {
	case err := <-errs:
		return err
	default:
	}

	// The table.
	fmt.Fprintf(stdout, "| trace@size | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	sums := make([]float64, len(names))
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s@%d |", r.file, r.size)
		best := -1.0
		for _, p := range names {
			if p != "opt" {
				best = max(best, results[job{r.file, r.size, p}])
			}
		}
		for i, p := range names {
			v := results[job{r.file, r.size, p}]
			sums[i] += v
			if v == best {
				fmt.Fprintf(stdout, " **%.2f** |", v)
			} else {
				fmt.Fprintf(stdout, " %.2f |", v)
			}
		}
		fmt.Fprintln(stdout)
	}
	if len(rows) > 1 {
		fmt.Fprintf(stdout, "| mean of %d rows |", len(rows))
		for i := range names {
			fmt.Fprintf(stdout, " %.2f |", sums[i]/float64(len(rows)))
		}
		fmt.Fprintln(stdout)
	}

	if *charts != "" {
		byTrace := map[string][]int{}
		var order []string
		for _, r := range rows {
			if byTrace[r.file] == nil {
				order = append(order, r.file)
			}
			byTrace[r.file] = append(byTrace[r.file], r.size)
		}
		for _, file := range order {
			if err := drawChart(*charts, file, byTrace[file], names, results); err != nil {
				return err
			}
		}
	}
	return nil
}

// replay runs one job and returns its hit ratio in percent.
func replay(j job, keys []uint64, bar *progressbar.ProgressBar) (float64, error) {
	c, done, err := newCache(j.policy, j.size, keys)
	if err != nil {
		return 0, err
	}
	defer done()
	hits := 0
	const step = 1 << 16
	for i, k := range keys {
		if c.Access(k) {
			hits++
		}
		if bar != nil && (i+1)%step == 0 {
			_ = bar.Add(step)
		}
	}
	if bar != nil {
		_ = bar.Add(len(keys) % step)
	}
	return 100 * float64(hits) / float64(len(keys)), nil
}
