package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests and benchmarks if any goroutine
// outlives them (memo's, or a peer's).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
