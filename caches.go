package memo

import (
	"cmp"
	"iter"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"weak"
)

// The registry of live caches, for [Caches]. It holds caches weakly: an
// entry is a weak pointer, and a cleanup attached to the cache removes the
// entry once the cache has been collected, so that listing a cache never
// keeps it (or its entries) alive.
var caches struct {
	mu     sync.Mutex
	byName map[string]*listing // the name a cache is listed under → it
	bases  map[string]*base    // a requested name → its live listings
}

// listing is one cache in the registry.
type listing struct {
	name string // unique among live caches
	base string // the name asked for
	num  int    // the n of "base#n", or 0 for base itself
	wp   weak.Pointer[Cache]
}

// base counts the live caches that asked for one name, and numbers their
// duplicates ("name#2", "name#3", ...): a number freed by a collected
// cache is given again, smallest first, so that caches made per instance
// (method values) reuse a bounded set of names however many come and go,
// rather than give metrics a new series for every instance ever made.
type base struct {
	live, next int
	free       []int // numbers freed while others were live, ascending
}

// listCache adds c to the registry under name, or under "name#n" when a
// live cache is already listed as name, and returns the name it got.
func listCache(c *Cache, name string) string {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	if caches.byName == nil {
		caches.byName = make(map[string]*listing)
		caches.bases = make(map[string]*base)
	}
	b := caches.bases[name]
	if b == nil {
		b = &base{next: 1}
		caches.bases[name] = b
	}
	b.live++
	unique, num := name, 0
	for {
		if _, taken := caches.byName[unique]; !taken {
			break
		}
		if len(b.free) > 0 {
			num, b.free = b.free[0], b.free[1:]
		} else {
			b.next++
			num = b.next
		}
		unique = name + "#" + strconv.Itoa(num)
	}
	l := &listing{name: unique, base: name, num: num, wp: weak.Make(c)}
	caches.byName[unique] = l
	runtime.AddCleanup(c, unlistCache, l)
	return unique
}

// unlistCache removes l once its cache has been collected.
func unlistCache(l *listing) {
	caches.mu.Lock()
	defer caches.mu.Unlock()
	if caches.byName[l.name] == l {
		delete(caches.byName, l.name)
	}
	if b := caches.bases[l.base]; b != nil {
		if b.live--; b.live == 0 {
			delete(caches.bases, l.base)
		} else if l.num > 0 {
			i, _ := slices.BinarySearch(b.free, l.num)
			b.free = slices.Insert(b.free, i, l.num)
		}
	}
}

// Caches returns every live cache in the process with the name it is
// listed under, in the order of the names: each cache made by [New] and
// each cache that [Decorate] (or [Func] and its kin) made for a function.
// A cache shared through [WithCache] is listed once, under its own name.
//
// Names: a cache's [WithName]; else, for a decorated function, its
// function's symbol with the package path trimmed to the package name
// ("pkg.Func", "pkg.(*T).Method", "pkg.main.func1" for a closure); else,
// for a cache made by New, the symbol of the function that called New.
// Names are unique among live caches: the second live cache asking for a
// name taken is listed as "name#2", the third "name#3", and so on; the
// number of a collected cache is given to the next one that needs a
// number, so that caches made per instance use as many names as are live
// at once, not one per instance ever made.
//
// The registry holds caches weakly: a cache that has become unreachable
// (its decorated function too) is no longer listed once the garbage
// collector has found it so, and it costs the registry nothing after
// that. A cache yielded by the iterator stays alive while the caller
// holds it. Caches is safe for concurrent use; caches made or collected
// during an iteration may or may not be seen.
func Caches() iter.Seq2[string, *Cache] {
	return func(yield func(string, *Cache) bool) {
		caches.mu.Lock()
		ls := make([]*listing, 0, len(caches.byName))
		for _, l := range caches.byName {
			ls = append(ls, l)
		}
		caches.mu.Unlock()
		slices.SortFunc(ls, func(a, b *listing) int { return cmp.Compare(a.name, b.name) })
		for _, l := range ls {
			if c := l.wp.Value(); c != nil && !yield(l.name, c) {
				return
			}
		}
	}
}

// symbolOf returns the symbol of the function fn, shortened as [Caches]
// documents.
func symbolOf(fn reflect.Value) string {
	f := runtime.FuncForPC(fn.Pointer())
	if f == nil {
		return "func"
	}
	return shortSymbol(f.Name())
}

// callerSymbol returns the shortened symbol of the function skip frames
// above its caller (skip 0: its caller).
func callerSymbol(skip int) string {
	pc, _, _, ok := runtime.Caller(skip + 1)
	if !ok {
		return "memo.Cache"
	}
	return shortSymbol(runtime.FuncForPC(pc).Name())
}

// shortSymbol trims a symbol's package path to its last element and the
// "-fm" that marks a method value:
// "github.com/a/b.(*T).Get-fm" → "b.(*T).Get".
func shortSymbol(s string) string {
	s = strings.TrimSuffix(s, "-fm")
	// A slash can only be in the package path, which ends before the
	// first "." that follows the last slash; generic instantiations print
	// as "[...]", so no slash comes from type arguments.
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
