package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
)

// Typed fast paths.
//
// Func, FuncErr, FuncCtx and their two-argument forms memoize functions of
// common shapes without reflect.MakeFunc: a hit builds the key (in a stack
// buffer and without reflection for int, int32, int64, uint, uint32,
// uint64, string, bool and float64 arguments), looks it up and returns the
// stored result, with no allocation. They have Decorate's semantics: the
// same cache type, options, key rules (keys are the bytes Decorate would
// build), statistics, coalescing, context handling, [CacheOf] and
// [Invalidate]. The returned functions are safe for concurrent use.
//
// Prefer them on hot paths; use Decorate for any other signature. Arguments
// of other types (structs, slices, pointers, named types) are keyed through
// the same reflective encoder Decorate uses.

// Func returns a memoized fn, as [Decorate] does, without reflect.MakeFunc.
// It panics, as Decorate does, on a nil fn, an invalid option ([WithErrorTTL]
// needs R to be error), or an fn whose argument is a context.Context, which
// Func would key (use [Decorate]). The typed constructors all reject a
// context.Context parameter in any position but the one FuncCtx and
// Func2Ctx are made for, naming the constructor to use.
func Func[A, R any](fn func(A) R, opts ...Option) func(A) R {
	w := newTyped(fn, opts, "Func", false)
	run := func(_ context.Context, a A) R { return fn(a) }
	f := func(a A) R { return do1(w, a, nil, run) }
	register(reflect.ValueOf(f), w)
	return f
}

// FuncErr is [Func] for functions that return an error. A non-nil error is
// not stored (unless [WithErrorTTL]).
func FuncErr[A, R any](fn func(A) (R, error), opts ...Option) func(A) (R, error) {
	w := newTyped(fn, opts, "FuncErr", false)
	run := func(_ context.Context, a A) outcome[R] {
		r, err := fn(a)
		return outcome[R]{r, err}
	}
	f := func(a A) (R, error) {
		o := do1(w, a, nil, run)
		return o.val, o.err
	}
	register(reflect.ValueOf(f), w)
	return f
}

// FuncCtx is [FuncErr] for functions that take a leading context, with
// Decorate's context semantics: the context is not part of the key, and a
// caller whose context ends stops waiting with ctx.Err(). The execution
// runs in its own goroutine under a context with the values and the
// deadline of the caller that started it, cancelled when every caller has
// gone (a caller whose context can never end, such as
// context.Background(), runs it itself); a waiter whose own context is live and ends later than that
// deadline is never failed by it: when the execution ends with a deadline
// error after its starter's deadline passed, the waiter starts, or joins,
// a fresh execution. When the starting caller's context can end, fn
// receives a copy of the parts of the argument the key takes by value
// (slices, maps, struct fields; see [Decorate]), so that the execution
// never reads memory of a caller that has left. A call from inside the
// execution for its own key runs fn on its own (see [Decorate]).
//
// FuncCtx panics, as Decorate does, on a nil fn or an invalid option, and
// if A is a context.Context (use Decorate).
func FuncCtx[A, R any](fn func(context.Context, A) (R, error), opts ...Option) func(context.Context, A) (R, error) {
	w := newTyped(fn, opts, "FuncCtx", true)
	run := func(ctx context.Context, a A) outcome[R] {
		r, err := fn(ctx, a)
		return outcome[R]{r, err}
	}
	f := func(ctx context.Context, a A) (R, error) {
		if ctx == nil {
			ctx = context.Background()
		}
		o := do1(w, a, ctx, run)
		return o.val, o.err
	}
	register(reflect.ValueOf(f), w)
	return f
}

// Func2 is [Func] for functions of two arguments.
func Func2[A, B, R any](fn func(A, B) R, opts ...Option) func(A, B) R {
	w := newTyped(fn, opts, "Func2", false)
	run := func(_ context.Context, p pair[A, B]) R { return fn(p.a, p.b) }
	f := func(a A, b B) R { return do2(w, a, b, nil, run) }
	register(reflect.ValueOf(f), w)
	return f
}

// Func2Err is [FuncErr] for functions of two arguments.
func Func2Err[A, B, R any](fn func(A, B) (R, error), opts ...Option) func(A, B) (R, error) {
	w := newTyped(fn, opts, "Func2Err", false)
	run := func(_ context.Context, p pair[A, B]) outcome[R] {
		r, err := fn(p.a, p.b)
		return outcome[R]{r, err}
	}
	f := func(a A, b B) (R, error) {
		o := do2(w, a, b, nil, run)
		return o.val, o.err
	}
	register(reflect.ValueOf(f), w)
	return f
}

// Func2Ctx is [FuncCtx] for functions of two arguments after the context.
func Func2Ctx[A, B, R any](fn func(context.Context, A, B) (R, error), opts ...Option) func(context.Context, A, B) (R, error) {
	w := newTyped(fn, opts, "Func2Ctx", true)
	run := func(ctx context.Context, p pair[A, B]) outcome[R] {
		r, err := fn(ctx, p.a, p.b)
		return outcome[R]{r, err}
	}
	f := func(ctx context.Context, a A, b B) (R, error) {
		if ctx == nil {
			ctx = context.Background()
		}
		o := do2(w, a, b, ctx, run)
		return o.val, o.err
	}
	register(reflect.ValueOf(f), w)
	return f
}

// newTyped validates and wraps fn for the typed constructor name; ctxForm
// tells whether the constructor is a context one (FuncCtx, Func2Ctx).
func newTyped(fn any, opts []Option, name string, ctxForm bool) *wrapped {
	v := reflect.ValueOf(fn)
	if v.IsNil() {
		panic(errors.New("memo: nil func: pass the function to memoize"))
	}
	if err := typedContexts(v.Type(), name, ctxForm); err != nil {
		panic(err)
	}
	cfg, err := newConfig(opts, true)
	if err == nil {
		err = checkFunc(v.Type(), cfg)
	}
	if err != nil {
		panic(err)
	}
	w := newWrapped(v, cfg)
	w.boxes = new([2]sync.Pool)
	w.bindTier(cfg, false)
	return w
}

// typedContexts rejects a context.Context parameter where the typed
// constructor name would make it part of the key: anywhere in the forms
// without a context, after the first parameter in FuncCtx and Func2Ctx.
func typedContexts(t reflect.Type, name string, ctxForm bool) error {
	first := 0
	if ctxForm {
		first = 1
	}
	for i := first; i < t.NumIn(); i++ {
		if t.In(i) != contextType {
			continue
		}
		use := "use Decorate, which leaves a context.Context in any position out of the key"
		hasErr := t.NumOut() == 2 && t.Out(1) == errorType
		switch {
		case i == 0 && t.NumIn() == 2 && hasErr:
			use = "use FuncCtx, which leaves the context out of the key and honours its cancellation"
		case i == 0 && t.NumIn() == 3 && hasErr:
			use = "use Func2Ctx, which leaves the context out of the key and honours its cancellation"
		case !ctxForm && hasErr && t.NumIn() <= 3 && t.NumIn() >= 2:
			use += ", or put the context first and use FuncCtx or Func2Ctx"
		}
		return fmt.Errorf("memo: %s cannot memoize %v: its parameter %d is a context.Context, which %s would make part of the key, so that no call would ever hit; %s", name, t, i+1, name, use)
	}
	return nil
}

// do1 returns the result for a call with argument a: stored, shared with
// an execution in flight, or computed by run. Basic argument types are
// keyed in a stack buffer; others go through the reflective encoder.
func do1[A, T any](w *wrapped, a A, ctx context.Context, run func(context.Context, A) T) T {
	if w.key == nil && !w.deref {
		if str, ok := shortString(a); ok {
			// A short string: looked up from where it lies (see
			// index.getString); the key is made only on a miss.
			h := engine.HashFidString(w.fid, str)
			v, ok := w.c.e.LookupString(w.fid, str, h)
			if ok {
				return as[T](v)
			}
			rq := request[A, T]{ctx: ctx, fn: run, a: a}
			if w.tier == nil {
				var arr [9 + 127]byte
				k := binary.LittleEndian.AppendUint64(arr[:0], w.fid)
				k = append(append(k, byte(len(str))), str...)
				return missKey(w, k, nil, h, v == engine.RefreshDue, rq)
			}
			s := keys.GetState()
			s.Buf = binary.LittleEndian.AppendUint64(s.Buf, w.fid)
			s.Buf = append(append(s.Buf, byte(len(str))), str...)
			return miss(w, s, h, v == engine.RefreshDue, rq)
		}
		var arr [64]byte
		k := binary.LittleEndian.AppendUint64(arr[:0], w.fid)
		if k, ok := appendBasic(k, a); ok {
			h := engine.HashKey(k)
			v, ok := w.c.e.Lookup(k, h)
			if ok {
				return as[T](v)
			}
			rq := request[A, T]{ctx: ctx, fn: run, a: a}
			if w.tier == nil {
				return missKey(w, k, nil, h, v == engine.RefreshDue, rq)
			}
			s := keys.GetState()
			s.Buf = append(s.Buf, k...)
			return miss(w, s, h, v == engine.RefreshDue, rq)
		}
	}
	return slow1(w, a, ctx, run)
}

func slow1[A, T any](w *wrapped, a A, ctx context.Context, run func(context.Context, A) T) T {
	s, h := encode1(w, a)
	v, ok := w.c.e.Lookup(s.Buf, h)
	if ok {
		keys.PutState(s)
		return as[T](v)
	}
	return miss1(w, s, h, v == engine.RefreshDue, ctx, run, a)
}

// miss1 is slow1's miss, apart so that a is copied to the heap (for the
// execution) only on a miss. A context caller's execution may outlive it:
// own gives it a copy of a (see detach.go); so may a refresh: detach gives
// it one of its own. Where a holds nothing to copy (w.copiers is nil,
// decided once per function) neither is made.
func miss1[A, T any](w *wrapped, s *keys.State, h uint64, due bool, ctx context.Context, run func(context.Context, A) T, a A) T {
	var own func()
	var detach func() (func(context.Context) T, func(string) bool)
	if cs := w.copiers(); cs != nil {
		if ctx != nil {
			own = func() { keys.OwnValue(cs[0], &a) }
		}
		if w.refreshes() {
			detach = func() (func(context.Context) T, func(string) bool) {
				a := a
				keys.OwnValue(cs[0], &a)
				return func(ctx context.Context) T { return run(ctx, a) }, verify1(w, &a)
			}
		}
	}
	return miss(w, s, h, due, request[struct{}, T]{ctx: ctx, fn: func(ctx context.Context, _ struct{}) T { return run(ctx, a) }, own: own, detach: detach, verify: verify1(w, &a)})
}

// encode1 encodes the key of a one-argument call with the reflective
// encoders (the typed paths' slow path, and Batch's), into a keys.State
// the caller owns, and returns it with the key's hash.
func encode1[A any](w *wrapped, a A) (*keys.State, uint64) {
	s := keys.GetState()
	pa := box(&w.boxes[0], a)
	w.encodeTyped(s, reflect.ValueOf(pa).Elem())
	unbox(&w.boxes[0], pa)
	return s, engine.HashKey(s.Buf)
}

// verify1 returns the verify of an execution that runs on *a (see
// call.verify), or nil when w's keys need no recheck.
func verify1[A any](w *wrapped, a *A) func(string) bool {
	if !w.recheck {
		return nil
	}
	return func(key string) bool {
		s := keys.GetState()
		defer keys.PutState(s)
		w.encodeTyped(s, reflect.ValueOf(a).Elem())
		return !s.Never && string(s.Buf) == key
	}
}

// box copies a into a pooled *A, so that the reflective encoder can read
// it without a moving to the heap on every call.
func box[A any](p *sync.Pool, a A) *A {
	pa, _ := p.Get().(*A)
	if pa == nil {
		pa = new(A)
	}
	*pa = a
	return pa
}

func unbox[A any](p *sync.Pool, pa *A) {
	var zero A
	*pa = zero // do not keep the argument's pointers alive
	p.Put(pa)
}

// do2 is do1 for two arguments; run takes them as a pair, so that a miss
// hands it to the request as it is, with no adapter made per call.
func do2[A, B, T any](w *wrapped, a A, b B, ctx context.Context, run func(context.Context, pair[A, B]) T) T {
	if w.key == nil && !w.deref {
		var arr [64]byte
		k := binary.LittleEndian.AppendUint64(arr[:0], w.fid)
		k, ok := appendBasic(k, a)
		if ok {
			k, ok = appendBasic(k, b)
		}
		if ok {
			h := engine.HashKey(k)
			v, ok := w.c.e.Lookup(k, h)
			if ok {
				return as[T](v)
			}
			s := keys.GetState()
			s.Buf = append(s.Buf, k...)
			return miss(w, s, h, v == engine.RefreshDue, request[pair[A, B], T]{ctx: ctx, fn: run, a: pair[A, B]{a, b}})
		}
	}
	return slow2(w, a, b, ctx, run)
}

func slow2[A, B, T any](w *wrapped, a A, b B, ctx context.Context, run func(context.Context, pair[A, B]) T) T {
	s := keys.GetState()
	pa, pb := box(&w.boxes[0], a), box(&w.boxes[1], b)
	w.encodeTyped(s, reflect.ValueOf(pa).Elem(), reflect.ValueOf(pb).Elem())
	unbox(&w.boxes[0], pa)
	unbox(&w.boxes[1], pb)
	h := engine.HashKey(s.Buf)
	v, ok := w.c.e.Lookup(s.Buf, h)
	if ok {
		keys.PutState(s)
		return as[T](v)
	}
	return miss2(w, s, h, v == engine.RefreshDue, ctx, run, a, b)
}

func miss2[A, B, T any](w *wrapped, s *keys.State, h uint64, due bool, ctx context.Context, run func(context.Context, pair[A, B]) T, a A, b B) T {
	var own func()
	var detach func() (func(context.Context) T, func(string) bool)
	if cs := w.copiers(); cs != nil {
		if ctx != nil {
			own = func() { keys.OwnValues2(cs[0], cs[1], &a, &b) }
		}
		if w.refreshes() {
			detach = func() (func(context.Context) T, func(string) bool) {
				a, b := a, b
				keys.OwnValues2(cs[0], cs[1], &a, &b)
				return func(ctx context.Context) T { return run(ctx, pair[A, B]{a, b}) }, verify2(w, &a, &b)
			}
		}
	}
	return miss(w, s, h, due, request[struct{}, T]{ctx: ctx, fn: func(ctx context.Context, _ struct{}) T { return run(ctx, pair[A, B]{a, b}) }, own: own, detach: detach, verify: verify2(w, &a, &b)})
}

// verify2 is verify1 for two arguments.
func verify2[A, B any](w *wrapped, a *A, b *B) func(string) bool {
	if !w.recheck {
		return nil
	}
	return func(key string) bool {
		s := keys.GetState()
		defer keys.PutState(s)
		w.encodeTyped(s, reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
		return !s.Never && string(s.Buf) == key
	}
}

// encodeTyped encodes the arguments of a typed function (the context
// left out) as Decorate does.
func (w *wrapped) encodeTyped(s *keys.State, args ...reflect.Value) {
	if w.key == nil {
		s.Deref = w.deref
		s.Stable = w.tier != nil
		s.U64(w.fid)
		for i, a := range args {
			w.encs[i](s, a)
		}
		return
	}
	in := make([]reflect.Value, 0, len(args)+1)
	if w.ctx {
		in = append(in, reflect.Value{})
	}
	w.encode(s, append(in, args...))
}

// appendBasic appends the key encoding of a when its type is one of Go's
// basic types, byte-for-byte as the reflective encoder does, and reports
// false for any other type.
//
// The switch is on the static type A (through a pointer to a), not on the
// dynamic type of a: for an interface A such as any, a basic value inside
// must be keyed with its dynamic type's id, as encodeInterface does, or
// int(1) and int64(1) would share a key.
// shortString returns a if A is string and a is shorter than 128 bytes
// (its length then encodes in one byte, as appendBasic writes it).
func shortString[A any](a A) (string, bool) {
	if p, ok := any(&a).(*string); ok && len(*p) < 128 {
		return *p, true
	}
	return "", false
}

func appendBasic[A any](b []byte, a A) ([]byte, bool) {
	switch p := any(&a).(type) {
	case *int:
		return binary.LittleEndian.AppendUint64(b, uint64(*p)), true
	case *int64:
		return binary.LittleEndian.AppendUint64(b, uint64(*p)), true
	case *int32:
		return binary.LittleEndian.AppendUint64(b, uint64(*p)), true
	case *uint:
		return binary.LittleEndian.AppendUint64(b, uint64(*p)), true
	case *uint64:
		return binary.LittleEndian.AppendUint64(b, *p), true
	case *uint32:
		return binary.LittleEndian.AppendUint64(b, uint64(*p)), true
	case *string:
		if len(b)+len(*p) > keys.MaxKeyLen {
			// The reflective encoder finds the key too long, as str does:
			// b holds what it would have written before this string.
			return b, false
		}
		b = binary.AppendUvarint(b, uint64(len(*p)))
		return append(b, *p...), true
	case *bool:
		if *p {
			return append(b, 1), true
		}
		return append(b, 0), true
	case *float64:
		v := *p
		if v != v {
			v = math.NaN()
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v)), true
	}
	return b, false
}

// pair holds the two arguments of a Func2 call (see request).
type pair[A, B any] struct {
	a A
	b B
}
