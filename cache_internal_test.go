package memo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bothPolicies are the policies every generic Cache test runs with (the
// name predates W-TinyLFU).
var bothPolicies = []policies.Kind{policies.LRU, policies.LFU, policies.WTinyLFU}

// mapLen counts the entries in c's shard maps directly, without the sweep
// that Len and Stats do first: it tells whether the timer freed them.
func mapLen(c *Cache) int {
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	return c.e.Index.Len()
}

// policyLen is the policy's size, also read without a sweep.
func policyLen(c *Cache) int {
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	return c.e.Policy.Len()
}

// timerPending reports whether the expiry timer is armed.
func timerPending(c *Cache) bool {
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	return c.e.TimerAt != 0
}

// stopTimer disarms the expiry timer for good (a timerAt earlier than any
// expiry keeps schedule from re-arming it), leaving expired entries to
// lookups and writes.
func stopTimer(c *Cache) {
	c.e.Mu.Lock()
	defer c.e.Mu.Unlock()
	if c.e.Timer != nil {
		c.e.Timer.Stop()
	}
	c.e.TimerAt = 1
}

func newTestCache(t *testing.T, opts ...Option) *Cache {
	t.Helper()
	c, err := New(opts...)
	require.NoError(t, err)
	return c
}

// assertMiss checks that key has no live entry.
func assertMiss(t *testing.T, c *Cache, key any) {
	t.Helper()
	v, err := c.Get(key)
	assert.ErrorIs(t, err, ErrNotFound, "Get(%#v)", key)
	assert.Nil(t, v, "Get(%#v)", key)
}

// assertHit checks that key holds want.
func assertHit(t *testing.T, c *Cache, key, want any) {
	t.Helper()
	v, err := c.Get(key)
	if assert.NoError(t, err, "Get(%#v)", key) {
		assert.Equal(t, want, v, "Get(%#v)", key)
	}
}

func TestCacheTTLExpires(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, WithMaxSize(10), WithTTL(time.Minute), WithPolicy(kind))
				c.Set("k", "v")
				time.Sleep(time.Minute - time.Nanosecond)
				assertHit(t, c, "k", "v")
				time.Sleep(time.Nanosecond)
				assertMiss(t, c, "k")
				st := c.Stats()
				assert.Equal(t, uint64(1), st.Hits)
				assert.Equal(t, uint64(1), st.Misses)
				assert.Equal(t, uint64(1), st.Expirations)
				assert.Equal(t, 0, st.CurrentSize)
				assert.Equal(t, time.Minute, st.TTL)
				assert.False(t, c.Delete("k"), "Delete of an expired key")
			})
		})
	}
}

// TestCacheTTLOnlyExpiredKey writes two keys 30 s apart: when the first
// expires, the second stays, whether the first is found expired by the
// timer, by a lookup or by a write.
func TestCacheTTLOnlyExpiredKey(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		for _, by := range []string{"timer", "lookup", "write"} {
			t.Run(kind.String()+"/"+by, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					c := newTestCache(t, WithMaxSize(2), WithTTL(time.Minute), WithPolicy(kind))
					if by != "timer" {
						stopTimer(c)
					}
					c.Set("old", 1)
					time.Sleep(30 * time.Second)
					c.Set("new", 2)
					time.Sleep(31 * time.Second)
					synctest.Wait()
					switch by {
					case "timer":
						assert.Equal(t, 1, mapLen(c), "the timer frees the expired entry")
					case "lookup":
						assert.Equal(t, 2, mapLen(c), "nothing freed it yet")
						assertMiss(t, c, "old")
						assert.Equal(t, 1, mapLen(c), "the lookup freed it, and only it")
					case "write":
						assert.Equal(t, 2, mapLen(c), "nothing freed it yet")
						c.Set("third", 3) // the cache is full: the expired entry makes room, not "new"
						assert.Equal(t, 2, mapLen(c))
						assertHit(t, c, "third", 3)
						assert.Equal(t, uint64(0), c.Stats().Evictions)
					}
					assertHit(t, c, "new", 2)
					assertMiss(t, c, "old")
					st := c.Stats()
					assert.Equal(t, uint64(1), st.Expirations)
					if by == "write" {
						assert.Equal(t, 2, c.Len())
					} else {
						assert.Equal(t, 1, c.Len())
					}
					time.Sleep(30 * time.Second)
					assertMiss(t, c, "new")
				})
			})
		}
	}
}

// TestCacheTTLReclaimed checks that expired entries are freed and stop
// counting without any lookup of their keys: the cache's timer frees them.
func TestCacheTTLReclaimed(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				const n = 100
				c := newTestCache(t, WithMaxSize(n), WithTTL(time.Minute), WithPolicy(kind))
				for i := range n {
					c.Set(i, i)
					time.Sleep(time.Second / n)
				}
				assert.Equal(t, n, c.Len())
				assert.True(t, timerPending(c))

				time.Sleep(time.Minute)
				synctest.Wait()
				// No lookup, no Len, no Stats yet: only the timer ran.
				assert.Equal(t, 0, mapLen(c), "shard maps")
				assert.Equal(t, 0, policyLen(c), "policy")
				assert.False(t, timerPending(c), "a timer with nothing left to expire")

				assert.Equal(t, 0, c.Len())
				st := c.Stats()
				assert.Equal(t, uint64(n), st.Expirations)
				assert.Equal(t, uint64(0), st.Hits+st.Misses, "no lookups")
				assert.Equal(t, uint64(0), st.Evictions)
				assert.Equal(t, 0, st.CurrentSize)
			})
		})
	}
}

// TestCacheTTLSetRestarts checks that Set on an existing key replaces its
// value and restarts its TTL.
func TestCacheTTLSetRestarts(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, WithMaxSize(10), WithTTL(time.Minute), WithPolicy(kind))
				c.Set("k", "v1")
				time.Sleep(40 * time.Second)
				c.Set("k", "v2")
				assert.Equal(t, 1, c.Len())
				time.Sleep(40 * time.Second) // 80 s after the first Set
				assertHit(t, c, "k", "v2")
				time.Sleep(20*time.Second - time.Nanosecond)
				assertHit(t, c, "k", "v2")
				time.Sleep(time.Nanosecond)
				assertMiss(t, c, "k")
				assert.Equal(t, uint64(1), c.Stats().Expirations)
				assert.Equal(t, 0, c.Len())
			})
		})
	}
}

// TestCacheTTLBubbleEnds returns from the bubble with entries left and
// the expiry timer armed. A pending timer is not a goroutine: synctest ends
// without a deadlock report or a panic, the fake clock stops, and no
// goroutine is left behind (TestMain's goleak checks that). The timer starts
// a goroutine only when it fires, and onTimer returns at once.
func TestCacheTTLBubbleEnds(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := newTestCache(t, WithMaxSize(10), WithTTL(time.Hour), WithPolicy(kind))
				c.Set(1, 1)
				time.Sleep(time.Minute)
				c.Set(2, 2)
				assertHit(t, c, 1, 1)
				require.True(t, timerPending(c))
			})
		})
	}
}

// TestCacheTTLClearLeavesTimer checks that Clear leaves a pending timer to
// fire harmlessly (stopping it from outside a synctest bubble would be
// fatal), and that the timer still frees entries written after Clear.
func TestCacheTTLClearLeavesTimer(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c := newTestCache(t, WithMaxSize(10), WithTTL(time.Hour))
		c.Set(1, 1)
		assert.True(t, timerPending(c))
		c.Clear()
		assert.Equal(t, 0, c.Len())
		time.Sleep(30 * time.Minute)
		c.Set(2, 2) // expires at 1h30
		time.Sleep(30 * time.Minute)
		synctest.Wait() // the old timer fired at 1h and found nothing expired
		assert.Equal(t, 1, mapLen(c))
		assert.True(t, timerPending(c), "re-armed for the entry written after Clear")
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		assert.Equal(t, 0, mapLen(c))
		assert.Equal(t, uint64(1), c.Stats().Expirations)
	})
}

// TestCacheConcurrent mixes Get, Set, Delete and (in one run) Clear from
// many goroutines on a small cache while a sampler checks that Len never
// exceeds MaxSize. Without Clear, the statistics must then account for
// every Get exactly. Run it with -race.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	const (
		maxSize    = 64
		keys       = 256
		goroutines = 8
	)
	ops := 20_000
	if testing.Short() {
		ops = 2_000
	}
	for _, kind := range bothPolicies {
		for _, withClear := range []bool{true, false} {
			name := kind.String() + "/no-clear"
			if withClear {
				name = kind.String() + "/clear"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := newTestCache(t, WithMaxSize(maxSize), WithPolicy(kind))
				var (
					hits, misses atomic.Uint64
					wg           sync.WaitGroup
					done         = make(chan struct{})
					samplerDone  = make(chan struct{})
					samples      int
				)
				go func() {
					defer close(samplerDone)
					var last stats.Stats
					for {
						// A sample before each look at done: the workers
						// may all end before this goroutine first runs.
						samples++
						if n := c.Len(); n > maxSize {
							t.Errorf("Len() = %d > MaxSize %d", n, maxSize)
							return
						}
						st := c.Stats()
						if st.CurrentSize > maxSize {
							t.Errorf("Stats().CurrentSize = %d > MaxSize %d", st.CurrentSize, maxSize)
							return
						}
						// Without Clear, counts of completed lookups only grow.
						if !withClear && (st.Hits < last.Hits || st.Misses < last.Misses) {
							t.Errorf("Stats went back: hits %d -> %d, misses %d -> %d", last.Hits, st.Hits, last.Misses, st.Misses)
							return
						}
						last = st
						select {
						case <-done:
							return
						default:
						}
					}
				}()
				for g := range goroutines {
					wg.Go(func() {
						r := rand.New(rand.NewPCG(uint64(g), 42))
						for range ops {
							k := r.IntN(keys)
							switch op := r.IntN(100); {
							case op < 60:
								v, err := c.Get(k)
								switch {
								case err == nil:
									hits.Add(1)
									if v != k {
										t.Errorf("Get(%d) = %v, another key's value", k, v)
									}
								case errors.Is(err, ErrNotFound):
									misses.Add(1)
								default:
									t.Errorf("Get(%d): %v", k, err)
								}
							case op < 90:
								c.Set(k, k)
							case op < 99 || !withClear:
								c.Delete(k)
							default:
								c.Clear()
							}
						}
					})
				}
				wg.Wait()
				close(done)
				<-samplerDone
				assert.LessOrEqual(t, c.Len(), maxSize)
				assert.Positive(t, samples)
				if withClear {
					return
				}
				st := c.Stats()
				assert.Equal(t, hits.Load(), st.Hits, "Stats().Hits")
				assert.Equal(t, misses.Load(), st.Misses, "Stats().Misses")
				assert.Equal(t, hits.Load()+misses.Load(), st.Hits+st.Misses, "one hit or miss per Get")
				assert.Positive(t, st.Hits)
				assert.Positive(t, st.Evictions)
				assert.Equal(t, c.Len(), mapLen(c), "shard maps and policy agree")
			})
		}
	}
}

// TestCacheEvictions checks which entry goes and the Evictions count on
// short deterministic sequences.
func TestCacheEvictions(t *testing.T) {
	t.Parallel()
	type step struct {
		op  string // "set" or "get"
		key int
	}
	set := func(k int) step { return step{"set", k} }
	get := func(k int) step { return step{"get", k} }
	tests := []struct {
		name      string
		kind      policies.Kind
		size      int
		steps     []step
		present   []int
		absent    []int
		evictions uint64
	}{
		{"lru/oldest goes", policies.LRU, 3,
			[]step{set(1), set(2), set(3), set(4), set(5)},
			[]int{3, 4, 5}, []int{1, 2}, 2},
		{"lru/get is a use", policies.LRU, 3,
			[]step{set(1), set(2), set(3), get(1), set(4)},
			[]int{1, 3, 4}, []int{2}, 1},
		{"lru/set of an existing key is a use", policies.LRU, 3,
			[]step{set(1), set(2), set(3), set(1), set(4)},
			[]int{1, 3, 4}, []int{2}, 1},
		{"lru/size 1", policies.LRU, 1,
			[]step{set(1), get(1), set(2), set(3)},
			[]int{3}, []int{1, 2}, 2},
		{"lfu/least used goes", policies.LFU, 3,
			[]step{set(1), set(2), set(3), get(1), get(1), get(3), set(4)},
			[]int{1, 3, 4}, []int{2}, 1},
		{"lfu/ties go to the first to reach the count", policies.LFU, 3,
			[]step{set(1), set(2), set(3), get(3), get(2), get(1), set(4)},
			[]int{1, 2, 4}, []int{3}, 1},
		{"lfu/set of an existing key is a use", policies.LFU, 3,
			[]step{set(1), set(2), set(3), set(1), set(4)},
			[]int{1, 3, 4}, []int{2}, 1},
		// The new entry must not be its own victim when every other entry
		// has been used more than once (it was, before store made room
		// before adding).
		{"lfu/new entry is not its own victim", policies.LFU, 2,
			[]step{set(1), set(2), get(1), get(2), set(3)},
			[]int{2, 3}, []int{1}, 1},
		{"lfu/new entries replace each other", policies.LFU, 3,
			[]step{set(1), set(2), get(1), get(2), set(3), set(4), set(5)},
			[]int{1, 2, 5}, []int{3, 4}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestCache(t, WithMaxSize(tt.size), WithPolicy(tt.kind))
			for _, s := range tt.steps {
				if s.op == "set" {
					c.Set(s.key, s.key)
				} else {
					_, err := c.Get(s.key)
					require.NoError(t, err, "step get(%d)", s.key)
				}
			}
			assert.Equal(t, tt.evictions, c.Stats().Evictions)
			assert.Equal(t, len(tt.present), c.Len())
			// Check absent keys first: a Get is a use and reorders.
			for _, k := range tt.absent {
				assertMiss(t, c, k)
			}
			for _, k := range tt.present {
				assertHit(t, c, k, k)
			}
		})
	}
}

// TestCacheClear checks that Clear drops every entry and resets every
// statistic, and that the cache works normally afterwards.
func TestCacheClear(t *testing.T) {
	t.Parallel()
	for _, kind := range bothPolicies {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			c := newTestCache(t, WithMaxSize(2), WithPolicy(kind), WithTTL(time.Hour))
			c.Set(1, 1)
			c.Set(2, 2)
			c.Set(3, 3) // one eviction
			_, _ = c.Get(3)
			_, _ = c.Get(4)
			c.UpdateProfiling(time.Millisecond)
			require.Equal(t, 2, c.Len())

			c.Clear()
			assert.Equal(t, 0, c.Len())
			assert.Equal(t, 0, mapLen(c))
			st := c.Stats()
			assert.Equal(t, uint64(0), st.Hits)
			assert.Equal(t, uint64(0), st.Misses)
			assert.Equal(t, uint64(0), st.Evictions)
			assert.Equal(t, uint64(0), st.TotalCalls)
			assert.Equal(t, time.Duration(0), st.TotalTime)
			assert.Equal(t, time.Duration(0), st.MinTime)
			assert.Equal(t, time.Duration(0), st.MaxTime)
			assert.Equal(t, 0, st.CurrentSize)
			assert.Equal(t, 2, st.MaxSize, "configuration is kept")
			assert.Equal(t, time.Hour, st.TTL, "configuration is kept")

			assertMiss(t, c, 3)
			c.Set(5, 5)
			c.Set(6, 6)
			c.Set(7, 7)
			assertHit(t, c, 7, 7)
			st = c.Stats()
			assert.Equal(t, uint64(1), st.Hits)
			assert.Equal(t, uint64(1), st.Misses)
			assert.Equal(t, uint64(1), st.Evictions)
			assert.Equal(t, 2, st.CurrentSize)
		})
	}
}

// TestCacheResetStats checks that ResetStats zeroes the statistics and
// keeps the entries.
func TestCacheResetStats(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, WithMaxSize(10))
	c.Set("a", 1)
	c.Set("b", 2)
	assertHit(t, c, "a", 1)
	assertMiss(t, c, "c")
	c.UpdateProfiling(time.Millisecond)

	c.ResetStats()
	st := c.Stats()
	assert.Equal(t, uint64(0), st.Hits)
	assert.Equal(t, uint64(0), st.Misses)
	assert.Equal(t, uint64(0), st.TotalCalls)
	assert.Equal(t, time.Duration(0), st.MaxTime)
	assert.Equal(t, 2, st.CurrentSize, "entries are kept")
	assert.Equal(t, 2, c.Len())

	assertHit(t, c, "a", 1)
	assertHit(t, c, "b", 2)
	st = c.Stats()
	assert.Equal(t, uint64(2), st.Hits)
	assert.Equal(t, uint64(0), st.Misses)
}

// TestCacheStatsResetPendingHits checks hits still sitting in a read
// stripe (not yet drained into the policy) against Stats, ResetStats and
// Clear.
func TestCacheStatsResetPendingHits(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, WithMaxSize(10))
	c.Set(1, 1)
	for range engine.StripeSize + 3 { // one drain by the reader, three pending
		assertHit(t, c, 1, 1)
	}
	assert.Equal(t, uint64(engine.StripeSize+3), c.Stats().Hits)
	c.ResetStats()
	assert.Equal(t, uint64(0), c.Stats().Hits)
	assertHit(t, c, 1, 1)
	c.Set(2, 2) // drains
	assert.Equal(t, uint64(1), c.Stats().Hits)
	assertHit(t, c, 1, 1)
	c.Clear()
	assert.Equal(t, uint64(0), c.Stats().Hits)
}

// TestCacheProfiling checks that UpdateProfiling samples feed TotalCalls,
// TotalTime, MinTime, MaxTime and the average.
func TestCacheProfiling(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, WithMaxSize(10))
	st := c.Stats()
	assert.Equal(t, uint64(0), st.TotalCalls)
	assert.Equal(t, time.Duration(0), st.AvgTime())
	for _, d := range []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond} {
		c.UpdateProfiling(d)
	}
	st = c.Stats()
	assert.Equal(t, uint64(3), st.TotalCalls)
	assert.Equal(t, 6*time.Millisecond, st.TotalTime)
	assert.Equal(t, time.Millisecond, st.MinTime)
	assert.Equal(t, 3*time.Millisecond, st.MaxTime)
	assert.Equal(t, 2*time.Millisecond, st.AvgTime())
	assert.Equal(t, uint64(0), st.Failures)
	assert.Equal(t, uint64(0), st.Hits+st.Misses, "samples are not lookups")
}

// TestCacheStatsMap checks the original's get_stats() dict through a Cache.
func TestCacheStatsMap(t *testing.T) {
	t.Parallel()
	t.Run("ratio and sizes", func(t *testing.T) {
		t.Parallel()
		c := newTestCache(t, WithMaxSize(5))
		c.Set(1, 1)
		assertHit(t, c, 1, 1)
		assertMiss(t, c, 2)
		m := c.Stats().Map()
		assert.Equal(t, 1, m["hits"])
		assert.Equal(t, 1, m["misses"])
		assert.Equal(t, "0.5000", m["hit_miss_ratio"])
		assert.Equal(t, 1, m["current_size"])
		assert.Equal(t, 5, m["max_size"])
		assert.Equal(t, 0, m["total_calls"])
		assert.Equal(t, "None", m["ttl_sec"])
		for _, k := range []string{"avg_time", "min_time", "max_time"} {
			assert.Equal(t, "0.0000 s", m[k], k)
		}
		assert.Len(t, m, 10)
	})
	t.Run("ttl and timings", func(t *testing.T) {
		t.Parallel()
		c := newTestCache(t, WithMaxSize(5), WithTTL(time.Minute))
		m := c.Stats().Map()
		assert.Equal(t, "60.0000", m["ttl_sec"])
		assert.Equal(t, "0.0000", m["hit_miss_ratio"])
		assert.Equal(t, "0.0000 s", m["avg_time"])
		c.UpdateProfiling(1200 * time.Microsecond)
		m = c.Stats().Map()
		assert.Equal(t, "0.0012 s", m["avg_time"])
		assert.Equal(t, "0.0012 s", m["min_time"])
		assert.Equal(t, "0.0012 s", m["max_time"])
		assert.Equal(t, 1, m["total_calls"])
	})
}

// TestCacheGetSetDelete checks the basic operations and key equality
// through MakeHashable's rules.
func TestCacheGetSetDelete(t *testing.T) {
	t.Parallel()
	t.Run("get set delete", func(t *testing.T) {
		t.Parallel()
		c := newTestCache(t, WithMaxSize(10))
		assertMiss(t, c, "k")
		c.Set("k", "v1")
		assertHit(t, c, "k", "v1")
		c.Set("k", "v2")
		assertHit(t, c, "k", "v2")
		assert.Equal(t, 1, c.Len(), "Set on an existing key replaces")
		assert.True(t, c.Delete("k"))
		assert.False(t, c.Delete("k"))
		assert.False(t, c.Delete("never"))
		assertMiss(t, c, "k")
		assert.Equal(t, 0, c.Len())
		c.Set(nil, "nil key")
		assertHit(t, c, nil, "nil key")
		c.Set("nil value", nil)
		assertHit(t, c, "nil value", nil)
	})
	t.Run("values are returned as stored", func(t *testing.T) {
		t.Parallel()
		c := newTestCache(t, WithMaxSize(10))
		p := &struct{ n int }{1}
		c.Set("p", p)
		v, err := c.Get("p")
		require.NoError(t, err)
		assert.Same(t, p, v)
	})
	t.Run("distinct keys", func(t *testing.T) {
		t.Parallel()
		type myInt int
		pairs := []struct {
			name string
			a, b any
		}{
			{"int and int64", int(1), int64(1)},
			{"int and named int", int(1), myInt(1)},
			{"int and uint", int(1), uint(1)},
			{"-0.0 and +0.0", math.Copysign(0, -1), 0.0},
			{"float32 and float64", float32(1), float64(1)},
			{"string and []byte", "ab", []byte("ab")},
			{"slice and array", []int{1, 2}, [2]int{1, 2}},
			{"nil and empty slice", []int(nil), []int{}},
			{"nil and empty map", map[string]int(nil), map[string]int{}},
			{"true and 1", true, int8(1)},
			{"nil and zero", nil, 0},
			{"two pointers to equal values", new(int), new(int)},
		}
		for _, p := range pairs {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				c := newTestCache(t, WithMaxSize(10))
				c.Set(p.a, "a")
				assertMiss(t, c, p.b)
				c.Set(p.b, "b")
				assertHit(t, c, p.a, "a")
				assertHit(t, c, p.b, "b")
				assert.Equal(t, 2, c.Len())
			})
		}
	})
	t.Run("equal keys", func(t *testing.T) {
		t.Parallel()
		up, down := map[int]string{}, map[int]string{}
		for i := range 100 {
			up[i] = fmt.Sprint(i)
			down[99-i] = fmt.Sprint(99 - i)
		}
		x := 7
		pairs := []struct {
			name string
			a, b any
		}{
			{"NaN", math.NaN(), math.Float64frombits(math.Float64bits(math.NaN()) ^ 1)},
			{"maps in any order", up, down},
			{"equal slices", []string{"a", "b"}, []string{"a", "b"}},
			{"equal structs", struct{ A, b int }{1, 2}, struct{ A, b int }{1, 2}},
			{"same pointer", &x, &x},
		}
		for _, p := range pairs {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				c := newTestCache(t, WithMaxSize(10))
				c.Set(p.a, "a")
				assertHit(t, c, p.b, "a")
				c.Set(p.b, "b")
				assertHit(t, c, p.a, "b")
				assert.Equal(t, 1, c.Len())
				assert.True(t, c.Delete(p.b))
				assertMiss(t, c, p.a)
			})
		}
	})
}
