package redistier

import (
	"testing"

	"github.com/memokit/memo"
)

// BenchmarkFaultStoppedCall measures a call of a cold key while Redis is
// SIGSTOPped, with a breaker that never opens: each call pays the budget
// (faultBudget) on its read and its lease before it runs the function
// locally, about two budgets in all. The fault tests check the results;
// this is where the time goes (no test asserts a wall-clock bound).
func BenchmarkFaultStoppedCall(b *testing.B) {
	s := newServer(b)
	tier := newTier(b, s, WithBudget(faultBudget), WithBreakerFailures(1<<30))
	f := memo.Decorate(func(k int) int { return k }, memo.WithName(b.Name()), memo.WithTier(tier))
	s.Stop()
	defer s.Cont()
	k := 0
	for b.Loop() {
		k++
		if f(k) != k {
			b.Fatal("a wrong result")
		}
	}
	b.ReportMetric(float64(2*faultBudget.Nanoseconds()), "2×budget-ns")
}
