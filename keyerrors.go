package memo

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// KeyErrors maps keys of a batch to the error each failed with. A batch
// function memoized by [Batch] returns one, with its partial results, to
// fail some keys only; the memoized function returns one to report the
// keys that failed for its caller. A nil error in it means the key did not
// fail. It is a plain map: not safe for concurrent writes.
type KeyErrors[K comparable] map[K]error

// Error lists the failed keys, sorted by their text, the first three with
// their errors.
func (e KeyErrors[K]) Error() string {
	type kv struct{ k, err string }
	var all []kv
	for k, err := range e {
		if err != nil {
			msg, _, _ := strings.Cut(err.Error(), "\n") // a *PanicError's stack stays in the error
			all = append(all, kv{fmt.Sprint(k), msg})
		}
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
	var b strings.Builder
	if len(all) == 1 {
		b.WriteString("memo: 1 key failed")
	} else {
		fmt.Fprintf(&b, "memo: %d keys failed", len(all))
	}
	for i, e := range all {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(all)-3)
			break
		}
		fmt.Fprintf(&b, "; %s: %s", e.k, e.err)
	}
	return b.String()
}

// Unwrap returns the keys' distinct errors (those that compare equal once),
// so that errors.Is and errors.As find any key's error through e.
func (e KeyErrors[K]) Unwrap() []error {
	var out []error
	for _, err := range e {
		if err == nil {
			continue
		}
		if slices.ContainsFunc(out, func(o error) bool { return sameError(o, err) }) {
			continue
		}
		out = append(out, err)
	}
	slices.SortFunc(out, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
	return out
}

// sameError reports whether a and b are ==, and false where == would
// panic (a comparable type holding an uncomparable value).
func sameError(a, b error) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
