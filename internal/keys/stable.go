package keys

import (
	"crypto/sha256"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Stable keys.
//
// The keys of a function decorated WithTier are shared by processes, so
// they must not depend on anything local to one process. The key encoding
// is the same as for other functions but for three things, switched on by
// keyState.stable:
//
//   - the dynamic type of an interface value is written as its name (the
//     package path and the type name, see stableName) instead of the
//     process-local type id, when that name is the type's alone in the
//     program (see ambiguousType); otherwise the key is local;
//   - a time.Time's location is written by name, with the zone name and
//     offset in effect at its instant (UTC as before); time.Local may
//     differ between machines and keeps its identity;
//   - everything keyed by identity (pointers, funcs, channels, cycles) or
//     by a nonce (values past the key limit) marks the key local, and a
//     local key is never shared (keyState.local).

// stableTypes caches the stable name of each type.
var stableTypes sync.Map // reflect.Type → string

// stableLoc writes a time.Time's location by name, then the zone name and
// offset in effect at sec (the instant, in seconds since the year 1), and
// reports true; it reports false for time.Local, which the caller keys by
// identity. time.Parse names every numeric offset "", so the offset is
// what tells 10:00+01:00 from 11:00+02:00 (one instant, two wall times).
func (s *State) stableLoc(loc *time.Location, sec int64) bool {
	if loc == time.Local {
		return false
	}
	s.byte(tagValue)
	s.str(loc.String())
	zone, off := time.Unix(sec-unixToInternal, 0).In(loc).Zone()
	s.str(zone)
	s.U64(uint64(int64(off)))
	return true
}

// unixToInternal is the time package's offset from the year 1 to 1970, in
// seconds.
const unixToInternal int64 = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 86400

// Shareable reports whether the key in s can be shared with other
// processes: nothing in it is process-local.
func (s *State) Shareable() bool { return !s.local }

// StableName returns t's name as written in Go source, with every defined
// type qualified by its full package path: "[]example.com/shop.Item",
// "map[string]int". It is the same in every build of the same code.
func StableName(t reflect.Type) string {
	if n, ok := stableTypes.Load(t); ok {
		return n.(string)
	}
	var b strings.Builder
	writeTypeName(&b, t, nil)
	n := b.String()
	stableTypes.Store(t, n)
	return n
}

// writeTypeName writes t's name; with expand non-nil, it writes the
// structure of defined types too (once each), for schema fingerprints.
func writeTypeName(b *strings.Builder, t reflect.Type, expand map[reflect.Type]bool) {
	if t.Name() != "" {
		if t.PkgPath() != "" {
			b.WriteString(t.PkgPath())
			b.WriteByte('.')
		}
		b.WriteString(t.Name())
		if expand == nil || expand[t] || t.PkgPath() == "" {
			return
		}
		expand[t] = true
		b.WriteByte('=')
	}
	switch t.Kind() {
	case reflect.Pointer:
		b.WriteByte('*')
		writeTypeName(b, t.Elem(), expand)
	case reflect.Slice:
		b.WriteString("[]")
		writeTypeName(b, t.Elem(), expand)
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		writeTypeName(b, t.Elem(), expand)
	case reflect.Map:
		b.WriteString("map[")
		writeTypeName(b, t.Key(), expand)
		b.WriteByte(']')
		writeTypeName(b, t.Elem(), expand)
	case reflect.Chan:
		b.WriteString(t.ChanDir().String() + " ")
		writeTypeName(b, t.Elem(), expand)
	case reflect.Func:
		b.WriteString("func(")
		for i := range t.NumIn() {
			if i > 0 {
				b.WriteByte(',')
			}
			if i == t.NumIn()-1 && t.IsVariadic() {
				b.WriteString("...")
			}
			writeTypeName(b, t.In(i), expand)
		}
		b.WriteString(")(")
		for i := range t.NumOut() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeTypeName(b, t.Out(i), expand)
		}
		b.WriteByte(')')
	case reflect.Struct:
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			if i > 0 {
				b.WriteByte(';')
			}
			if f.PkgPath != "" {
				b.WriteString(f.PkgPath + ".")
			}
			if f.Anonymous {
				b.WriteString("embed ")
			}
			b.WriteString(f.Name + " ")
			writeTypeName(b, f.Type, expand)
			if f.Tag != "" {
				b.WriteString(" " + strconv.Quote(string(f.Tag)))
			}
		}
		b.WriteByte('}')
	case reflect.Interface:
		b.WriteString("interface{")
		for i := range t.NumMethod() {
			m := t.Method(i)
			if i > 0 {
				b.WriteByte(';')
			}
			if m.PkgPath != "" {
				b.WriteString(m.PkgPath + ".")
			}
			b.WriteString(m.Name)
			writeTypeName(b, m.Type, expand)
		}
		b.WriteByte('}')
	default:
		if t.Name() == "" || expand != nil {
			b.WriteString(t.Kind().String())
		}
	}
}

// SchemaOf returns the fingerprint of a function type: SHA-256 of its
// signature with the structure of every defined type in it written out,
// so that a deploy that changes a parameter or result type (a field added,
// renamed or retyped) never shares entries with the old code.
func SchemaOf(t reflect.Type) [32]byte {
	var b strings.Builder
	writeTypeName(&b, t, map[reflect.Type]bool{})
	return sha256.Sum256([]byte(b.String()))
}

// Types whose names are not their own.
//
// reflect gives a type declared inside a function the same name as any
// other type of that name in its package ("main.ID" for both of
// func a() { type ID struct{ N int } } and func b() { type ID struct{ N
// int } }), so a name alone can give two types one shared key. memo reads
// every named type the program holds from the runtime's type links (the
// table reflect.PointerTo and friends search): the compiler emits *T for
// every named type T and links every pointer type, so the named types
// are the Elem of those pointers, and others are reached through
// composite types. A name held by two types is ambiguous, and so is a
// named type the table does not reach (never expected: a miss rather than
// a wrong hit). The table is the binary's: the same in every replica of a
// build, and the same for every build of the same code.

//go:linkname typelinks reflect.typelinks
func typelinks() (sections []unsafe.Pointer, offset [][]int32)

var (
	namesOnce sync.Once
	// TypeNames maps the stable name of every named type in the program
	// to the type, or to nil when two types share the name.
	TypeNames map[string]reflect.Type
	// ambiguousTypes caches ambiguousType per type.
	ambiguousTypes sync.Map // reflect.Type → bool
)

// ProgramTypes builds typeNames from the runtime's type links.
func ProgramTypes() {
	TypeNames = map[string]reflect.Type{}
	seen := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		if seen[t] {
			return
		}
		seen[t] = true
		if t.Name() != "" && t.PkgPath() != "" {
			name := StableName(t)
			if prev, ok := TypeNames[name]; ok && prev != t {
				TypeNames[name] = nil
			} else if !ok {
				TypeNames[name] = t
			}
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
			visit(t.Elem())
		case reflect.Map:
			visit(t.Key())
			visit(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				visit(t.Field(i).Type)
			}
		case reflect.Func:
			for i := range t.NumIn() {
				visit(t.In(i))
			}
			for i := range t.NumOut() {
				visit(t.Out(i))
			}
		}
	}
	sections, offsets := typelinks()
	for i, base := range sections {
		for _, off := range offsets[i] {
			visit(typeAt(unsafe.Add(base, off)))
		}
	}
}

// typeAt returns the reflect.Type of the type descriptor at p: an
// interface value with that type and no data, of which reflect.TypeOf
// reads only the type.
func typeAt(p unsafe.Pointer) reflect.Type {
	var v any
	(*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0] = p
	return reflect.TypeOf(v)
}

// AmbiguousType reports whether t, or a named type in t's name (its
// element, key, fields, parameters), has a name that another type of the
// program shares, or that the program's type table does not hold.
func AmbiguousType(t reflect.Type) bool {
	if a, ok := ambiguousTypes.Load(t); ok {
		return a.(bool)
	}
	namesOnce.Do(ProgramTypes)
	a := ambiguousIn(t, map[reflect.Type]bool{})
	ambiguousTypes.Store(t, a)
	return a
}

func ambiguousIn(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return false // predeclared: int, string, error...
		}
		return TypeNames[StableName(t)] != t
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
		return ambiguousIn(t.Elem(), seen)
	case reflect.Map:
		return ambiguousIn(t.Key(), seen) || ambiguousIn(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if ambiguousIn(t.Field(i).Type, seen) {
				return true
			}
		}
	case reflect.Func:
		for i := range t.NumIn() {
			if ambiguousIn(t.In(i), seen) {
				return true
			}
		}
		for i := range t.NumOut() {
			if ambiguousIn(t.Out(i), seen) {
				return true
			}
		}
	case reflect.Interface:
		for i := range t.NumMethod() {
			if ambiguousIn(t.Method(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// reflect.Type → struct{}
