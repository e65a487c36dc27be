package memo

import (
	"reflect"

	"github.com/memokit/memo/internal/keys"
)

// CacheKeyer is implemented by types that define their own key: two values
// of such a type share a cache entry when their CacheKey results are equal
// under memo's key rules. Use it for a type whose identity-keyed parts
// (funcs, pointers, channels) would make every call a miss, such as a
// functional option: key it by what it means. The
// result may be of any type memo can key; it must depend only on the value.
// CacheKey is called on every lookup, from any goroutine, possibly
// concurrently; if it panics, the value is keyed by its structure instead.
// A struct that embeds a CacheKeyer type has its CacheKey too (promoted),
// and is keyed by it alone.
type CacheKeyer interface {
	CacheKey() any
}

// hashable is what MakeHashable returns for values it can convert: the
// value's canonical encoding. Two hashables are == exactly when the values
// are equal under memo's key rules.
type hashable struct{ enc string }

// MakeHashable returns a comparable value that stands for v under memo's key
// rules (see the README's key table): == on two results is true exactly when
// the values are equal as cache keys. Values of different dynamic types are
// never equal, mappings compare as sets of pairs, iterables element by
// element, floats by their bits with every NaN alike.
//
// A func, and a value that contains itself (a slice or map among its own
// elements), is keyed by identity and comes back as a [HashableWrapper].
// Pointers are keyed by identity without keeping their object alive: after
// the object is collected, a new object at the same address gets a
// different key.
//
// A value memo cannot key (one whose key would pass 4 MiB, or nested deeper
// than 1,000 levels, or holding a func it cannot identify) comes back as a
// HashableWrapper equal only to itself.
//
// MakeHashable is safe for concurrent use. It never hangs or overflows the
// stack, and allocates little beyond the 4 MiB key limit, whatever v holds.
func MakeHashable(v any) any {
	s := keys.GetState()
	defer keys.PutState(s)
	keys.EncodeInterface(s, reflect.ValueOf(&v).Elem())
	if s.Opaque {
		return wrapEncoded(v, wrapperKey(s))
	}
	return hashable{string(s.Buf)}
}

// IsIterable reports whether v is a slice or an array, the values keyed
// element by element. Strings and byte slices are keyed as scalars and are
// not iterable here.
func IsIterable(v any) bool {
	t := reflect.TypeOf(v)
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Array:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	}
	return false
}

// IsMapping reports whether v is a map.
func IsMapping(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Map
}
