package memo

import (
	"context"
	"log/slog"
	"reflect"
	"time"
)

// Tier is a second-level store shared by the processes (replicas) that run
// the same code, such as the Redis tier of the module
// github.com/memokit/memo/redistier. A function decorated with [WithTier]
// keeps its local cache (L1) and, on a local miss, asks the tier (L2)
// before it runs: replicas share results, a cold key runs once across all
// of them, and an invalidation reaches every replica.
//
// memo calls a Tier and its bindings as follows; another store can be
// plugged in by implementing the same contract.
//
//   - Bind is called once per decorated function, at decoration time, from
//     the goroutine that decorates. It receives the function's description
//     ([TierFunc]) and returns a [TierBinding], or an error when the tier
//     cannot store the function's results (a result type its codec cannot
//     encode exactly); Decorate then panics with that error.
//   - memo keeps every other rule of the local cache: a hit in L1 never
//     reaches the tier, and concurrent local callers of one key share one
//     execution, so a binding sees at most one Load per key at a time
//     from one process (after a local invalidation, a new one may start
//     while the old one is finishing), and at most one Refresh (a refresh
//     past its deadline may still be finishing). A Refresh may overlap a
//     Load of its key: callers past the entry's TTL do not wait for a
//     refresh in flight (see [WithRefreshAfter]).
//   - A refresh ([WithRefreshAfter]) of a due entry calls Refresh from a
//     goroutine of its own; the stale results of [WithStaleIfError] are
//     the local cache's, and never reach the tier.
//
// A Tier must be safe for concurrent use.
type Tier interface {
	Bind(f TierFunc) (TierBinding, error)
}

// TierFunc describes a decorated function to a [Tier].
type TierFunc struct {
	// Name is the function's WithName: the same in every replica.
	Name string
	// Schema is a SHA-256 fingerprint of the function's parameter and
	// result types, with the structure of every named type in them: code
	// whose types changed gets another fingerprint, and must not read the
	// values the old code stored.
	Schema [32]byte
	// Results are the types of the results to store, in order: every
	// result of the function but a trailing error.
	Results []reflect.Type
	// TTL is the function's local TTL (WithTTL), 0 when entries do not
	// expire; a tier may use it for its own entries.
	TTL time.Duration
	// Logger is the function's WithLogger logger, or nil for none.
	Logger *slog.Logger
	// Drop removes the local entry whose key has the canonical argument
	// bytes args ([TierKey].Args), and detaches an execution in flight for
	// it, so that it does not store its result. A tier calls it when
	// another replica invalidated that key. Safe for any goroutine.
	Drop func(args []byte)
	// Flush removes every local entry of the function's cache (a cache
	// shared with WithCache loses the other functions' entries too). A
	// tier calls it when it may have missed invalidations, for instance
	// after its subscription to other replicas' invalidations broke.
	Flush func()
}

// TierKey is the key of one call in a [Tier].
type TierKey struct {
	// Digest is SHA-256 over the function's name, its schema and Args:
	// the key to store under. Equal calls in any replica have equal
	// digests.
	Digest [32]byte
	// Args are the canonical bytes of the arguments: every type named by
	// its package path and name, nothing that is local to a process. The
	// slice belongs to the tier once passed (memo does not reuse it).
	Args []byte
}

// TierBinding is one decorated function's connection to a [Tier]. Its
// methods are called from many goroutines at once.
type TierBinding interface {
	// Load returns the results stored for key, with hit true, and ttl,
	// how much longer they live in the store (0: unknown, or no TTL).
	// memo keeps its local copy no longer than ttl when the function's
	// results have a TTL (WithTTL, WithTTLFunc), so that a value never
	// outlives the TTL it was given, wherever it is read from. Otherwise
	// Load calls compute exactly once, from the calling goroutine, and
	// returns hit false: compute runs the function (ctx is the context to
	// run it under) and returns the results to store, the TTL memo gave
	// them (WithTTL, or WithTTLFunc's for these results; 0: none, the
	// tier's own default applies) and whether they may be stored at all
	// (never an error result, a panic, which propagates out of Load:
	// release what is held in a defer, or results WithCacheIf refused).
	// memo decides store and ttl once per execution: the local cache
	// stores by the same decision. Load must not fail: when the store
	// cannot be reached it calls compute. Results from the store must
	// have the types of TierFunc.Results exactly.
	Load(ctx context.Context, key TierKey, compute TierCompute) (results []any, ttl time.Duration, hit bool)
	// Refresh is Load for a refresh ([WithRefreshAfter]) of a local entry
	// that is due: results in the store count only if they were created
	// after since (another replica refreshed them since), and are then
	// returned with hit true. Otherwise Refresh takes the key's lease even
	// though an older value may stand, calls compute exactly once from the
	// calling goroutine, writes its results over the old value through the
	// same fence as Load's fill, and returns hit false. When another
	// process holds the lease (its own refresh, or a cold fill), Refresh
	// waits for its fill, as Load does, and returns that value: across
	// every process that shares the key one refresh executes. Like Load it
	// must not fail (when the store cannot be reached it calls compute),
	// and it never writes an error or a panic. memo calls it from the
	// refresh's own goroutine, never from a caller's, with since = now −
	// the refresh interval (the local wall clock: replicas' clocks must
	// agree to well within the interval), at most once per key at a time
	// from one process (a refresh past its deadline may still be
	// finishing), and under a context that ends at the refresh's deadline:
	// a tier that keeps a lease alive while compute runs stops renewing it
	// once ctx ends (a hung refresh must not hold the key for ever).
	Refresh(ctx context.Context, key TierKey, since time.Time, compute TierCompute) (results []any, ttl time.Duration, hit bool)
	// Invalidate removes key's entry from the store, fences fills in
	// flight for it, and tells every other replica to Drop it locally.
	// memo calls it before it removes its own local entry, so that no
	// load of this process can store what it read before the delete. It
	// returns an error when the store could not be reached; the tier then
	// keeps retrying the invalidation on its own until it lands, and until
	// then it must not serve key from the store to this process (a Load
	// of key calls compute and stores nothing), so that the replica that
	// invalidated never reads the old value back.
	Invalidate(ctx context.Context, key TierKey) error
	// Clear removes every entry of the function from the store (and from
	// other replicas' local caches). It returns an error when the store
	// could not be reached.
	Clear(ctx context.Context) error
	// MaxLocalAge bounds how long an entry lives in the local cache while
	// the tier is on: each local entry of the function is removed once it
	// is that old, whatever its own TTL, so that an invalidation that did
	// not arrive cannot keep an old value for ever. 0 means no bound. memo
	// reads it once, at decoration.
	MaxLocalAge() time.Duration
	// Unbind tells the tier that the decorated function has been
	// collected: the binding is used no more, and the tier may drop what
	// it holds for it. memo calls it once, from a cleanup goroutine.
	Unbind()
}

// TierCompute runs a tiered function for [TierBinding.Load] and
// [TierBinding.Refresh]: it returns the results to store, the TTL memo
// gave them (0: none) and whether they may be stored. It is called at most
// once per Load or Refresh.
type TierCompute = func(ctx context.Context) (results []any, ttl time.Duration, store bool)

// tierName → weak.Pointer[wrapped]

// TierPeeker is an optional interface of a [TierBinding]: a binding that
// can read many keys at once implements it, and a function memoized by
// [Batch] reads the keys a call leads through it before it loads the rest
// one by one. Peek returns, for each key of keys, its results, how long
// they have left (0 for none), and whether it was found; a key whose value
// cannot be read or decoded is not found (the per-key Load then runs for
// it, under its lease). It must make as few round trips as it can (one
// per node of a cluster), take no lease and write nothing, and is called
// from many goroutines at once.
type TierPeeker interface {
	Peek(ctx context.Context, keys []TierKey) (results [][]any, ttls []time.Duration, found []bool)
}
