// Package memo memoizes Go functions: [Decorate] wraps a function of any
// signature and returns one of the same type that remembers its results,
// keyed exactly by its arguments, in a goroutine-safe [Cache] with adaptive
// W-TinyLFU (the default), LRU or LFU eviction (see [WithPolicy]), optional
// TTL expiry, call coalescing and statistics.
//
//	var getUser = memo.Decorate(lookupUser, memo.WithMaxSize(1000), memo.WithTTL(time.Minute))
//
//	name, err := getUser(ctx, 42)          // runs lookupUser once; later calls hit
//	st := memo.CacheOf(getUser).Stats()    // hits, misses, timings
//	memo.Invalidate(getUser, 42)           // drop one entry (the context is not part of the key)
//
// Two calls share an entry exactly when their arguments are equal under
// memo's key rules ([MakeHashable]): values of different types never match,
// floats compare by their bits with every NaN alike, maps as sets of pairs,
// pointers, channels and funcs by identity (without keeping objects alive,
// and never matching a new object at a reused address), a leading
// context.Context is left out. A wrong hit is the worst bug a memoizer can
// have; where the rules cannot tell, memo takes the miss.
//
// Concurrent callers of one key share one execution. A non-nil trailing
// error is returned and not stored (unless [WithErrorTTL]); panics are never
// stored; a caller whose context ends stops waiting at once.
//
// Results are shared: a hit returns the values the execution returned, to
// every caller, so a caller must not modify a returned slice, map or
// pointee (copy it first). Funcs and closures are keyed by identity, so an
// argument made fresh for each call, such as a functional option, never
// hits: give its type a CacheKey method ([CacheKeyer]) or use [WithKey].
//
// [Func], [FuncErr], [FuncCtx] and their two-argument forms give the same
// semantics for common shapes without reflect.MakeFunc: a hit allocates
// nothing and costs a lookup (about 20-40 ns) until the cache has been half
// full; from then on the default policy's bookkeeping (frequency sketch,
// miniature simulations) is drained on the hitting goroutine, which brings a
// Zipf call (62 % hits) in a full cache to 1.4 to 1.7 times a hand-written
// memo over otter's; a full cache that stops storing samples its hits for
// the policy and serves them at less than otter's cost (README, "The steady
// state: a full cache"). A miss of a
// function whose result Go would box (an int, a string, a struct)
// allocates once: the entry, which holds the result. [New] makes a
// cache on its own, with Get, Set and Delete.
//
// Mistakes panic at once with a message that starts "memo:" and says what
// to fix: invalid options at decoration (a TTL below a millisecond is taken
// for a missing unit), a method on a nil or zero [Cache], [Invalidate] with
// arguments that fit no call. [New] returns the same messages as errors.
//
// memo starts no goroutine per function or per cache. Everything is safe
// for concurrent use. memo is the Go successor of the Python library
// AlexBerUtils's AsyncCache and async_cache; its README maps their names.
package memo
