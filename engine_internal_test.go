package memo

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
)

type r2Obj struct {
	_ [8]uint64
	_ *int
}

// TestReplacedEntryDoesNotPinKey: a key's object must not be kept
// alive by the cache's bookkeeping (SPEC: "A pointer in a key must not keep
// its object alive"). When Set replaces an entry whose value referred to
// the key object, the old node is out of the cache; but the old node's
// cleanup is still registered, and since newNode its key string points
// into the old node's allocation: the cleanup's arg then reaches the old
// value, hence the key object, and the cleanup can never run (see
// runtime.AddCleanup: "if ptr is reachable from cleanup or arg, ptr will
// never be collected").
func TestReplacedEntryDoesNotPinKey(t *testing.T) {
	c := MustNew(WithMaxSize(100))
	collected := make(chan struct{})
	func() {
		p := &r2Obj{}
		runtime.AddCleanup(p, func(ch chan struct{}) { close(ch) }, collected)
		c.Set(p, p) // the first value refers to the key
		c.Set(p, 1) // replaced: the cache no longer refers to p
	}()
	if !dtGCUntil(func() bool {
		select {
		case <-collected:
			return true
		default:
			return false
		}
	}) {
		t.Fatalf("the key object is never collected: the replaced node, pinned by its cleanup's key, keeps it alive; Len=%d", c.Len())
	}
	// Then the cache's own cleanup drops the entry.
	dtGCUntil(func() bool { return c.Len() == 0 })
	assert.Equal(t, 0, c.Len())
}
