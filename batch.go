package memo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Batch memoizes fn, a function that loads many keys at once, key by key.
//
// Each key is an entry of its own, keyed exactly as a single argument of
// type K is keyed by [FuncCtx] (memo's key rules), so that a key loaded by
// one call is a hit for every later call that asks for it, in any batch,
// and for the single-key form that [Single] makes. A call of the returned
// function:
//
//   - serves the keys whose entries are in the cache;
//   - joins the keys that another execution is already loading (another
//     call of the batch function or of its Single form, a refresh, and with
//     [WithTier] another replica), and waits for those keys only;
//   - calls fn once for the rest (split into several calls by
//     [WithMaxBatch], and merged with other callers' misses by
//     [WithBatchWindow]).
//
// Keys that are == collapse into one: fn never sees a key twice in one
// call, and the result holds it once. The result map holds the keys that
// have a value; it is not nil unless the call returns ctx.Err() (see
// Contexts). fn's input slice is fn's own: it may keep or change it.
//
// # What fn returns
//
// fn returns a value for each key it found, in its map. A key that fn
// leaves out of its map is absent: it is not in the result, [Single]
// reports it as [ErrNotFound], and nothing is stored for it, so the next
// call asks fn again. With [WithErrorTTL](d) the absence is stored like an
// error: for d, calls find the key absent without asking fn (a negative
// entry). Values in fn's map for keys it was not asked are ignored.
//
// A non-nil error from fn fails every key of that call of fn, and only
// those: keys the caller was served from the cache, or joined from another
// execution that succeeded, still have their values. To fail some keys
// only, fn returns its map of the keys that succeeded together with a
// [KeyErrors] holding an error for each key that failed (wrapped or not:
// it is found with errors.As); a key in both the map and the KeyErrors has
// failed. Errors are not stored unless [WithErrorTTL].
//
// The returned function reports failed keys in a [KeyErrors] of its own:
// its map holds every key that has a value, and its error, when not nil,
// is a KeyErrors with an error for each key that failed (errors.Is and
// errors.As see through it to each key's error). A caller with only
// absent or successful keys gets a nil error.
//
// A panic in fn is recovered: every key of that call of fn fails with a
// *[PanicError] holding the panic value and the stack (in the KeyErrors;
// [Single] returns it as its error), for every caller waiting on any of
// those keys; runtime.Goexit in fn fails them with a *PanicError too
// (but a caller that calls fn on its own goroutine, see Contexts, is
// unwound by it, as a FuncCtx caller is).
// Nobody hangs, nothing is stored, and the batch function stays usable.
//
// # Contexts
//
// Every caller leaves on its own context: when ctx ends before all of its
// keys are answered, the call returns nil and ctx.Err() at once, while the
// executions it led or joined go on for the other callers waiting on them.
// (When fn, honouring the caller's deadline, ends first with that
// deadline's error, the keys fail with it: the call returns its map and a
// KeyErrors, and errors.Is(err, context.DeadlineExceeded) holds either
// way.) fn runs in a goroutine of its own, under a context that keeps the values
// of its callers and the latest deadline among theirs, and that is
// cancelled only when every caller waiting on any key of that execution
// has gone; a caller whose context can never end (ctx.Done() is nil, as
// for context.Background()) and whose keys merge with nobody's calls fn on
// its own goroutine, as a FuncCtx caller does. A caller whose key's execution ends with a deadline error that
// was not its own (another caller's deadline passed) while its own context
// is live starts, or joins, a fresh execution for that key, as [FuncCtx]
// callers do. A nil ctx stands for context.Background().
//
// # Options
//
// Batch takes the options of [FuncCtx] ([WithMaxSize], [WithPolicy],
// [WithTTL], [WithCache], [WithErrorTTL], [WithDeref], [WithName],
// [WithLogger], [WithTier], [WithRefreshAfter] and the other freshness
// options), which mean for each key what they mean for a single-key
// function, and [WithBatchWindow] and [WithMaxBatch]. With
// [WithRefreshAfter], keys that fall due close together are refreshed by
// one background call of fn rather than one per key. [CacheOf],
// [Invalidate] (Invalidate(batchFn, key) drops that key's entry),
// [InvalidateContext], [ClearAll], [Caches] and the statistics work on the
// returned function as on any memoized function; the statistics count each
// key as one lookup (a hit or a miss) and each call of fn as one execution
// (so that Led, which counts the keys a caller led, may exceed TotalCalls;
// a call of fn counts in Failures when it panics or returns an error other
// than a KeyErrors). [WithKey] does not apply: each entry is keyed by its K.
//
// Batch panics, with a message that starts "memo:", on a nil fn, an
// invalid option, or a K that is context.Context. The returned function is
// safe for concurrent use.
func Batch[K comparable, V any](fn func(context.Context, []K) (map[K]V, error), opts ...Option) func(context.Context, []K) (map[K]V, error) {
	if fn == nil {
		panic(errors.New("memo: Batch(nil): pass the batch function to memoize"))
	}
	if reflect.TypeFor[K]() == contextType {
		panic(errors.New("memo: Batch cannot key by context.Context: a context is never part of a key; make K the type of the keys fn loads"))
	}
	bc, rest := splitBatchOptions(opts)
	if err := bc.validate(); err != nil {
		panic(err)
	}
	if cfg, err := newConfig(rest, true); err == nil && cfg.key != nil {
		panic(errors.New("memo: WithKey does not apply to Batch: each entry is keyed by its K (give K a CacheKey method to choose what identifies it)"))
	}
	b := &batchFunc[K, V]{fn: fn, maxBatch: bc.maxBatch}
	// The per-key function, func(ctx, K) (V, error), gives the batch
	// function its keys, entries and options, as FuncCtx's would; the
	// cache is named after fn.
	b.w = newTyped(b.loadOne, append([]Option{withSymbol(symbolOf(reflect.ValueOf(fn)))}, rest...), "Batch", true)
	b.w.batch = b
	if bc.windowSet {
		b.window = &batchWindow[K, V]{b: b, maxWait: bc.window, maxKeys: bc.windowKeys}
	}
	if b.w.refreshes() {
		b.refresh = &batchWindow[K, V]{b: b, maxWait: refreshWindow, refresh: true}
	}
	f := b.call
	register(reflect.ValueOf(f), b.w)
	return f
}

// Single returns the single-key form of batch, a function returned by
// [Batch]: single(ctx, k) is batch(ctx, []K{k}) for one key, over the same
// entries, so that each form hits the entries the other stored and joins
// the executions the other started. A key that batch's fn leaves out is
// an error that errors.Is(err, [ErrNotFound]); a key that failed returns
// its own error (not the [KeyErrors] around it), a *[PanicError] if fn
// panicked. When ctx ends first, single returns ctx.Err().
//
// [CacheOf], [Invalidate] (Invalidate(single, k)) and [InvalidateContext]
// work on the returned function as on batch. Single panics, with a message
// that starts "memo:", if batch is nil or was not returned by Batch (a
// plain batch function has no entries to share: memoize it with Batch
// first). The returned function is safe for concurrent use.
func Single[K comparable, V any](batch func(context.Context, []K) (map[K]V, error)) func(context.Context, K) (V, error) {
	if batch == nil {
		panic(errors.New("memo: Single(nil): pass a function returned by Batch"))
	}
	w := lookupWrapped(batch)
	if w == nil || w.typ.NumIn() != 2 || w.typ.In(1) != reflect.TypeFor[K]() {
		panic(fmt.Errorf("memo: Single: %T is not a function returned by Batch; memoize the batch function with Batch first, then pass Batch's result to Single", batch))
	}
	b, ok := w.batch.(*batchFunc[K, V])
	if !ok {
		panic(fmt.Errorf("memo: Single: %T is not a function returned by Batch; memoize the batch function with Batch first, then pass Batch's result to Single", batch))
	}
	f := b.one
	register(reflect.ValueOf(f), w)
	return f
}

// WithBatchWindow makes a function memoized by [Batch] gather misses:
// the keys that concurrent callers miss within maxWait of the first of
// them (or until maxKeys keys are gathered, whichever comes first) go to
// one call of fn. maxWait must be positive (at least a microsecond);
// maxKeys must not be negative, and 0 means no bound but maxWait (and
// [WithMaxBatch]). The window opens when another call of fn is already
// running for this batch function, or when other callers arrive with the
// first (it lets them run once, runtime.Gosched, before it decides): a call
// that finds no call of fn running and no other caller calls fn at once,
// so that no caller waits for a window when it is alone, and the keys
// missed meanwhile are gathered for the next call. A caller whose
// context ends while its keys are gathered leaves at once; its keys that
// no other caller wants are dropped from the gathered call.
//
// Without this option no caller waits for another: each call's misses go
// to a call of fn of their own. WithBatchWindow applies to Batch only:
// [Decorate], [New] and the typed functions reject it.
func WithBatchWindow(maxWait time.Duration, maxKeys int) Option {
	return batchOption(func(c *batchConfig) {
		c.window, c.windowKeys, c.windowSet = maxWait, maxKeys, true
	})
}

// WithMaxBatch bounds the keys that one call of a [Batch] function's fn
// is given to n (n >= 1): a call that misses more keys calls fn several
// times, concurrently, with at most n keys each (and a [WithBatchWindow]
// that gathers n keys calls fn at once). The default is no bound.
// WithMaxBatch applies to Batch only: [Decorate], [New] and the typed
// functions reject it.
func WithMaxBatch(n int) Option {
	return batchOption(func(c *batchConfig) { c.maxBatch, c.maxBatchSet = n, true })
}

// batchConfig holds the options only Batch takes.
type batchConfig struct {
	window      time.Duration
	windowKeys  int
	windowSet   bool
	maxBatch    int
	maxBatchSet bool
}

// batchOption is an Option only Batch takes: Batch applies it to its
// batchConfig, and anything else that meets it reports the mistake.
type batchOption func(*batchConfig)

func (o batchOption) apply(c *config) {
	c.errs = append(c.errs, errors.New("memo: WithBatchWindow and WithMaxBatch apply to functions memoized by Batch, not to Decorate, New or the typed functions"))
}

// splitBatchOptions applies the batch options of opts and returns the
// others.
func splitBatchOptions(opts []Option) (batchConfig, []Option) {
	var bc batchConfig
	rest := make([]Option, 0, len(opts))
	for _, o := range opts {
		if b, ok := o.(batchOption); ok {
			b(&bc)
			continue
		}
		rest = append(rest, o)
	}
	return bc, rest
}

func (c batchConfig) validate() error {
	var errs []error
	if c.windowSet && c.window < time.Microsecond {
		errs = append(errs, fmt.Errorf("memo: WithBatchWindow(%v, %d): the wait must be at least 1µs (a time.Duration counts nanoseconds)", c.window, c.windowKeys))
	}
	if c.windowSet && c.windowKeys < 0 {
		errs = append(errs, fmt.Errorf("memo: WithBatchWindow(%v, %d): maxKeys must not be negative (0 for no bound)", c.window, c.windowKeys))
	}
	if c.maxBatchSet && c.maxBatch < 1 {
		errs = append(errs, fmt.Errorf("memo: WithMaxBatch(%d): fn must be given at least one key", c.maxBatch))
	}
	return errors.Join(errs...)
}

// withSymbol names the cache, in Caches, by the user's function rather
// than by the closure that wraps it.
func withSymbol(s string) Option {
	return optionFunc(func(c *config) { c.symbol = s })
}
