package memo

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rvDoc keys itself by a wrapper of its func, as the original's users wrap
// unhashable members.
type rvDoc struct{ F func() }

func (d rvDoc) CacheKey() any { return NewHashableWrapper(d.F) }

// NewHashableWrapper calls hashOf under internMu, and hashOf walks the value
// again (acyclic), which calls CacheKey, which calls NewHashableWrapper:
// internMu is locked twice by one goroutine. The hang is run in a child
// process so that a locked internMu cannot hang this test binary.
func TestRegressionWrapperReentrantCacheKeyDeadlock(t *testing.T) {
	if os.Getenv("MEMO_REVIEW_CHILD") == "1" {
		NewHashableWrapper(rvDoc{F: func() {}})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRegressionWrapperReentrantCacheKeyDeadlock$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MEMO_REVIEW_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, ctx.Err(), "NewHashableWrapper hung (self-deadlock on internMu)")
	assert.NoError(t, err, "%s", tail(out))
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
