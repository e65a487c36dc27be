package memo

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
	"weak"
)

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// Decorate returns a memoized version of fn, a function of any signature,
// with the same type. A call whose arguments equal those of an earlier
// call (by memo's key rules, see [MakeHashable]) returns the stored results
// without calling fn; concurrent calls with equal arguments share one
// execution. The cache is reached with [CacheOf].
//
//   - Every context.Context parameter, in any position (after the receiver
//     of a method expression too), is left out of the key; the first one
//     governs waiting and cancellation. A caller whose context ends stops
//     waiting at once, with zero results and ctx.Err() as the error result.
//     The execution runs in its own goroutine under a context that keeps
//     the values and the deadline of the caller that started it, and is
//     cancelled only when every caller waiting on it has gone. A caller
//     never fails because of another caller's deadline: if the execution
//     ends with a deadline error (errors.Is(err, context.DeadlineExceeded))
//     after its starter's deadline passed, each waiter whose own context
//     is live and ends later starts, or joins, a fresh execution.
//   - What fn receives: the caller's arguments, except when the caller
//     that starts an execution has a context that can end. Such a caller
//     may leave, and reuse its memory, while the execution goes on, so fn
//     then receives a copy of everything the key takes by value (slices,
//     maps and arrays element by element, struct fields, values inside
//     interfaces, pointees under [WithDeref]); pointers keyed by identity,
//     channels, funcs, strings and fields tagged memo:"-" are passed as
//     they are. Hits never copy. Where the key may read memory that no copy
//     takes (a pointer whose type has a CacheKey method, an interface that
//     may hold one, [WithKey]), such an execution encodes its key again when
//     it ends: if a caller changed what the key was computed from, the
//     result is not stored and every caller waiting on it runs afresh.
//   - A call made from inside an execution for that execution's own key,
//     on its goroutine or with its context, runs fn on its own instead of
//     waiting on the execution (which would never end); its result is
//     returned, not stored. A cycle across goroutines (f(1)'s execution
//     waits for another goroutine that calls g(1), whose execution calls
//     f(1)) is a lock-order cycle and deadlocks, as two mutexes taken in
//     opposite orders do.
//   - A trailing error result that is non-nil is returned to the callers of
//     that execution and not stored, unless [WithErrorTTL] is given.
//   - A panic is never stored. The caller that started the execution sees
//     the original panic value, the callers that waited on it panic with a
//     [*PanicError].
//   - A method expression such as (*T).Get caches per receiver: pointers
//     are keyed by identity, without keeping their objects alive, and
//     entries keyed by a collected object are dropped.
//   - Results are shared: a hit returns the values the execution returned,
//     to every caller. A caller that modifies a returned slice, map or
//     pointee changes what later hits return; copy, or return values.
//
// Decorate panics with a message that starts "memo:" if fn is nil or not a
// func, or if an option is invalid (including [WithErrorTTL] for an fn
// without a trailing error result). The returned function is safe for
// concurrent use; Decorate starts no goroutine.
func Decorate[F any](fn F, opts ...Option) F {
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func {
		panic(fmt.Errorf("memo: Decorate needs a func, got %T", fn))
	}
	if v.IsNil() {
		panic(fmt.Errorf("memo: Decorate needs a func, got a nil %T", fn))
	}
	cfg, err := newConfig(opts, true)
	if err == nil {
		err = checkFunc(v.Type(), cfg)
	}
	if err != nil {
		panic(err)
	}
	w := newWrapped(v, cfg)
	w.bindTier(cfg, true)
	out := reflect.MakeFunc(v.Type(), w.call)
	register(out, w)
	return out.Interface().(F)
}

// funcIDs numbers decorated functions; each function's keys start with its
// number, so functions that share a cache never see each other's entries.
var funcIDs atomic.Uint64

// wrapped is what a decorated function runs.
type wrapped struct {
	c   *Cache
	fid uint64
	fn  reflect.Value
	typ reflect.Type
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
	errOut  int       // index of the trailing error result, or -1
	encs    []encoder // one per key parameter (the parameters but the contexts)
	shape   *argShape // nil for the common shapes with nothing to copy
	// basic holds the kinds of the parameters after the context when all
	// are of Go's basic kinds, which call keys in a stack buffer; else nil.
	basic    []reflect.Kind
	key      func([]any) any
	errorTTL time.Duration
	zeros    []reflect.Value // zero results, for callers whose context ended
	boxes    *[2]sync.Pool   // the typed paths' argument copies (see box); nil for Decorate
	fo       *freshOpts      // freshness options (fresh.go), or nil
	tier     *tierFunc       // the function's WithTier, or nil (tier.go)
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
		w.encs = append(w.encs, encoderOf(t.In(i)))
	}
	var copiers []copier
	alone := false // exactly one argument needs a copier
	w.recheck = w.key != nil
	for i, p := range params {
		if !w.recheck && mayReadThrough(t.In(p), w.deref, nil) {
			w.recheck = true
		}
		// With WithKey the key may read anything: the arguments are
		// copied as the default key would take them.
		if c := copierOf(t.In(p), w.deref); c != nil {
			if copiers == nil {
				copiers = make([]copier, len(params))
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
		w.basic = basicKinds(t, w.ctxAt == 0)
		params = nil
	}
	if params != nil || copiers != nil {
		w.shape = &argShape{params, copiers, alone}
	}
	for i := range t.NumOut() {
		w.zeros = append(w.zeros, reflect.Zero(t.Out(i)))
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
	copiers []copier
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
func (w *wrapped) copiers() []copier {
	if w.shape == nil {
		return nil
	}
	return w.shape.copiers
}

// encode appends the key of a call with args (the contexts included).
func (w *wrapped) encode(s *keyState, args []reflect.Value) {
	s.deref = w.deref
	s.stable = w.tier != nil
	s.u64(w.fid)
	if w.key != nil {
		in := make([]any, len(w.encs))
		for i := range in {
			in[i] = args[w.param(i)].Interface()
		}
		k := w.key(in)
		encodeInterface(s, reflect.ValueOf(&k).Elem())
		return
	}
	if w.skip >= 0 { // the common shapes: the loop the hit path always had
		for i, a := range args[w.skip:] {
			w.encs[i](s, a)
		}
		return
	}
	for i, enc := range w.encs {
		enc(s, args[w.shape.params[i]])
	}
}

// call is the body of the decorated function.
func (w *wrapped) call(args []reflect.Value) []reflect.Value {
	if w.basic != nil && w.key == nil {
		var arr [64]byte
		k := binary.LittleEndian.AppendUint64(arr[:0], w.fid)
		for i, kind := range w.basic {
			k = appendKind(k, kind, args[len(args)-len(w.basic)+i])
		}
		if len(k) <= maxKeyLen { // else the encoder below finds it too long
			h := hashKey(k)
			v, ok := w.c.lookup(k, h)
			if ok {
				return v.([]reflect.Value)
			}
			s := getState()
			s.buf = append(s.buf, k...)
			return w.miss(s, h, v == refreshDue, args)
		}
	}
	s := getState()
	w.encode(s, args)
	h := hashKey(s.buf)
	v, ok := w.c.lookup(s.buf, h)
	if ok {
		putState(s)
		return v.([]reflect.Value)
	}
	return w.miss(s, h, v == refreshDue, args)
}

// miss runs or joins the execution for a call whose key, in s, missed.
func (w *wrapped) miss(s *keyState, h uint64, due bool, args []reflect.Value) []reflect.Value {
	var ctx context.Context
	var own func()
	if w.ctx {
		ctx, _ = args[w.ctxAt].Interface().(context.Context)
		if ctx == nil {
			ctx = context.Background()
		}
		if w.copiers() != nil {
			own = func() { args = w.own(args) }
		}
	}
	run := func(ctx context.Context) []reflect.Value {
		in := args
		if w.ctx {
			in = slices.Clone(args)
			in[w.ctxAt] = reflect.ValueOf(&ctx).Elem()
		}
		return w.invoke(in)
	}
	var verify func(string) bool
	if w.recheck {
		verify = func(key string) bool { return w.sameKey(key, args) }
	}
	var detach func() (func(context.Context) []reflect.Value, func(string) bool)
	if w.copiers() != nil && w.refreshes() {
		detach = func() (func(context.Context) []reflect.Value, func(string) bool) {
			args := w.own(args)
			var verify func(string) bool
			if w.recheck {
				verify = func(key string) bool { return w.sameKey(key, args) }
			}
			return func(ctx context.Context) []reflect.Value {
				if w.ctx {
					args[w.ctxAt] = reflect.ValueOf(&ctx).Elem()
				}
				return w.invoke(args)
			}, verify
		}
	}
	return miss(w, s, h, due, ctx, run, own, detach, verify, w.cancelled)
}

// sameKey reports whether args still encode to key: an execution that
// outlived its callers checks that none changed what its key was
// computed from (see call.verify).
func (w *wrapped) sameKey(key string, args []reflect.Value) bool {
	s := getState()
	defer putState(s)
	w.encode(s, args)
	return !s.never && string(s.buf) == key
}

// own returns args with a copy of every argument that shares memory its
// key encodes by value with the caller (see detach.go).
func (w *wrapped) own(args []reflect.Value) []reflect.Value {
	out := slices.Clone(args)
	// One for all, so that arguments sharing memory still do.
	st := copyState{alone: w.shape.alone}
	for i, c := range w.copiers() {
		if c == nil {
			continue
		}
		p := w.param(i)
		v := reflect.New(w.typ.In(p)).Elem()
		v.Set(args[p])
		out[p] = c(&st, v)
	}
	return out
}

// invoke calls the decorated function with the arguments MakeFunc gave the
// wrapper. For a variadic function those end with the variadic slice
// itself, which Call would wrap in another slice: CallSlice passes it on.
func (w *wrapped) invoke(args []reflect.Value) []reflect.Value {
	if w.typ.IsVariadic() {
		return w.fn.CallSlice(args)
	}
	return w.fn.Call(args)
}

// judge decides whether results are stored, and for how long: results
// with a non-nil error only with WithErrorTTL. It takes the results of
// Decorate ([]reflect.Value) and of the typed paths (see failer).
func (w *wrapped) judge(val any) (failed, store bool, ttl time.Duration) {
	failed, store, ttl = w.judgeRaw(val)
	return failed, store, w.localTTL(ttl)
}

// judgeRaw is judge before the tier's bound on a local entry's age: ttl
// is the TTL the results were given (0: none), which the tier's copy
// keeps.
func (w *wrapped) judgeRaw(val any) (failed, store bool, ttl time.Duration) {
	failed = w.failure(val) != nil
	if failed {
		store, ttl = w.errorTTL > 0, w.errorTTL
	} else {
		store, ttl = true, w.c.ttl
	}
	if store && w.fo != nil {
		store, ttl = w.fo.decide(w.c, val, failed, ttl)
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

// cancelled returns zero results with ctx's error as the error result.
func (w *wrapped) cancelled(ctx context.Context) []reflect.Value {
	if w.errOut < 0 {
		return w.zeros
	}
	out := slices.Clone(w.zeros)
	err := ctx.Err()
	out[w.errOut] = reflect.ValueOf(&err).Elem()
	return out
}

// The registry maps each decorated function to its wrapped, for CacheOf,
// Invalidate and ClearAll. It is keyed by the address of the function's
// closure, which every copy of the function value shares, and holds both
// the closure and the wrapped weakly: the closure holds its wrapped, so
// the wrapped lives exactly as long as some copy of the function, and a
// decorated function that can reach itself (a method value stored in its
// own receiver, a recursive helper) is collected once nothing else refers
// to it. A cleanup on the closure removes its entry. Plain maps in shards
// cost a decorated function about 40 bytes here, a sync.Map over 100.
var registry funcRegistry

type funcRegistry struct {
	shards [16]struct {
		mu sync.RWMutex
		m  map[uintptr]registered
		_  [64 - 32]byte
	}
}

type registered struct {
	wp weak.Pointer[byte]
	w  weak.Pointer[wrapped]
}

func (r *funcRegistry) shard(addr uintptr) (*sync.RWMutex, *map[uintptr]registered) {
	sh := &r.shards[(addr>>4^addr>>12)%uintptr(len(r.shards))]
	return &sh.mu, &sh.m
}

func (r *funcRegistry) store(addr uintptr, reg registered) {
	mu, m := r.shard(addr)
	mu.Lock()
	if *m == nil {
		*m = make(map[uintptr]registered)
	}
	(*m)[addr] = reg
	mu.Unlock()
}

func (r *funcRegistry) load(addr uintptr) (registered, bool) {
	mu, m := r.shard(addr)
	mu.RLock()
	reg, ok := (*m)[addr]
	mu.RUnlock()
	return reg, ok
}

// forget removes the entry for addr if it is still the one for closure wp.
func (r *funcRegistry) forget(addr uintptr, wp weak.Pointer[byte]) {
	mu, m := r.shard(addr)
	mu.Lock()
	if reg, ok := (*m)[addr]; ok && reg.wp == wp {
		delete(*m, addr)
	}
	mu.Unlock()
}

// Range calls f with each entry's address and registered, as sync.Map's
// Range, until f returns false. f must not use the registry.
func (r *funcRegistry) Range(f func(addr, reg any) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		entries := make([]registered, 0, len(sh.m))
		addrs := make([]uintptr, 0, len(sh.m))
		for a, reg := range sh.m {
			addrs = append(addrs, a)
			entries = append(entries, reg)
		}
		sh.mu.RUnlock()
		for j := range entries {
			if !f(addrs[j], entries[j]) {
				return
			}
		}
	}
}

// closureOf returns the closure pointer of a func value: the data word of
// the interface holding it.
func closureOf(fn any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&fn))[1]
}

// register records out, a function whose closure holds w, in the registry.
func register(out reflect.Value, w *wrapped) {
	p := closureOf(out.Interface())
	wp := weak.Make((*byte)(p))
	registry.store(uintptr(p), registered{wp, weak.Make(w)})
	runtime.AddCleanup((*byte)(p), unregister, unregisterArg{uintptr(p), wp})
}

type unregisterArg struct {
	addr uintptr
	wp   weak.Pointer[byte]
}

func unregister(a unregisterArg) { registry.forget(a.addr, a.wp) }

func lookupWrapped(fn any) *wrapped {
	t := reflect.TypeOf(fn)
	if t == nil || t.Kind() != reflect.Func {
		return nil
	}
	p := closureOf(fn)
	if p == nil {
		return nil
	}
	r, ok := registry.load(uintptr(p))
	if !ok || unsafe.Pointer(r.wp.Value()) != p {
		return nil
	}
	// fn holds the closure, which holds the wrapped: it is alive.
	return r.w.Value()
}

// CacheOf returns the cache behind fn, a function returned by [Decorate]
// or a typed constructor such as [Func] (or any copy of it: a variable, an
// interface, a struct field), and nil for anything else: the methods of a
// nil *Cache panic, so check for nil when fn may not be memoized. CacheOf is
// safe for concurrent use.
func CacheOf(fn any) *Cache {
	if w := lookupWrapped(fn); w != nil {
		return w.c
	}
	return nil
}

// Invalidate drops the entry that a call of fn with args would hit and
// reports whether there was one; args leave out every context.Context
// parameter, wherever it stands (Invalidate(f, repo, filter) for
// (*Repo).Find(ctx, filter)). Variadic arguments may be passed one by one or as one
// slice; when a single argument fits both readings (Invalidate(f, nil) for
// f(xs ...*T)), both entries are dropped. An execution in flight for those
// arguments will not store its result, and later callers do not join it.
// Invalidate returns false if fn is not a decorated function, so that it
// can be called for a function whether or not it is memoized.
//
// Each argument must be of its parameter's type, or convert to it without
// loss (Invalidate(f, 1) for a func(int64), an untyped constant's default
// type); nil stands for a nil pointer, slice, map, func, channel or
// interface. Wrong arguments are a programming mistake, not a missing
// entry: Invalidate panics with a message that starts "memo:" and names the
// parameter types when args have the wrong number or do not convert.
// Invalidate is safe for concurrent use.
func Invalidate(fn any, args ...any) bool {
	w := lookupWrapped(fn)
	if w == nil {
		return false
	}
	calls := w.calls(args)
	if len(calls) == 0 {
		panic(w.badArgs(args))
	}
	removed := false
	for _, in := range calls {
		s := getState()
		w.encode(s, in)
		if w.c.remove(s.buf, hashKey(s.buf)) {
			removed = true
		}
		_ = w.invalidateTier(context.Background(), s) // InvalidateContext reports the error
		putState(s)
	}
	return removed
}

// calls returns the argument lists (with a placeholder for each context)
// of the calls of w's function that Invalidate's args can stand for: none
// if they do not fit, two for a variadic function when the last argument
// may be the whole slice or its only element.
func (w *wrapped) calls(args []any) [][]reflect.Value {
	t := w.typ
	params := len(w.encs)
	var out [][]reflect.Value
	if in, ok := w.convertArgs(args); ok {
		out = append(out, in)
	}
	// The variadic parameter is the last, and a key parameter: its type is
	// a slice, never context.Context.
	if !t.IsVariadic() || len(args) < params-1 {
		return out
	}
	// Spread: the trailing arguments are the elements. f() passes a nil
	// slice for no variadic arguments, and nil and empty slices differ.
	st := t.In(t.NumIn() - 1)
	rest := reflect.Zero(st)
	for _, a := range args[params-1:] {
		v, ok := convert(a, st.Elem())
		if !ok {
			return out
		}
		rest = reflect.Append(rest, v)
	}
	spread := append(slices.Clone(args[:params-1]), rest.Interface())
	if in, ok := w.convertArgs(spread); ok {
		out = append(out, in)
	}
	return out
}

// convertArgs converts one argument per key parameter (the contexts left
// out) into a full argument list, with a nil context for each context.
func (w *wrapped) convertArgs(args []any) ([]reflect.Value, bool) {
	t := w.typ
	if len(args) != len(w.encs) {
		return nil, false
	}
	in := make([]reflect.Value, t.NumIn())
	for i := range in {
		if t.In(i) == contextType {
			in[i] = reflect.Zero(contextType)
		}
	}
	for i, a := range args {
		p := w.param(i)
		v, ok := convert(a, t.In(p))
		if !ok {
			return nil, false
		}
		in[p] = v
	}
	return in, true
}

// badArgs explains why args, given to Invalidate, fit no call of w's
// function.
func (w *wrapped) badArgs(args []any) error {
	t := w.typ
	var params, got []string
	for j := range w.encs {
		i := w.param(j)
		p := t.In(i)
		if t.IsVariadic() && i == t.NumIn()-1 {
			params = append(params, "..."+p.Elem().String())
			continue
		}
		params = append(params, p.String())
	}
	for _, a := range args {
		if a == nil {
			got = append(got, "nil")
			continue
		}
		got = append(got, reflect.TypeOf(a).String())
	}
	want := "(" + strings.Join(params, ", ") + ")"
	if w.ctx {
		want += ", the context left out"
	}
	if !t.IsVariadic() && len(args) == len(params) {
		for i, a := range args {
			if _, ok := convert(a, t.In(w.param(i))); !ok {
				what := got[i]
				if a != nil && isNumber(reflect.TypeOf(a).Kind()) {
					what = fmt.Sprintf("%s(%v)", what, a)
				}
				return fmt.Errorf("memo: Invalidate(%v, ...): argument %d, %s, does not convert without loss to %v; the function takes %s", t, i+1, what, t.In(w.param(i)), want)
			}
		}
	}
	return fmt.Errorf("memo: Invalidate(%v, ...): the arguments (%s) do not fit the parameters %s: pass one argument per parameter, each of its type or a number that converts to it without loss", t, strings.Join(got, ", "), want)
}

// convert makes a a value of type t: as it is when assignable, or by a
// numeric conversion that loses nothing (so Invalidate(f, 1) works for a
// func(int64)).
func convert(a any, t reflect.Type) (reflect.Value, bool) {
	if a == nil {
		switch t.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Slice, reflect.Map, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			return reflect.Zero(t), true
		}
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(a)
	if v.Type().AssignableTo(t) {
		out := reflect.New(t).Elem()
		out.Set(v)
		return out, true
	}
	if isNumber(v.Kind()) && isNumber(t.Kind()) && v.CanConvert(t) {
		c := v.Convert(t)
		// Between signed and unsigned integers a round trip also
		// succeeds for a value that changed its sign (-1 and MaxUint64).
		if c.Convert(v.Type()).Equal(v) && isNegative(v) == isNegative(c) {
			return c, true
		}
	}
	return reflect.Value{}, false
}

func isNegative(v reflect.Value) bool {
	switch {
	case v.CanInt():
		return v.Int() < 0
	case v.CanFloat():
		return v.Float() < 0
	}
	return false
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Complex128
}

// ClearAll clears the cache of every live decorated function in the process
// (see [Cache.Clear]). It is meant for tests that run one after another:
// tests that run in parallel clear each other's caches with it, so give
// each such test a cache of its own ([WithCache], or a Decorate of its own)
// or clear one function's cache with CacheOf(f).Clear() (see the example).
// ClearAll is safe for concurrent use.
func ClearAll() {
	registry.Range(func(_, r any) bool {
		if w := r.(registered).w.Value(); w != nil {
			w.c.Clear()
		}
		return true
	})
}
