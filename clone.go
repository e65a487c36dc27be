package memo

import (
	"reflect"
	"sync"
	"unsafe"
)

// Private copies of arguments, for executions that outlive their caller.
//
// A caller may reuse its memory once its call has returned, so an execution
// that goes on after that (a background refresh, an execution whose context
// caller left) must not read the caller's slices, maps or arrays again. It
// works on a copy made while the caller is still inside the call: every
// slice, map and interface is copied deeply, arrays and structs (unexported
// fields too) element by element. Pointers, channels, funcs and
// unsafe.Pointers are kept as they are, since memo keys them by identity;
// under WithDeref, which keys pointers by the value they point to, the
// pointees are copied too. Strings are immutable and shared. Shared and
// cyclic structure is copied once, so a value that contains itself gives a
// copy that contains itself.

// cloneArg returns a private copy of a (see above); deref is WithDeref's.
// Values whose type holds nothing a caller could change are returned as
// they are, without reflection.
func cloneArg[A any](a A, deref bool) A {
	if !needsClone(reflect.TypeFor[A](), deref) {
		return a
	}
	return cloneDeep(a, deref)
}

// cloneDeep is cloneArg's copy, apart so that a moves to the heap only
// when it is copied.
func cloneDeep[A any](a A, deref bool) A {
	cl := cloner{deref: deref}
	cl.fix(reflect.ValueOf(&a).Elem())
	return a
}

// cloneArgs returns private copies of a decorated function's arguments
// (context.Context parameters are kept as they are).
func (w *wrapped) cloneArgs(args []reflect.Value) []reflect.Value {
	out := make([]reflect.Value, len(args))
	cl := cloner{deref: w.deref}
	for i, a := range args {
		if a.Type() == contextType || !needsClone(a.Type(), w.deref) {
			out[i] = a
			continue
		}
		c := reflect.New(a.Type()).Elem()
		c.Set(a)
		cl.fix(c)
		out[i] = c
	}
	return out
}

// cloner copies one value; seen maps what it has copied (slices by their
// data, length and type, maps and pointees by address) to the copy.
type cloner struct {
	deref bool
	seen  map[cloneKey]reflect.Value
}

type cloneKey struct {
	p   uintptr
	n   int
	typ reflect.Type
}

func (cl *cloner) remember(k cloneKey, v reflect.Value) {
	if cl.seen == nil {
		cl.seen = make(map[cloneKey]reflect.Value)
	}
	cl.seen[k] = v
}

// fix replaces, in v (addressable and settable), every reference to memory
// the caller may change by a reference to a copy.
func (cl *cloner) fix(v reflect.Value) {
	t := v.Type()
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		k := cloneKey{v.Pointer(), v.Len(), t}
		if c, ok := cl.seen[k]; ok {
			v.Set(c)
			return
		}
		c := reflect.MakeSlice(t, v.Len(), v.Len())
		cl.remember(k, c)
		reflect.Copy(c, v)
		if needsClone(t.Elem(), cl.deref) {
			for i := range c.Len() {
				cl.fix(c.Index(i))
			}
		}
		v.Set(c)
	case reflect.Array:
		if needsClone(t.Elem(), cl.deref) {
			for i := range v.Len() {
				cl.fix(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !needsClone(f.Type(), cl.deref) {
				continue
			}
			if !f.CanSet() { // an unexported field: reach it through its address
				f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			}
			cl.fix(f)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		k := cloneKey{v.Pointer(), 0, t}
		if c, ok := cl.seen[k]; ok {
			v.Set(c)
			return
		}
		c := reflect.MakeMapWithSize(t, v.Len())
		cl.remember(k, c)
		deep := needsClone(t.Elem(), cl.deref)
		key := reflect.New(t.Key()).Elem()
		for it := v.MapRange(); it.Next(); {
			key.SetIterKey(it)
			if !deep {
				c.SetMapIndex(key, it.Value())
				continue
			}
			val := reflect.New(t.Elem()).Elem() // a fresh one: fix may keep it (seen)
			val.SetIterValue(it)
			cl.fix(val)
			c.SetMapIndex(key, val)
		}
		v.Set(c)
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		if !needsClone(e.Type(), cl.deref) {
			return
		}
		c := reflect.New(e.Type()).Elem()
		c.Set(e)
		cl.fix(c)
		v.Set(c)
	case reflect.Pointer:
		if !cl.deref || v.IsNil() {
			return
		}
		k := cloneKey{v.Pointer(), -1, t}
		if c, ok := cl.seen[k]; ok {
			v.Set(c)
			return
		}
		c := reflect.New(t.Elem())
		cl.remember(k, c)
		c.Elem().Set(v.Elem())
		cl.fix(c.Elem())
		v.Set(c)
	}
}

// cloneTypes caches needsClone per type, without and with WithDeref.
var cloneTypes [2]sync.Map // reflect.Type → bool

// needsClone reports whether a value of type t can refer to memory that a
// caller may change after its call: slices, maps and interfaces, and
// pointers under WithDeref, directly or inside arrays and structs.
func needsClone(t reflect.Type, deref bool) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer:
		return deref
	case reflect.Array, reflect.Struct:
	default:
		return false
	}
	cache := &cloneTypes[0]
	if deref {
		cache = &cloneTypes[1]
	}
	if v, ok := cache.Load(t); ok {
		return v.(bool)
	}
	// A recursive type reaches itself only through a pointer, slice or map,
	// all decided above without recursing, so this terminates.
	need := false
	if t.Kind() == reflect.Array {
		need = t.Len() > 0 && needsClone(t.Elem(), deref)
	} else {
		for i := range t.NumField() {
			if needsClone(t.Field(i).Type, deref) {
				need = true
				break
			}
		}
	}
	cache.Store(t, need)
	return need
}
