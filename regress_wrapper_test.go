package memo

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

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
	// A self-deadlock hangs the child until its -test.timeout, a liveness
	// watchdog that reports the hang with every goroutine; nothing here
	// bounds its speed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestRegressionWrapperReentrantCacheKeyDeadlock$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "MEMO_REVIEW_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.False(t, bytes.Contains(out, []byte("test timed out")), "NewHashableWrapper hung (self-deadlock on internMu)\n%s", tail(out))
	assert.NoError(t, err, "%s", tail(out))
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
