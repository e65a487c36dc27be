// Package sim replays request streams through an eviction policy the way a
// memo cache drives it, one request at a time, to measure hit ratios.
package sim

import (
	"fmt"

	"github.com/memokit/memo/policies"
)

// Cache is a cache of keys only, with a fixed capacity in entries, evicting
// by a policy. It is not safe for concurrent use.
type Cache struct {
	policy   policies.Policy[uint64]
	addFirst bool // the policy admits (W-TinyLFU): add, then evict
	// recording is set while hits are passed to the policy: from the
	// start for LRU and LFU, for W-TinyLFU once the cache has been half
	// full, as memo's Cache records them.
	recording bool
	index     map[uint64]*policies.Node[uint64]
	size      int
	result    Result
}

// New returns an empty Cache of size entries evicting by kind. It panics if
// size is not positive or kind is not valid.
func New(kind policies.Kind, size int) *Cache {
	if size <= 0 {
		panic(fmt.Sprintf("memo: sim: size %d, want > 0", size))
	}
	return newHashed(kind, size, Hash)
}

// NewSeeded is New with W-TinyLFU hashing a key by SeededHash(key, seed)
// rather than Hash: another draw of the hash function, as another key type
// or encoding gives the policy in a memo cache. Replays over several seeds
// tell a policy's design from the luck of one hash (issue 20). It panics
// as New does.
func NewSeeded(kind policies.Kind, size int, seed uint64) *Cache {
	if size <= 0 {
		panic(fmt.Sprintf("memo: sim: size %d, want > 0", size))
	}
	return newHashed(kind, size, func(n *policies.Node[uint64]) uint64 { return SeededHash(n.Value, seed) })
}

func newHashed(kind policies.Kind, size int, hash func(*policies.Node[uint64]) uint64) *Cache {
	return &Cache{
		policy:    policies.NewSized(kind, size, hash),
		addFirst:  kind == policies.WTinyLFU,
		recording: kind != policies.WTinyLFU,
		index:     make(map[uint64]*policies.Node[uint64], size),
		size:      size,
	}
}

// Access requests key and reports whether it was a hit. On a miss the key is
// inserted, evicting the policy's victim first when the cache is full.
func (c *Cache) Access(key uint64) bool {
	c.result.Requests++
	if n, ok := c.index[key]; ok {
		if c.recording {
			c.policy.Touch(n)
		}
		c.result.Hits++
		return true
	}
	n := &policies.Node[uint64]{Value: key}
	if c.addFirst {
		c.policy.Add(n)
		c.index[key] = n
		c.recording = c.recording || 2*c.policy.Len() >= c.size
		for c.policy.Len() > c.size {
			v := c.policy.Victim()
			c.policy.Remove(v)
			delete(c.index, v.Value)
		}
		return false
	}
	if c.policy.Len() >= c.size {
		v := c.policy.Victim()
		c.policy.Remove(v)
		delete(c.index, v.Value)
	}
	c.policy.Add(n)
	c.index[key] = n
	return false
}

// Hash is the key hash the simulator gives W-TinyLFU: a multiplicative
// hash of the key (the sketch spreads it further).
func Hash(n *policies.Node[uint64]) uint64 { return n.Value * 0x9e3779b97f4a7c15 }

// SeededHash is splitmix64 (Steele, Lea and Flood, "Fast Splittable
// Pseudorandom Number Generators", OOPSLA 2014) of key xor a multiple of
// seed: for each seed, a well-mixed hash unrelated to the other seeds'.
func SeededHash(key, seed uint64) uint64 {
	x := key ^ seed*0x632be59bd9b4e019
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// Result returns the counts so far.
func (c *Cache) Result() Result { return c.result }

// Result counts the requests of a replay and how many of them hit.
type Result struct {
	Requests, Hits int
}

// HitRatio returns hits per request as a percentage, 0 with no requests.
func (r Result) HitRatio() float64 {
	if r.Requests == 0 {
		return 0
	}
	return 100 * float64(r.Hits) / float64(r.Requests)
}

// String formats the hit ratio with two decimals, as "11.21".
func (r Result) String() string { return fmt.Sprintf("%.2f", r.HitRatio()) }

// Replay runs keys through a new Cache of size entries evicting by kind.
func Replay(kind policies.Kind, size int, keys []uint64) Result {
	c := New(kind, size)
	for _, k := range keys {
		c.Access(k)
	}
	return c.Result()
}

// ReplaySeeded is Replay with the keys hashed by SeededHash(key, seed).
func ReplaySeeded(kind policies.Kind, size int, keys []uint64, seed uint64) Result {
	c := NewSeeded(kind, size, seed)
	for _, k := range keys {
		c.Access(k)
	}
	return c.Result()
}

// A Reference is a hit ratio known for a trace, replayed one request at a
// time from a cold start (shared/traces/README.md and SPEC.md), as
// Result.String prints it.
type Reference struct {
	File     string // relative to the traces folder
	Size     int
	LRU, LFU string
	Long     bool // a trace long enough to skip under -short
}

// References are the hit ratios every replay of memo's policies must give.
var References = []Reference{
	{"lirs/gli.trace.gz", 1000, "11.21", "31.34", false},
	{"arc/OLTP.lis.gz", 1000, "32.83", "13.83", true}, // 914k requests
}
