package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/memokit/memo/internal/traces"
)

type mrow struct {
	file       string
	size       int
	best, opt  float64
}

var mrows = []mrow{
	{"lirs/gli.trace.gz", 500, 33.24, 34.33},
	{"lirs/gli.trace.gz", 1000, 50.44, 53.15},
	{"lirs/gli.trace.gz", 2000, 57.96, 57.96},
	{"lirs/multi2.trace.gz", 500, 49.56, 53.62},
	{"lirs/multi2.trace.gz", 1000, 57.65, 62.16},
	{"lirs/multi2.trace.gz", 2000, 69.09, 74.65},
	{"lirs/sprite.trace.gz", 200, 48.77, 68.90},
	{"lirs/sprite.trace.gz", 500, 78.46, 87.89},
	{"lirs/loop.trace.gz", 500, 48.72, 49.36},
	{"lirs/loop.trace.gz", 1000, 98.43, 98.71},
	{"lirs/2_pools.trace.gz", 100, 47.90, 50.76},
	{"lirs/2_pools.trace.gz", 1000, 54.41, 68.52},
	{"lirs/cs.trace.gz", 100, 3.51, 7.73},
	{"lirs/cs.trace.gz", 500, 29.18, 31.32},
	{"lirs/ps.trace.gz", 200, 46.12, 50.48},
	{"lirs/ps.trace.gz", 1000, 66.28, 67.69},
	{"arc/OLTP.lis.gz", 500, 33.05, 46.43},
	{"arc/OLTP.lis.gz", 1000, 40.84, 53.62},
	{"arc/OLTP.lis.gz", 2000, 46.94, 60.40},
	{"arc/P3.lis.gz", 10000, 6.37, 13.05},
	{"arc/P3.lis.gz", 100000, 42.87, 62.00},
	{"caffeine-other/cache2k/web12.trace.gz", 1000, 68.59, 77.75},
	{"caffeine-other/cache2k/web12.trace.gz", 4000, 80.42, 85.29},
	{"caffeine-other/scarab-recs.trace.gz", 10000, 52.53, 66.57},
	{"caffeine-other/scarab-recs.trace.gz", 100000, 76.23, 79.25},
	{"caffeine-other/corda-trace_vaultservice.gz", 512, 33.33, 33.33},
	{"caffeine-other/corda-trace_vaultservice.gz", 2048, 33.33, 33.33},
	{"caffeine-other/cloudphysics-w106.trace.gz", 10000, 86.65, 90.02},
	{"caffeine-other/cloudphysics-w106.trace.gz", 50000, 93.90, 94.71},
}

func replayW(size int, keys []uint64) float64 {
	p := newWTinyLFU[uint64](size, func(n *Node[uint64]) uint64 { return n.Value * 0x9e3779b97f4a7c15 })
	idx := make(map[uint64]*Node[uint64], size)
	hits := 0
	for _, k := range keys {
		if n, ok := idx[k]; ok {
			p.Touch(n)
			hits++
			continue
		}
		n := &Node[uint64]{Value: k}
		p.Add(n)
		idx[k] = n
		for p.Len() > size {
			v := p.Victim()
			p.Remove(v)
			delete(idx, v.Value)
		}
	}
	return 100 * float64(hits) / float64(len(keys))
}

func TestExpMatrix(t *testing.T) {
	if os.Getenv("MEMO_EXP") == "" {
		t.Skip()
	}
	dir := traces.Require(t)
	if f := os.Getenv("MEMO_ROWS"); f != "" {
		var keep []mrow
		for _, r := range mrows {
			if strings.Contains(fmt.Sprintf("%s@%d", r.file, r.size), f) {
				keep = append(keep, r)
			}
		}
		mrows = keep
	}
	cache := map[string][]uint64{}
	for _, r := range mrows {
		if cache[r.file] == nil {
			k, err := traces.LoadFile(filepath.Join(dir, r.file))
			if err != nil {
				t.Fatal(err)
			}
			cache[r.file] = k
		}
	}
	res := make([]float64, len(mrows))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, r := range mrows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			res[i] = replayW(r.size, cache[r.file])
			<-sem
		}()
	}
	wg.Wait()
	var sum, bsum float64
	bad := 0
	for i, r := range mrows {
		d := res[i] - r.best
		mark := ""
		if d < -1.5 {
			mark = " <<<"
			bad++
		}
		fmt.Printf("%-45s %6d %6.2f best %6.2f d %+6.2f%s\n", r.file, r.size, res[i], r.best, d, mark)
		sum += res[i]
		bsum += r.best
	}
	fmt.Printf("MEAN %.3f (best %.3f) bad %d\n", sum/float64(len(mrows)), bsum/float64(len(mrows)), bad)
}
