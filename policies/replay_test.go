package policies_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/internal/sim"
	"github.com/memokit/memo/internal/traces"
	"github.com/memokit/memo/policies"
)

// TestReplay checks the hit ratios against the original memoizer's, replayed
// one request at a time from a cold start (internal/traces/data/README.md, SPEC.md).
func TestReplay(t *testing.T) {
	t.Parallel()
	for _, tt := range sim.References {
		t.Run(tt.File, func(t *testing.T) {
			t.Parallel()
			keys := traces.Need(t, tt.File)
			require.NotEmpty(t, keys)
			assert.Equal(t, tt.LRU, sim.Replay(policies.LRU, tt.Size, keys).String(), "LRU")
			assert.Equal(t, tt.LFU, sim.Replay(policies.LFU, tt.Size, keys).String(), "LFU")
		})
	}
}
