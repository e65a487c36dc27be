// Package engine is memo's concurrent cache: what a memo.Cache holds and
// does below its API. It knows nothing of memo's public types; the root
// package gives it encoded keys and hashes, values as any, and the
// decisions (Verdict) and options (FreshOpts) it needs, and turns what it
// reports (a Call's panic, its results) into the API's.
//
// The files build on one another, each using only those before it:
// entry.go (an entry: Node, its key and expiry data), index.go (the
// lock-free key → entry index and the hashes), reads.go (the read buffers
// that record hits for the policy), call.go (an execution in flight: Call,
// and the shards that hold them), core.go (Core: a cache's state),
// expiry.go (expiry lists and heap, identity cleanups, removal and
// eviction), store.go (lookups and stores) and flight.go (call coalescing,
// refresh-ahead and stale-if-error).
//
// Call coalescing follows golang.org/x/sync/singleflight: one execution per
// key in flight, its result handed to every caller that asked meanwhile.
// What singleflight lacks is added: callers with their own contexts (and
// deadlines), invalidation of an execution in flight, and calls made from
// inside an execution for its own key, which must not wait on it.
//
// Locks: Core.mu guards the policy, the expiry lists and the timer; then a
// shard's mu guards its executions in flight; then a read stripe's mu.
// Lookups take none of them.
package engine
