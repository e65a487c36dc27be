package redistier

import (
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFiguresCarryEveryTierField guards the debug page's and the
// exporters' tier figures, which lacked the tier's local runs, fills,
// invalidations, resubscribes and generation flushes: every counter of
// stats.Tier is filled from the tier's own.
func TestFiguresCarryEveryTierField(t *testing.T) {
	tier := newTier(t, srv)
	s := &tier.st
	for i, c := range []*atomic.Uint64{
		&s.hits, &s.misses, &s.errors, &s.decodeErrors, &s.leaseWaits, &s.breakerOpened,
		&s.fills, &s.localRuns, &s.invalidations, &s.resubscribes, &s.generationFlushes,
	} {
		c.Add(uint64(100 + i))
	}
	f := reflect.ValueOf(tier.Figures())
	for i := range f.NumField() {
		if fv := f.Field(i); fv.Kind() == reflect.Uint64 {
			assert.GreaterOrEqual(t, fv.Uint(), uint64(100), "stats.Tier.%s is not filled", f.Type().Field(i).Name)
		}
	}
}
