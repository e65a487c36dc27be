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
	tests := []struct {
		file     string
		size     int
		lru, lfu string
	}{
		{"lirs/gli.trace.gz", 1000, "11.21", "31.34"},
		{"arc/OLTP.lis.gz", 1000, "32.83", "13.83"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, tt.file)
			format, err := traces.FormatOf(path)
			require.NoError(t, err)
			keys, err := traces.Load(path, format)
			require.NoError(t, err)
			assert.Equal(t, tt.lru, sim.Replay(policies.LRU, tt.size, keys).String(), "LRU")
			assert.Equal(t, tt.lfu, sim.Replay(policies.LFU, tt.size, keys).String(), "LFU")
		})
	}
}
