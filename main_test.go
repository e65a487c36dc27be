package memo

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: memo
// starts none of its own beyond a call's execution.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
