package policies_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/sim"
	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// TestReplay checks the hit ratios against the original memoizer's, replayed
// one request at a time from a cold start (shared/traces/README.md, SPEC.md).
func TestReplay(t *testing.T) {
	t.Parallel()
	dir := traces.Require(t)
	for _, tt := range sim.References {
		t.Run(tt.File, func(t *testing.T) {
			t.Parallel()
			keys, err := traces.LoadFile(filepath.Join(dir, tt.File))
			require.NoError(t, err)
			assert.Equal(t, tt.LRU, sim.Replay(policies.LRU, tt.Size, keys).String(), "LRU")
			assert.Equal(t, tt.LFU, sim.Replay(policies.LFU, tt.Size, keys).String(), "LFU")
		})
	}
}
