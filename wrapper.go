package memo

import (
	"hash/maphash"
	"reflect"
	"runtime"
	"sync"
	"weak"

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
	s := getState()
	defer putState(s)
	encodeInterface(s, reflect.ValueOf(&v).Elem())
	return wrapEncoded(v, string(s.buf))
}

// Value returns the wrapped value (nil for the zero wrapper).
func (w HashableWrapper) Value() any {
	if w.b == nil {
		return nil
	}
	return w.b.v
}

// Hash returns a hash of the wrapped value, equal for equal wrappers. It
// comes from hashstructure (FormatV2) when the value is acyclic and
// hashstructure accepts it, and otherwise from the value's key encoding.
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

// hashOf hashes v with hashstructure only when v is known to be acyclic
// even through pointers (hashstructure follows them and overflows the stack
// on a cycle); otherwise it hashes the key encoding.
func hashOf(v any, key string) uint64 {
	if acyclic(v) {
		if h, err := hashstructure.Hash(v, hashstructure.FormatV2, nil); err == nil {
			return h
		}
	}
	return maphash.String(hashSeed, key)
}

// acyclic reports whether v contains no cycle, following pointers too,
// and is small enough for hashstructure to walk: not too deep, and not a
// value whose shared parts make it exponentially large as a tree (the
// encoder then gives up on it with a nonce, which sets opaque too).
func acyclic(v any) bool {
	s := getState()
	defer putState(s)
	s.deref = true
	encodeInterface(s, reflect.ValueOf(&v).Elem())
	return !s.cyclic && !s.opaque
}
