package policies

import (
	"fmt"
	"strings"
)

// Kind names an eviction policy. The zero value is [LRU]; memo's caches
// default to [WTinyLFU] when no policy is given.
type Kind int

const (
	// LRU evicts the least recently used entry.
	LRU Kind = iota
	// LFU evicts the least frequently used entry; among entries with the
	// same use count, the one that reached that count first goes first.
	LFU
	// WTinyLFU is an adaptive Window TinyLFU: new entries enter a small LRU
	// window, a frequency sketch decides which of the window's oldest entry
	// and the main space's oldest entry stays, and miniature simulations
	// size the window to the workload. See [NewSized].
	WTinyLFU
)

// String returns the policy's name as [Parse] accepts it: "lru", "lfu" or
// "w-tinylfu". An invalid Kind prints as "Kind(n)".
func (k Kind) String() string {
	switch k {
	case LRU:
		return "lru"
	case LFU:
		return "lfu"
	case WTinyLFU:
		return "w-tinylfu"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Valid reports whether k is one of the defined policies.
func (k Kind) Valid() bool { return k == LRU || k == LFU || k == WTinyLFU }

// Parse returns the Kind named by s, ignoring case and surrounding spaces:
// "lru", "lfu", or "w-tinylfu" (also "wtinylfu" and "tinylfu"). An unknown
// name is an error that starts "memo:" and lists the names.
func Parse(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "lru":
		return LRU, nil
	case "lfu":
		return LFU, nil
	case "w-tinylfu", "wtinylfu", "tinylfu":
		return WTinyLFU, nil
	}
	return 0, fmt.Errorf("memo: unknown policy %q (want \"lru\", \"lfu\" or \"w-tinylfu\")", s)
}
