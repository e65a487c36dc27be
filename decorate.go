package memo

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
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
//     cancelled only when every caller waiting on it has gone; a caller
//     whose context can never end (ctx.Done() is nil, as for
//     context.Background()) cannot leave, and runs it itself, as a caller
//     without a context does. A caller
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
// Every signature goes through reflect.MakeFunc, except an unnamed
// func(A) R or func(A) (R, error) with A and R each int or string,
// decorated without [WithKey] or [WithTier]: Decorate returns [Func]'s or
// [FuncErr]'s typed closure for it, which behaves the same without
// reflection.
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
	if f, ok := decorateTyped(fn, cfg, opts); ok {
		return f
	}
	w := newWrapped(v, cfg)
	w.bindTier(cfg, true)
	out := reflect.MakeFunc(v.Type(), w.call)
	register(out, w)
	return out.Interface().(F)
}

// decorateTyped serves the commonest signatures (one int or string
// argument, one int or string result, an optional trailing error) through
// the typed closures of [Func] and [FuncErr] rather than reflect.MakeFunc,
// which cost a call about 150 ns and two or three allocations for its
// []reflect.Value arguments and results. Their semantics are Decorate's
// for these shapes (no context to leave out). It serves only an unnamed
// func type (a named one must keep its type) and a function without
// WithKey or WithTier: a tier's entries keep the reflective path's
// encoding, shared by every replica whatever its version. cfg holds opts,
// already checked.
func decorateTyped[F any](fn F, cfg config, opts []Option) (F, bool) {
	var f any
	if cfg.key == nil && cfg.tier == nil {
		switch g := any(fn).(type) {
		case func(int) int:
			f = Func(g, opts...)
		case func(int) string:
			f = Func(g, opts...)
		case func(string) string:
			f = Func(g, opts...)
		case func(string) int:
			f = Func(g, opts...)
		case func(int) (int, error):
			f = FuncErr(g, opts...)
		case func(string) (string, error):
			f = FuncErr(g, opts...)
		case func(int) (string, error):
			f = FuncErr(g, opts...)
		case func(string) (int, error):
			f = FuncErr(g, opts...)
		}
	}
	if f == nil {
		var zero F
		return zero, false
	}
	return f.(F), true
}

// encode appends the key of a call with args (the contexts included).
func (w *wrapped) encode(s *keys.State, args []reflect.Value) {
	s.Deref = w.deref
	s.Stable = w.tier != nil
	s.U64(w.fid)
	if w.key != nil {
		in := make([]any, len(w.encs))
		for i := range in {
			in[i] = args[w.param(i)].Interface()
		}
		k := w.key(in)
		keys.EncodeInterface(s, reflect.ValueOf(&k).Elem())
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
			k = keys.AppendKind(k, kind, args[len(args)-len(w.basic)+i])
		}
		if len(k) <= keys.MaxKeyLen { // else the encoder below finds it too long
			h := engine.HashKey(k)
			v, ok := w.c.e.Lookup(k, h)
			if ok {
				return v.([]reflect.Value)
			}
			s := keys.GetState()
			s.Buf = append(s.Buf, k...)
			return w.miss(s, h, v == engine.RefreshDue, args)
		}
	}
	s := keys.GetState()
	w.encode(s, args)
	h := engine.HashKey(s.Buf)
	v, ok := w.c.e.Lookup(s.Buf, h)
	if ok {
		keys.PutState(s)
		return v.([]reflect.Value)
	}
	return w.miss(s, h, v == engine.RefreshDue, args)
}

// miss runs or joins the execution for a call whose key, in s, missed.
func (w *wrapped) miss(s *keys.State, h uint64, due bool, args []reflect.Value) []reflect.Value {
	if !w.ctx && !w.recheck && (w.copiers() == nil || !w.refreshes()) {
		// Nothing below applies (no context, no copy of the arguments, no
		// recheck): the request holds the arguments, and no closure is
		// made for them.
		return miss(w, s, h, due, request[decorated, []reflect.Value]{fn: runDecorated, a: decorated{w, args}})
	}
	return w.missWith(s, h, due, args)
}

// missWith is miss for a function with a context, arguments to copy (see
// detach.go) or keys to recheck: the request's closures share args (apart
// from miss, so that args moves to the heap only here).
func (w *wrapped) missWith(s *keys.State, h uint64, due bool, args []reflect.Value) []reflect.Value {
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
	run := func(ctx context.Context, _ struct{}) []reflect.Value {
		in := args
		if w.ctx {
			in = slices.Clone(args)
			ctx := ctx // on the heap only here
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
	return miss(w, s, h, due, request[struct{}, []reflect.Value]{ctx: ctx, fn: run, own: own, detach: detach, verify: verify})
}

// decorated is the arguments of a call of a decorated function without a
// context, for runDecorated.
type decorated struct {
	w    *wrapped
	args []reflect.Value
}

// runDecorated runs the decorated function on d's arguments (a request's
// fn, made once).
func runDecorated(_ context.Context, d decorated) []reflect.Value { return d.w.invoke(d.args) }

// sameKey reports whether args still encode to key: an execution that
// outlived its callers checks that none changed what its key was
// computed from (see call.verify).
func (w *wrapped) sameKey(key string, args []reflect.Value) bool {
	s := keys.GetState()
	defer keys.PutState(s)
	w.encode(s, args)
	return !s.Never && string(s.Buf) == key
}

// own returns args with a copy of every argument that shares memory its
// key encodes by value with the caller (see detach.go).
func (w *wrapped) own(args []reflect.Value) []reflect.Value {
	out := slices.Clone(args)
	// One for all, so that arguments sharing memory still do.
	st := keys.CopyState{Alone: w.shape.alone}
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

// cancelled returns zero results with ctx's error as the error result.
func (w *wrapped) cancelled(ctx context.Context) []reflect.Value {
	out := make([]reflect.Value, w.typ.NumOut())
	for i := range out {
		out[i] = reflect.Zero(w.typ.Out(i))
	}
	if w.errOut >= 0 {
		err := ctx.Err()
		out[w.errOut] = reflect.ValueOf(&err).Elem()
	}
	return out
}
