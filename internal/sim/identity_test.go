package sim

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// TestMatrixIdentity prints W-TinyLFU's exact hit count on every matrix row
// with the simulator's Hash and with SeededHash seeds 1 to 3, one line per
// replay, for a refactor of the policy that must not change a decision:
// run it before and after and compare the outputs byte for byte. It checks
// nothing and takes minutes, so it runs only when MEMO_IDENTITY is set:
// MEMO_IDENTITY=1 go test -run TestMatrixIdentity -v ./internal/sim/.
func TestMatrixIdentity(t *testing.T) {
	if os.Getenv("MEMO_IDENTITY") == "" {
		t.Skip("set MEMO_IDENTITY=1 to print the matrix's exact hit counts")
	}
	const seeds = 3
	loaded := map[string][]uint64{}
	for _, r := range Matrix {
		if loaded[r.File] == nil {
			loaded[r.File] = traces.Need(t, r.File)
		}
	}
	res := make([][seeds + 1]Result, len(Matrix))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, r := range Matrix {
		for s := range seeds + 1 {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if s == 0 {
					res[i][s] = Replay(policies.WTinyLFU, r.Size, loaded[r.File])
					return
				}
				res[i][s] = ReplaySeeded(policies.WTinyLFU, r.Size, loaded[r.File], uint64(s))
			})
		}
	}
	wg.Wait()
	var b strings.Builder
	for i, r := range Matrix {
		for s, x := range res[i] {
			fmt.Fprintf(&b, "%s@%d seed=%d requests=%d hits=%d\n", r.File, r.Size, s, x.Requests, x.Hits)
		}
	}
	fmt.Print(b.String())
}
