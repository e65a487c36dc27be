package memo

import (
	"encoding/binary"
	"hash/maphash"
	"reflect"
	"runtime"
	"sync"
	"weak"

	"github.com/memokit/memo/internal/keys"
	"github.com/mitchellh/hashstructure/v2"
)

// HashableWrapper makes any value usable as a comparable key, such as a map
// key, even a value that Go's == cannot compare (a slice, a map, a struct
// holding one).
// Two wrappers are == exactly when their values are equal under memo's key
// rules; funcs, and values that contain themselves, are equal only to
// themselves (identity).
//
// The zero HashableWrapper wraps nothing and equals only another zero
// wrapper. Wrappers are values: copy them freely. A wrapper keeps its value
// alive; two wrappers of equal values share one box, so the value Value
// returns is the one wrapped first.
type HashableWrapper struct {
	b *wrapBox
}

type wrapBox struct {
	v    any
	hash uint64
	key  string
}

// NewHashableWrapper wraps v. It is safe for concurrent use.
func NewHashableWrapper(v any) HashableWrapper {
	s := keys.GetState()
	defer keys.PutState(s)
	keys.EncodeInterface(s, reflect.ValueOf(&v).Elem())
	return wrapEncoded(v, wrapperKey(s))
}

// wrapperKey returns the key of a wrapper for the value encoded in s. A
// value whose key can never equal another's (see keyState.never) gets a
// short key of its own: 8 bytes 0xff, which no encoding starts with (type
// ids are small), and a fresh nonce.
func wrapperKey(s *keys.State) string {
	if !s.Never {
		return string(s.Buf)
	}
	var b [17]byte
	binary.LittleEndian.PutUint64(b[:], keys.NeverFID)
	b[8] = keys.TagNonce
	binary.LittleEndian.PutUint64(b[9:], keys.Nonces.Add(1))
	return string(b[:])
}

// Value returns the wrapped value (nil for the zero wrapper).
func (w HashableWrapper) Value() any {
	if w.b == nil {
		return nil
	}
	return w.b.v
}

// Hash returns a hash of the wrapped value, equal for equal wrappers. It
// comes from hashstructure (FormatV2) when hashstructure's own walk of the
// value is proven to end within a budget proportional to the value's key
// (no cycle, even one behind a CacheKey method or an ignored field; no
// exponential sharing) and it neither fails nor panics, and otherwise from
// the value's key encoding. Hash never panics.
// hashstructure never decides equality: it dereferences pointers, ignores
// unexported fields and collides across types (see the README).
func (w HashableWrapper) Hash() uint64 {
	if w.b == nil {
		return 0
	}
	return w.b.hash
}

// The intern table gives equal values one box, so that == on wrappers (a
// pointer comparison) is key equality. It holds boxes weakly.
var (
	internMu sync.Mutex
	intern   = map[string]weak.Pointer[wrapBox]{}
	hashSeed = maphash.MakeSeed()
)

func wrapEncoded(v any, key string) HashableWrapper {
	internMu.Lock()
	b := intern[key].Value()
	internMu.Unlock()
	if b != nil {
		return HashableWrapper{b}
	}
	// Hash without the lock: hashing may call the value's own methods
	// (CacheKey, hashstructure's hooks), which may make wrappers too.
	h := hashOf(v, key)
	internMu.Lock()
	defer internMu.Unlock()
	if b := intern[key].Value(); b != nil {
		return HashableWrapper{b} // made meanwhile; the first one wins
	}
	b = &wrapBox{v: v, key: key, hash: h}
	intern[key] = weak.Make(b)
	runtime.AddCleanup(b, forgetBox, key)
	return HashableWrapper{b}
}

func forgetBox(key string) {
	internMu.Lock()
	if intern[key].Value() == nil {
		delete(intern, key)
	}
	internMu.Unlock()
}

// hashOf hashes v with hashstructure when that is known to be safe and
// cheap, and otherwise hashes the key encoding. hashstructure walks v's raw
// structure (through pointers, ignoring memo's CacheKey methods and tags)
// and calls v's own hooks, so what bounds memo's encoding does not bound
// it: it is called only when rawWalkable proves, walking as it does, that
// the walk ends within a budget proportional to the key (no cycle, no
// exponential sharing, no deep nesting), and a panic in it or in a hook
// (a Hash method) is recovered.
func hashOf(v any, key string) uint64 {
	// A step of hashstructure's walk (a reflect visit and a hash of its
	// own) costs about as much as 16 bytes of memo's encoding, which
	// MakeHashable pays for; small values always fit.
	budget := 512 + len(key)/16
	if rawWalkable(reflect.ValueOf(v), &budget, 0) {
		if h, ok := structureHash(v); ok {
			return h
		}
	}
	return maphash.String(hashSeed, key)
}

// structureHash is hashstructure's hash of v, or false if it fails or
// panics.
func structureHash(v any) (h uint64, ok bool) {
	defer func() {
		if recover() != nil {
			h, ok = 0, false
		}
	}()
	h, err := hashstructure.Hash(v, hashstructure.FormatV2, nil)
	return h, err == nil
}

var (
	structHashableType = reflect.TypeFor[hashstructure.Hashable]()
)

// rawWalkable reports whether hashstructure's walk of v ends after at most
// *budget steps, charging them: it follows pointers and interfaces and
// visits every element, map pair and exported field as hashstructure does
// (counting a string's bytes too), and stops at a type with a Hash method
// or at time.Time, which hashstructure does not enter. It follows fields
// hashstructure would skip by their tags, so it may refuse more, never
// less. It reports false for kinds hashstructure cannot hash.
func rawWalkable(v reflect.Value, budget *int, depth int) bool {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		*budget--
		if *budget < 0 {
			return false // a cycle through pointers, or a very long chain
		}
		v = v.Elem()
	}
	*budget--
	if *budget < 0 || depth > keys.MaxDepth {
		return false
	}
	if !v.IsValid() {
		return true // nil: hashed as a zero
	}
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64:
		return true
	case reflect.String:
		*budget -= v.Len() / 32
		return *budget >= 0
	case reflect.Array, reflect.Slice:
		n := v.Len()
		if *budget < n {
			return false
		}
		for i := range n {
			if !rawWalkable(v.Index(i), budget, depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if *budget < 2*v.Len() {
			return false
		}
		it := v.MapRange()
		for it.Next() {
			if !rawWalkable(it.Key(), budget, depth+1) || !rawWalkable(it.Value(), budget, depth+1) {
				return false
			}
		}
		return true
	case reflect.Struct:
		t := v.Type()
		if t == keys.TimeType || t.Implements(structHashableType) || reflect.PointerTo(t).Implements(structHashableType) {
			return true // hashstructure calls Hash (recovered) or MarshalBinary
		}
		for i := range t.NumField() {
			if t.Field(i).PkgPath != "" {
				continue // hashstructure skips unexported fields
			}
			if !rawWalkable(v.Field(i), budget, depth+1) {
				return false
			}
		}
		return true
	}
	return false // chan, func, unsafe pointer, uintptr, complex128
}
