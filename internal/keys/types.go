package keys

import (
	"reflect"
	"time"
)

// Types the encoders treat apart: time.Time (by its instant and
// location), and types with a CacheKey method (by what it returns).

var (
	KeyerType = reflect.TypeFor[keyer]()
	TimeType  = reflect.TypeFor[time.Time]()
)

// ignoredField reports whether a struct field is left out of keys.
func ignoredField(f reflect.StructField) bool {
	if f.Tag.Get("memo") == "-" {
		return true
	}
	h := f.Tag.Get("hash")
	return h == "ignore" || h == "-"
}

// keyer is memo.CacheKeyer's method set: a type has it exactly when it
// implements that interface (this package knows nothing of memo's API).
type keyer interface{ CacheKey() any }
