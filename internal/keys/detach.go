package keys

import (
	"reflect"
	"sync"
	"unsafe"
)

// Copies of arguments that an execution owns.
//
// An execution may outlive a caller: with a context, the function runs in
// a goroutine of its own while its callers wait, and the caller that
// started it may leave (its context ended) and reuse its memory, as any Go
// caller may once a call has returned. Had the execution kept reading that
// memory, it would compute the result of other arguments and store it
// under the key of the first: a wrong result for every later caller. So
// such an execution works on its own copy of every part of the arguments
// that the key encodes by value: the elements of slices, arrays and maps,
// struct fields, the values in interfaces, and pointees under WithDeref.
// What the key takes by identity (pointers without WithDeref, channels,
// funcs, unsafe.Pointer, time.Time's location) is passed as it is, and so
// are fields left out of the key (memo:"-") and strings, which Go never
// changes in place. A pointer whose type has a CacheKey method stays as it
// is too: copying the object it points to would hand the function another
// object (a service, a connection) where its identity matters.
//
// A copy keeps the shape of its source: memory reached twice (two elements
// sharing one slice, a value that contains itself) is copied once and
// shared the same way in the copy, so copying costs at most the memory the
// arguments reach, never more, and terminates on cycles.

// A Copier returns a copy of v, which is addressable and not read-only,
// that shares none of the memory the key encodes by value with v. It
// returns v itself when there is nothing to copy. The result is not
// read-only, so it can be Set into a destination.
type Copier func(st *CopyState, v reflect.Value) reflect.Value

// CopyState is the scratch space of one copy.
type CopyState struct {
	// seen maps the containers already copied to their copies, for shared
	// memory and cycles; made on first use.
	seen  map[copyVisit]reflect.Value
	depth int
	// Alone is set while the value at the root of the copy is the only
	// one copied: a slice there is reached once and need not be recorded.
	// Arrays and structs clear it, as their parts share the root's depth.
	Alone bool
}

type copyVisit struct {
	p unsafe.Pointer
	n int
	t reflect.Type
}

func (st *CopyState) lookup(k copyVisit) (reflect.Value, bool) {
	v, ok := st.seen[k]
	return v, ok
}

func (st *CopyState) record(k copyVisit, v reflect.Value) {
	if st.seen == nil {
		st.seen = make(map[copyVisit]reflect.Value)
	}
	st.seen[k] = v
}

type copierKey struct {
	t     reflect.Type
	deref bool
}

var copierCache sync.Map // copierKey → copier

// CopierOf returns the copier of t, or nil when a value of type t shares
// nothing with its caller that the key encodes by value (ints, strings,
// pointers keyed by identity, structs of those). Built once per type, as
// the key encoders are; a recursive type gets a placeholder first.
func CopierOf(t reflect.Type, deref bool) Copier {
	if !needsCopy(t, deref) {
		return nil
	}
	k := copierKey{t, deref}
	if c, ok := copierCache.Load(k); ok {
		return c.(Copier)
	}
	var (
		wg sync.WaitGroup
		f  Copier
	)
	wg.Add(1)
	placeholder := Copier(func(st *CopyState, v reflect.Value) reflect.Value {
		wg.Wait()
		return f(st, v)
	})
	if c, loaded := copierCache.LoadOrStore(k, placeholder); loaded {
		return c.(Copier)
	}
	f = newCopier(t, deref)
	wg.Done()
	copierCache.Store(k, f)
	return f
}

// needsCopy reports whether a value of type t can share, with the caller
// that passed it, memory that its key encodes by value.
func needsCopy(t reflect.Type, deref bool) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Interface:
		return true
	case reflect.Pointer:
		return deref && !t.Implements(KeyerType)
	case reflect.Array:
		return t.Len() > 0 && needsCopy(t.Elem(), deref)
	case reflect.Struct:
		if t == TimeType {
			return false
		}
		for i := range t.NumField() {
			if f := t.Field(i); !ignoredField(f) && needsCopy(f.Type, deref) {
				return true
			}
		}
	}
	return false
}

func newCopier(t reflect.Type, deref bool) Copier {
	switch t.Kind() {
	case reflect.Slice:
		return sliceCopier(t, deref)
	case reflect.Map:
		return mapCopier(t, deref)
	case reflect.Interface:
		return interfaceCopier(t, deref)
	case reflect.Pointer:
		return pointerCopier(t, deref)
	case reflect.Array:
		return arrayCopier(t, deref)
	default: // reflect.Struct: needsCopy admits no other kind
		return structCopier(t, deref)
	}
}

// writable returns v without the read-only flag that reflect sets on
// values reached through unexported fields, so that its parts can be read
// into, and it can be Set into, a copy. v is addressable.
func writable(v reflect.Value) reflect.Value {
	if v.CanInterface() {
		return v
	}
	return reflect.NewAt(v.Type(), v.Addr().UnsafePointer()).Elem()
}

// maxCopyDepth bounds the nesting a copy follows, as maxDepth bounds the
// key encoder: deeper than that, the key holds a nonce, so that no other
// call can share the execution, and nothing needs copying. The encoder
// bounds containers (slices, maps, pointees) and interfaces apart, maxDepth
// each, where a copy counts them together: so twice maxDepth, or a copy
// would stop short of memory the key still takes by value ([]any nested
// 700 deep is 1,400 levels here).
const maxCopyDepth = 2 * MaxDepth

func sliceCopier(t reflect.Type, deref bool) Copier {
	var elem Copier
	var once sync.Once
	// A slice whose elements hold nothing to copy can hold no container:
	// it cannot be met twice on one path, and is only worth remembering
	// when something around it may refer to it again (anything but the
	// root of the only value copied).
	leaf := !needsCopy(t.Elem(), deref)
	return func(st *CopyState, v reflect.Value) reflect.Value {
		if v.IsNil() || st.depth >= maxCopyDepth {
			return v
		}
		n := v.Len()
		k := copyVisit{v.UnsafePointer(), n, t}
		track := !leaf || st.depth > 0 || !st.Alone
		if track {
			if c, ok := st.lookup(k); ok {
				return c
			}
		}
		out := reflect.MakeSlice(t, n, n)
		if track {
			st.record(k, out)
		}
		if leaf {
			reflect.Copy(out, v)
			return out
		}
		once.Do(func() { elem = CopierOf(t.Elem(), deref) })
		st.depth++
		for i := range n {
			out.Index(i).Set(elem(st, v.Index(i)))
		}
		st.depth--
		return out
	}
}

func arrayCopier(t reflect.Type, deref bool) Copier {
	var elem Copier
	var once sync.Once
	return func(st *CopyState, v reflect.Value) reflect.Value {
		once.Do(func() { elem = CopierOf(t.Elem(), deref) })
		st.Alone = false // its elements may share memory
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.Len() {
			out.Index(i).Set(elem(st, v.Index(i)))
		}
		return out
	}
}

func mapCopier(t reflect.Type, deref bool) Copier {
	var kc, ec Copier
	var once sync.Once
	return func(st *CopyState, v reflect.Value) reflect.Value {
		if v.IsNil() || st.depth >= maxCopyDepth {
			return v
		}
		k := copyVisit{v.UnsafePointer(), 0, t}
		if c, ok := st.lookup(k); ok {
			return c
		}
		once.Do(func() { kc, ec = CopierOf(t.Key(), deref), CopierOf(t.Elem(), deref) })
		out := reflect.MakeMapWithSize(t, v.Len())
		st.record(k, out)
		st.depth++
		kv, ev := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
		for it := v.MapRange(); it.Next(); {
			kv.SetIterKey(it)
			ev.SetIterValue(it)
			key, val := kv, ev
			if kc != nil {
				key = kc(st, kv)
			}
			if ec != nil {
				val = ec(st, ev)
			}
			out.SetMapIndex(key, val)
		}
		st.depth--
		return out
	}
}

func interfaceCopier(t reflect.Type, deref bool) Copier {
	return func(st *CopyState, v reflect.Value) reflect.Value {
		if v.IsNil() || st.depth >= maxCopyDepth {
			return v
		}
		e := v.Elem()
		c := CopierOf(e.Type(), deref)
		if c == nil {
			return v // Go never changes a value inside an interface in place
		}
		// An interface holds its value in a box of its own, which several
		// interfaces may share: copy each box once. (Zero values of every
		// type may share one box: the dynamic type is part of the visit.)
		box := (*[2]unsafe.Pointer)(v.Addr().UnsafePointer())[1]
		k := copyVisit{box, -1, e.Type()}
		if out, ok := st.lookup(k); ok {
			return out
		}
		tmp := reflect.New(e.Type()).Elem()
		tmp.Set(e)
		st.depth++
		cp := c(st, tmp)
		st.depth--
		out := reflect.New(t).Elem()
		out.Set(cp)
		st.record(k, out)
		return out
	}
}

// pointerCopier copies the object a pointer points to (WithDeref only:
// without it pointers are keyed by identity and need no copy).
func pointerCopier(t reflect.Type, deref bool) Copier {
	var elem Copier
	var once sync.Once
	return func(st *CopyState, v reflect.Value) reflect.Value {
		if v.IsNil() || st.depth >= maxCopyDepth {
			return v
		}
		k := copyVisit{v.UnsafePointer(), 0, t}
		if c, ok := st.lookup(k); ok {
			return c
		}
		once.Do(func() { elem = CopierOf(t.Elem(), deref) })
		out := reflect.New(t.Elem())
		st.record(k, out)
		src := writable(v.Elem())
		st.depth++
		if elem != nil {
			out.Elem().Set(elem(st, src))
		} else {
			out.Elem().Set(src)
		}
		st.depth--
		return out
	}
}

func structCopier(t reflect.Type, deref bool) Copier {
	type field struct {
		off uintptr
		t   reflect.Type
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !ignoredField(f) && needsCopy(f.Type, deref) {
			fields = append(fields, field{f.Offset, f.Type})
		}
	}
	copiers := make([]Copier, len(fields))
	var once sync.Once
	return func(st *CopyState, v reflect.Value) reflect.Value {
		once.Do(func() {
			for i, f := range fields {
				copiers[i] = CopierOf(f.t, deref)
			}
		})
		st.Alone = false // its fields may share memory
		out := reflect.New(t)
		out.Elem().Set(v) // every field, those left out of the key too
		src, dst := v.Addr().UnsafePointer(), out.UnsafePointer()
		for i, f := range fields {
			fv := reflect.NewAt(f.t, unsafe.Add(src, f.off)).Elem()
			reflect.NewAt(f.t, unsafe.Add(dst, f.off)).Elem().Set(copiers[i](st, fv))
		}
		return out.Elem()
	}
}

// OwnValue replaces *p by a copy made by c (see copier); c is not nil.
func OwnValue[A any](c Copier, p *A) {
	st := CopyState{Alone: true}
	v := reflect.ValueOf(p).Elem()
	v.Set(c(&st, v))
}

// OwnValues2 replaces *a and *b by copies made by ca and cb (either may be
// nil: that value is kept), in one copy, so that memory the two share is
// shared by their copies too.
func OwnValues2[A, B any](ca, cb Copier, a *A, b *B) {
	st := CopyState{Alone: ca == nil || cb == nil}
	if ca != nil {
		v := reflect.ValueOf(a).Elem()
		v.Set(ca(&st, v))
	}
	if cb != nil {
		v := reflect.ValueOf(b).Elem()
		v.Set(cb(&st, v))
	}
}

// MayReadThrough reports whether the key of a value of type t may be
// computed from memory that its copy (see copier) does not take: a
// CacheKeyer's CacheKey may read anything, a pointer's included, and an
// interface may hold one. Such keys are checked again when an execution
// that may have outlived its callers ends (see call.verify). seen guards
// recursive types.
func MayReadThrough(t reflect.Type, deref bool, seen map[reflect.Type]bool) bool {
	if t.Implements(KeyerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer:
		if !deref {
			return false // keyed by identity: the key reads nothing through it
		}
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
	default:
		return false
	}
	if seen[t] {
		return false
	}
	if seen == nil {
		seen = make(map[reflect.Type]bool)
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return MayReadThrough(t.Elem(), deref, seen)
	case reflect.Map:
		return MayReadThrough(t.Key(), deref, seen) || MayReadThrough(t.Elem(), deref, seen)
	}
	for i := range t.NumField() { // a struct
		if f := t.Field(i); !ignoredField(f) && MayReadThrough(f.Type, deref, seen) {
			return true
		}
	}
	return false
}
