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
//   - A leading context.Context parameter is not part of the key. A caller
//     whose context ends stops waiting at once, with zero results and
//     ctx.Err() as the error result. The execution runs in its own goroutine
//     under a context that keeps the first caller's values and is cancelled
//     only when every caller waiting on it has gone.
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
	out := reflect.MakeFunc(v.Type(), w.call)
	register(out, w)
	return out.Interface().(F)
}

// funcIDs numbers decorated functions; each function's keys start with its
// number, so functions that share a cache never see each other's entries.
var funcIDs atomic.Uint64

// wrapped is what a decorated function runs.
type wrapped struct {
	c      *Cache
	fid    uint64
	fn     reflect.Value
	typ    reflect.Type
	ctx    bool      // the first parameter is a context.Context
	errOut int       // index of the trailing error result, or -1
	encs   []encoder // one per parameter after the context
	// basic holds the kinds of the parameters after the context when all
	// are of Go's basic kinds, which call keys in a stack buffer; else nil.
	basic    []reflect.Kind
	key      func([]any) any
	deref    bool
	errorTTL time.Duration
	zeros    []reflect.Value // zero results, for callers whose context ended
	boxes    *[2]sync.Pool   // the typed paths' argument copies (see box); nil for Decorate
	fo       *freshOpts      // freshness options (fresh.go), or nil
}

func newWrapped(v reflect.Value, cfg config) *wrapped {
	t := v.Type()
	w := &wrapped{
		c:        cfg.cache,
		fid:      funcIDs.Add(1),
		fn:       v,
		typ:      t,
		errOut:   -1,
		key:      cfg.key,
		deref:    cfg.deref,
		errorTTL: cfg.errorTTL,
		fo:       cfg.fresh.opts(),
	}
	if w.c == nil {
		if cfg.name == "" {
			cfg.symbol = symbolOf(v)
		}
		w.c = newCache(cfg)
	}
	w.ctx = t.NumIn() > 0 && t.In(0) == contextType
	if n := t.NumOut(); n > 0 && t.Out(n-1) == errorType {
		w.errOut = n - 1
	}
	for i := range t.NumIn() {
		if i == 0 && w.ctx {
			continue
		}
		w.encs = append(w.encs, encoderOf(t.In(i)))
	}
	w.basic = basicKinds(t, w.ctx)
	for i := range t.NumOut() {
		w.zeros = append(w.zeros, reflect.Zero(t.Out(i)))
	}
	return w
}

// encode appends the key of a call with args (the context included).
func (w *wrapped) encode(s *keyState, args []reflect.Value) {
	s.deref = w.deref
	s.u64(w.fid)
	if w.ctx {
		args = args[1:]
	}
	if w.key != nil {
		in := make([]any, len(args))
		for i, a := range args {
			in[i] = a.Interface()
		}
		k := w.key(in)
		encodeInterface(s, reflect.ValueOf(&k).Elem())
		return
	}
	for i, a := range args {
		w.encs[i](s, a)
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
			if v, ok := w.c.lookup(k, h); ok {
				return v.([]reflect.Value)
			}
			s := getState()
			s.buf = append(s.buf, k...)
			return w.miss(s, h, args)
		}
	}
	s := getState()
	w.encode(s, args)
	h := hashKey(s.buf)
	if v, ok := w.c.lookup(s.buf, h); ok {
		putState(s)
		return v.([]reflect.Value)
	}
	return w.miss(s, h, args)
}

// miss runs or joins the execution for a call whose key, in s, missed.
func (w *wrapped) miss(s *keyState, h uint64, args []reflect.Value) []reflect.Value {
	var ctx context.Context
	if w.ctx {
		ctx, _ = args[0].Interface().(context.Context)
		if ctx == nil {
			ctx = context.Background()
		}
	}
	run := func(ctx context.Context) []reflect.Value {
		if w.ctx {
			args = slices.Clone(args)
			args[0] = reflect.ValueOf(&ctx).Elem()
		}
		return w.invoke(args)
	}
	var detach func() func(context.Context) []reflect.Value
	if w.fo != nil && w.fo.refresh > 0 {
		detach = func() func(context.Context) []reflect.Value {
			args := w.cloneArgs(args)
			return func(ctx context.Context) []reflect.Value {
				if w.ctx {
					args[0] = reflect.ValueOf(&ctx).Elem()
				}
				return w.invoke(args)
			}
		}
	}
	return miss(w, s, h, ctx, run, detach, w.cancelled)
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
	switch v := val.(type) {
	case []reflect.Value:
		failed = w.errOut >= 0 && !v[w.errOut].IsNil()
	case failer:
		failed = v.failed()
	case error: // a typed Func returning only an error (nil is stored as nil)
		failed = w.errOut >= 0
	}
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
// reports whether there was one; args leave out a leading
// context.Context. Variadic arguments may be passed one by one or as one
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
		putState(s)
	}
	return removed
}

// calls returns the argument lists (with a placeholder for the context)
// of the calls of w's function that Invalidate's args can stand for: none
// if they do not fit, two for a variadic function when the last argument
// may be the whole slice or its only element.
func (w *wrapped) calls(args []any) [][]reflect.Value {
	t := w.typ
	first := 0
	if w.ctx {
		first = 1
	}
	params := t.NumIn() - first
	var out [][]reflect.Value
	if in, ok := w.convertArgs(args); ok {
		out = append(out, in)
	}
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

// convertArgs converts one argument per parameter (the context left out).
func (w *wrapped) convertArgs(args []any) ([]reflect.Value, bool) {
	t := w.typ
	first := 0
	if w.ctx {
		first = 1
	}
	if len(args) != t.NumIn()-first {
		return nil, false
	}
	in := make([]reflect.Value, t.NumIn())
	if w.ctx {
		in[0] = reflect.Zero(contextType)
	}
	for i, a := range args {
		v, ok := convert(a, t.In(first+i))
		if !ok {
			return nil, false
		}
		in[first+i] = v
	}
	return in, true
}

// badArgs explains why args, given to Invalidate, fit no call of w's
// function.
func (w *wrapped) badArgs(args []any) error {
	t := w.typ
	first := 0
	if w.ctx {
		first = 1
	}
	var params, got []string
	for i := first; i < t.NumIn(); i++ {
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
			if _, ok := convert(a, t.In(first+i)); !ok {
				what := got[i]
				if a != nil && isNumber(reflect.TypeOf(a).Kind()) {
					what = fmt.Sprintf("%s(%v)", what, a)
				}
				return fmt.Errorf("memo: Invalidate(%v, ...): argument %d, %s, does not convert without loss to %v; the function takes %s", t, i+1, what, t.In(first+i), want)
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
