package memo

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
)

// funcIDs numbers decorated functions; each function's keys start with its
// number, so functions that share a cache never see each other's entries.
var funcIDs atomic.Uint64

// wrapped is what a decorated function runs.
type wrapped struct {
	c   *Cache
	fid uint64
	// held is what engine.Hold needs to keep a result in the entry that
	// stores it (see hold), made on the first miss.
	held atomic.Pointer[engine.HeldType]
	// batch is the *batchFunc of a function Batch returned (whose per-key
	// function w describes), for Single; nil for any other.
	batch any
	fn    reflect.Value
	typ   reflect.Type
	// ctx is set when a parameter is a context.Context, ctxAt is the index
	// of the first one (which governs waiting and cancellation), or -1.
	// When the only context leads, or there is none, skip is the number of
	// leading contexts (the key parameters are args[skip:]); else -1, and
	// shape lists them (see param).
	ctx   bool
	deref bool
	ctxAt int16
	skip  int16
	// recheck is set when a key may be computed from memory that the
	// copies of detach.go do not take (see mayReadThrough): an execution
	// that may outlive its callers then re-encodes its key when it ends.
	recheck bool
	errOut  int            // index of the trailing error result, or -1
	encs    []keys.Encoder // one per key parameter (the parameters but the contexts)
	shape   *argShape      // nil for the common shapes with nothing to copy
	// basic holds the kinds of the parameters after the context when all
	// are of Go's basic kinds, which call keys in a stack buffer; else nil.
	basic    []reflect.Kind
	key      func([]any) any
	errorTTL time.Duration
	boxes    *[2]sync.Pool     // the typed paths' argument copies (see box); nil for Decorate
	fo       *engine.FreshOpts // freshness options (options.go, refresh.go), or nil
	tier     *tierFunc         // the function's WithTier, or nil (tier.go)
}

func newWrapped(v reflect.Value, cfg config) *wrapped {
	t := v.Type()
	w := &wrapped{
		c:        cfg.cache,
		fid:      funcIDs.Add(1),
		fn:       v,
		typ:      t,
		ctxAt:    -1,
		skip:     -1,
		errOut:   -1,
		key:      cfg.key,
		deref:    cfg.deref,
		errorTTL: cfg.errorTTL,
		fo:       cfg.fresh.opts(),
	}
	if w.c == nil {
		if cfg.name == "" && cfg.symbol == "" { // Batch names its cache by the user's fn
			cfg.symbol = symbolOf(v)
		}
		w.c = newCache(cfg)
	}
	if n := t.NumOut(); n > 0 && t.Out(n-1) == errorType {
		w.errOut = n - 1
	}
	var params []int
	for i := range t.NumIn() {
		if t.In(i) == contextType {
			if !w.ctx {
				w.ctx, w.ctxAt = true, int16(i)
			}
			continue
		}
		params = append(params, i)
		w.encs = append(w.encs, keys.EncoderOf(t.In(i)))
	}
	var copiers []keys.Copier
	alone := false // exactly one argument needs a copier
	w.recheck = w.key != nil
	for i, p := range params {
		if !w.recheck && keys.MayReadThrough(t.In(p), w.deref, nil) {
			w.recheck = true
		}
		// With WithKey the key may read anything: the arguments are
		// copied as the default key would take them.
		if c := keys.CopierOf(t.In(p), w.deref); c != nil {
			if copiers == nil {
				copiers = make([]keys.Copier, len(params))
				alone = true
			} else {
				alone = false
			}
			copiers[i] = c
		}
	}
	// Keys of basic arguments are built in a stack buffer for the shapes
	// that the hit path handles: no context, or one leading context.
	if contexts := t.NumIn() - len(params); contexts == 0 || contexts == 1 && w.ctxAt == 0 {
		w.skip = int16(contexts)
		w.basic = keys.BasicKinds(t, w.ctxAt == 0)
		params = nil
	}
	if params != nil || copiers != nil {
		w.shape = &argShape{params, copiers, alone}
	}
	return w
}

// argShape is what the uncommon shapes of a function need: the indexes of
// the key parameters when contexts are not only leading, and how an
// execution gets its own copy of each argument (see detach.go).
type argShape struct {
	params []int // nil when the key parameters are args[skip:]
	// copiers holds, per key parameter, the argument's copier (nil where
	// there is nothing to copy); nil when no argument needs one.
	copiers []keys.Copier
	alone   bool // one argument alone has a copier (see copyState.alone)
}

// param returns the index in the arguments of the i-th key parameter.
func (w *wrapped) param(i int) int {
	if w.skip >= 0 {
		return i + int(w.skip)
	}
	return w.shape.params[i]
}

// copiers returns the copiers of the key parameters, or nil when no
// argument needs copying.
func (w *wrapped) copiers() []keys.Copier {
	if w.shape == nil {
		return nil
	}
	return w.shape.copiers
}

// judge decides whether results are stored, and for how long: results
// with a non-nil error only with WithErrorTTL. It takes the results of
// Decorate ([]reflect.Value) and of the typed paths (see failer).
func (w *wrapped) judge(val any) (failed, store bool, ttl time.Duration) {
	failed, store, ttl = w.judgeRaw(val)
	return failed, store, w.localTTL(ttl)
}

// Judge is judge, which makes w its own engine.Verdict (no func value
// made per function or per miss).
func (w *wrapped) Judge(val any) (failed, store bool, ttl time.Duration) { return w.judge(val) }

// judgeRaw is judge before the tier's bound on a local entry's age: ttl
// is the TTL the results were given (0: none), which the tier's copy
// keeps.
func (w *wrapped) judgeRaw(val any) (failed, store bool, ttl time.Duration) {
	failed = w.failure(val) != nil
	if failed {
		store, ttl = w.errorTTL > 0, w.errorTTL
	} else {
		store, ttl = true, w.c.e.Ttl
	}
	if store && w.fo != nil {
		store, ttl = w.fo.Decide(&w.c.e, val, failed, ttl)
	}
	return failed, store, ttl
}

// failure returns the error of results, or nil.
func (w *wrapped) failure(val any) error {
	if w.errOut < 0 {
		return nil
	}
	switch v := val.(type) {
	case []reflect.Value:
		err, _ := v[w.errOut].Interface().(error)
		return err
	case failer:
		return v.failure()
	case error: // a typed Func returning only an error (nil is stored as nil)
		return v
	}
	return nil
}

// outcome is what the typed paths store for functions with an error.
type outcome[R any] struct {
	val R
	err error
}

func (o outcome[R]) failure() error { return o.err }

// failer is implemented by stored results that can carry an error.
type failer interface{ failure() error }

// cancelledResult returns what a caller of w whose context ctx ended
// gets: for a typed context form, T an outcome (those always have an error
// result), the zero result with ctx's error; for Decorate, T the results,
// w.cancelled's. A generic function rather than a func value in the
// request, which would be made, and allocated, on every miss.
func cancelledResult[T any](w *wrapped, ctx context.Context) T {
	var t T
	switch p := any(&t).(type) {
	case interface{ setErr(error) }:
		p.setErr(ctx.Err())
	case *[]reflect.Value:
		*p = w.cancelled(ctx)
	}
	return t
}

func (o *outcome[R]) setErr(err error) { o.err = err }

// refreshes reports whether w's entries are refreshed ahead of their TTL
// (WithRefreshAfter): then a miss prepares a copy of its arguments for the
// refresh it may start (see startRefresh).
func (w *wrapped) refreshes() bool { return w.fo != nil && w.fo.Refresh > 0 }

func (o outcome[R]) Results() []any { return []any{o.val, o.err} }

func (o outcome[R]) result() any { return o.val }

func (o *outcome[R]) setResult(v any) { o.val = as[R](v) }

// as converts a stored result back to T. A nil interface result (a nil
// error or any) is stored as a nil any, which v.(T) would reject.
func as[T any](v any) T {
	if v == nil {
		var zero T
		return zero
	}
	return v.(T)
}

// tierFunc is what a wrapped function keeps of its tier.
type tierFunc struct {
	b       TierBinding
	name    string
	schema  [32]byte
	maxAge  time.Duration
	outcome bool // the typed results are outcome[R] (FuncErr, FuncCtx, ...)
	// reflective is set for Decorate's functions, whose results are
	// []reflect.Value.
	reflective bool
}

// localTTL caps ttl (0: none), the TTL of an entry about to be stored
// locally, by the tier's bound on a local entry's age. A result without a
// TTL of a function whose entries are plain keeps 0: its entry gets the
// bound from the call (call.ageCap), and is removed by the expiry timer,
// so that a hit reads no clock.
func (w *wrapped) localTTL(ttl time.Duration) time.Duration {
	if w.tier == nil || w.tier.maxAge <= 0 {
		return ttl
	}
	if ttl == 0 && (w.fo == nil || !w.fo.Entries) {
		return 0
	}
	if ttl == 0 || ttl > w.tier.maxAge {
		return w.tier.maxAge
	}
	return ttl
}
