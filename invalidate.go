package memo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
)

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
		s := keys.GetState()
		w.encode(s, in)
		if w.c.e.Remove(s.Buf, engine.HashKey(s.Buf)) {
			removed = true
		}
		_ = w.invalidateTier(context.Background(), s) // InvalidateContext reports the error
		keys.PutState(s)
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

// invalidateTier removes the entry of the stable key in s from w's tier.
func (w *wrapped) invalidateTier(ctx context.Context, s *keys.State) error {
	if w.tier == nil || !s.Shareable() {
		return nil
	}
	return w.tier.b.Invalidate(ctx, w.tier.tierKey(s))
}

// InvalidateContext is [Invalidate] for functions decorated [WithTier]:
// it removes the entry from the tier first, which tells the other
// replicas to drop their local copies, and then from the local cache, so
// that no load of this process in flight stores what it read before the
// tier's delete. Once it returns nil, no replica serves the old value
// later than the tier's documented bound (for redistier, its
// WithMaxLocalAge when an invalidation message is lost, a message's
// delivery otherwise). It returns an error (with removed telling about
// the local cache) when the tier could not be reached within ctx or its
// own time budget: the tier then retries the invalidation in the
// background until it lands, and this process does not read the key from
// the tier meanwhile (its calls of the key run locally), so it never
// serves the old value again. For other functions it is Invalidate with a
// nil error. Like Invalidate, it panics with a "memo:" message when args
// do not fit fn's parameters. Safe for concurrent use.
func InvalidateContext(ctx context.Context, fn any, args ...any) (bool, error) {
	w := lookupWrapped(fn)
	if w == nil {
		return false, nil
	}
	calls := w.calls(args)
	if len(calls) == 0 {
		panic(w.badArgs(args))
	}
	removed := false
	var errs []error
	for _, in := range calls {
		s := keys.GetState()
		w.encode(s, in)
		// The tier first, then the local entry: a load of this process
		// that read the old value before the tier's delete is detached by
		// the local removal (it stores nothing), and one that starts after
		// it reads the tier after the delete. When the tier could not be
		// reached, it retries on its own and keeps the key away from this
		// process meanwhile (see TierBinding.Invalidate).
		h := engine.HashKey(s.Buf)
		// The tier's own message may drop the entry before remove does:
		// removed tells whether there was a live one when the call began.
		if n := w.c.e.Index.Get(s.Buf, h); n != nil && engine.Live(n, &w.c.e) {
			removed = true
		}
		if err := w.invalidateTier(ctx, s); err != nil {
			errs = append(errs, err)
		}
		w.c.e.Remove(s.Buf, h)
		keys.PutState(s)
	}
	return removed, errors.Join(errs...)
}
