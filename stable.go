package memo

import (
	"crypto/sha256"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
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
//     process-local type id;
//   - a time.Time's location is written by name (UTC as before); time.Local
//     may differ between machines and keeps its identity;
//   - everything keyed by identity (pointers, funcs, channels, cycles) or
//     by a nonce (values past the key limit) marks the key local, and a
//     local key is never shared (keyState.local).

// stableTypes caches the stable name of each type; stableOwners maps a
// name back to the one type that may use it.
var (
	stableTypes  sync.Map // reflect.Type → string
	stableOwners sync.Map // string → reflect.Type
)

// stableType writes t where a type id goes in a stable key: the uvarint
// 2+len(name), then the name (0 and 1 are the nil and nonce ids). Two
// distinct types with one name (types declared inside functions) cannot be
// told apart by name: the second one met gets a nonce, so its keys are
// local, never hit, and are never shared.
func (s *keyState) stableType(t reflect.Type) {
	name := stableName(t)
	if owner, _ := stableOwners.LoadOrStore(name, t); owner != t {
		s.uvarint(nonceTypeID)
		s.nonce()
		return
	}
	s.uvarint(uint64(len(name)) + 2)
	s.buf = append(s.buf, name...)
}

// stableLoc writes a time.Time's location by name and reports true, or
// reports false for time.Local, which the caller keys by identity.
func (s *keyState) stableLoc(loc *time.Location) bool {
	if loc == time.Local {
		return false
	}
	s.byte(tagValue)
	s.str(loc.String())
	return true
}

// shareable reports whether the key in s can be shared with other
// processes: nothing in it is process-local.
func (s *keyState) shareable() bool { return !s.local }

// stableName returns t's name as written in Go source, with every defined
// type qualified by its full package path: "[]example.com/shop.Item",
// "map[string]int". It is the same in every build of the same code.
func stableName(t reflect.Type) string {
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

// schemaOf returns the fingerprint of a function type: SHA-256 of its
// signature with the structure of every defined type in it written out,
// so that a deploy that changes a parameter or result type (a field added,
// renamed or retyped) never shares entries with the old code.
func schemaOf(t reflect.Type) [32]byte {
	var b strings.Builder
	writeTypeName(&b, t, map[reflect.Type]bool{})
	return sha256.Sum256([]byte(b.String()))
}
