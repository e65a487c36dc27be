package memo_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFunctionLocalTypesAcrossProcesses is the replicas' view of
// TestFunctionLocalTypesStayLocal: two processes of one build, one meeting
// orderID first and the other userID, used to give each its own first
// type the shared name, so both computed one tier key for two different
// types. Each child prints the tier key of its call, or "local".
func TestFunctionLocalTypesAcrossProcesses(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	keys := map[string]string{}
	for _, first := range []string{"order", "user"} {
		cmd := exec.Command(exe, "-test.run=^TestStableKeyChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MEMO_STABLE_CHILD="+first)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		for line := range strings.Lines(string(out)) {
			if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tierkey="); ok {
				keys[first] = k
			}
		}
		require.Contains(t, keys, first, "%s", out)
	}
	assert.Equal(t, "local", keys["order"])
	assert.Equal(t, "local", keys["user"])
}
