package engine

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo/policies"
)

// bufferedUses counts the uses recorded in c's read stripes.
func bufferedUses(c *Core) int {
	uses := 0
	for i := range c.Reads.n.Load() {
		st := c.Reads.stripe(i)
		st.mu.Lock()
		uses += st.N
		st.mu.Unlock()
	}
	return uses
}

// TestRemovalsFreeTheirEntry checks every removal made outside a store or
// Remove (an identity cleanup's dropEntry, a lookup's expireNode, a failed
// refresh's dropFor, a sweep by Len or Stats): once it returns, the uses
// of the entry recorded in the read buffers no longer keep the entry, and
// the result it holds, alive; nothing is written to the cache after it.
// At the review's commit (0e141d5) none of them drained the buffers: the
// result stayed reachable until the cache's next write.
func TestRemovalsFreeTheirEntry(t *testing.T) {
	removals := []struct {
		name string
		ttl  time.Duration
		drop func(c *Core, key string, n *Node)
	}{
		{"identity cleanup", 0, func(c *Core, key string, _ *Node) {
			dropEntry(dropArg{c.weak(), key})
		}},
		{"expired, found by a lookup", time.Hour, func(c *Core, _ string, n *Node) {
			n.Value.X().Expires = 1 // expired since the epoch's first nanosecond
			c.expireNode(n)
		}},
		{"a refresh's entry dropped", 0, func(c *Core, key string, n *Node) {
			c.dropFor(&Call{Key: key, H: HashString(key), base: n})
		}},
		{"swept by Len or Stats", time.Hour, func(c *Core, _ string, _ *Node) {
			c.Mu.Lock()
			c.Sweep(c.Now() + int64(2*time.Hour))
			c.Mu.Unlock()
		}},
	}
	for _, kind := range []policies.Kind{policies.LRU, policies.LFU, policies.WTinyLFU} {
		for _, r := range removals {
			t.Run(kind.String()+"/"+r.name, func(t *testing.T) {
				var c Core
				c.Init(8, 0, kind, "", nil, nil)
				t.Cleanup(func() {
					if c.Timer != nil {
						c.Timer.Stop()
					}
				})
				k := func(i int) string { return string(binary.LittleEndian.AppendUint64(nil, uint64(i))) }
				// W-TinyLFU records uses once half full.
				for i := 1; i <= 4; i++ {
					require.True(t, c.Store(k(i), HashString(k(i)), i, 0, nil, nil))
				}
				key := k(0)
				wp := func() weak.Pointer[[1 << 10]byte] {
					v := new([1 << 10]byte)
					require.True(t, c.Store(key, HashString(key), v, r.ttl, nil, nil))
					return weak.Make(v)
				}()
				n := c.Index.Get(UnsafeBytes(key), HashString(key))
				require.NotNil(t, n)
				for range 2 {
					_, ok := c.Lookup(UnsafeBytes(key), HashString(key))
					require.True(t, ok)
				}
				require.Positive(t, bufferedUses(&c), "the hits are buffered: the test exercises the removal's drain")

				r.drop(&c, key, n)
				assert.Nil(t, c.Index.Get(UnsafeBytes(key), HashString(key)), "removed")
				assert.Zero(t, bufferedUses(&c), "uses left in the read buffers")
				runtime.GC()
				assert.True(t, wp.Value() == nil, "the removed entry's result is still reachable after a GC")
			})
		}
	}
}
