package memo

import (
	"reflect"
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// The registry maps each decorated function to its wrapped, for CacheOf,
// Invalidate and ClearAll. It is keyed by the address of the function's
// closure, which every copy of the function value shares, and holds both
// the closure and the wrapped weakly: the closure holds its wrapped, so
// the wrapped lives exactly as long as some copy of the function, and a
// decorated function that can reach itself (a method value stored in its
// own receiver, a recursive helper) is collected once nothing else refers
// to it. A cleanup on the closure removes its entry. Plain maps in shards
// cost a decorated function about 40 bytes here, a sync.Map over 100.
var registry funcRegistry

type funcRegistry struct {
	shards [16]struct {
		mu sync.RWMutex
		m  map[uintptr]registered
		_  [64 - 32]byte
	}
}

type registered struct {
	wp weak.Pointer[byte]
	w  weak.Pointer[wrapped]
}

func (r *funcRegistry) shard(addr uintptr) (*sync.RWMutex, *map[uintptr]registered) {
	sh := &r.shards[(addr>>4^addr>>12)%uintptr(len(r.shards))]
	return &sh.mu, &sh.m
}

func (r *funcRegistry) store(addr uintptr, reg registered) {
	mu, m := r.shard(addr)
	mu.Lock()
	if *m == nil {
		*m = make(map[uintptr]registered)
	}
	(*m)[addr] = reg
	mu.Unlock()
}

func (r *funcRegistry) load(addr uintptr) (registered, bool) {
	mu, m := r.shard(addr)
	mu.RLock()
	reg, ok := (*m)[addr]
	mu.RUnlock()
	return reg, ok
}

// forget removes the entry for addr if it is still the one for closure wp.
func (r *funcRegistry) forget(addr uintptr, wp weak.Pointer[byte]) {
	mu, m := r.shard(addr)
	mu.Lock()
	if reg, ok := (*m)[addr]; ok && reg.wp == wp {
		delete(*m, addr)
	}
	mu.Unlock()
}

// Range calls f with each entry's address and registered, as sync.Map's
// Range, until f returns false. f must not use the registry.
func (r *funcRegistry) Range(f func(addr, reg any) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		entries := make([]registered, 0, len(sh.m))
		addrs := make([]uintptr, 0, len(sh.m))
		for a, reg := range sh.m {
			addrs = append(addrs, a)
			entries = append(entries, reg)
		}
		sh.mu.RUnlock()
		for j := range entries {
			if !f(addrs[j], entries[j]) {
				return
			}
		}
	}
}

// closureOf returns the closure pointer of a func value: the data word of
// the interface holding it.
func closureOf(fn any) unsafe.Pointer {
	return (*[2]unsafe.Pointer)(unsafe.Pointer(&fn))[1]
}

// register records out, a function whose closure holds w, in the registry.
func register(out reflect.Value, w *wrapped) {
	p := closureOf(out.Interface())
	wp := weak.Make((*byte)(p))
	registry.store(uintptr(p), registered{wp, weak.Make(w)})
	runtime.AddCleanup((*byte)(p), unregister, unregisterArg{uintptr(p), wp})
}

type unregisterArg struct {
	addr uintptr
	wp   weak.Pointer[byte]
}

func unregister(a unregisterArg) { registry.forget(a.addr, a.wp) }

func lookupWrapped(fn any) *wrapped {
	t := reflect.TypeOf(fn)
	if t == nil || t.Kind() != reflect.Func {
		return nil
	}
	p := closureOf(fn)
	if p == nil {
		return nil
	}
	r, ok := registry.load(uintptr(p))
	if !ok || unsafe.Pointer(r.wp.Value()) != p {
		return nil
	}
	// fn holds the closure, which holds the wrapped: it is alive.
	return r.w.Value()
}

// CacheOf returns the cache behind fn, a function returned by [Decorate],
// a typed constructor such as [Func], [Batch] or [Single] (or any copy of
// it: a variable, an
// interface, a struct field), and nil for anything else: the methods of a
// nil *Cache panic, so check for nil when fn may not be memoized. CacheOf is
// safe for concurrent use.
func CacheOf(fn any) *Cache {
	if w := lookupWrapped(fn); w != nil {
		return w.c
	}
	return nil
}

// ClearAll clears the cache of every live decorated function in the process
// (see [Cache.Clear]): the whole cache, so that a cache shared through
// [WithCache] also loses the entries Set put there, while a cache made by
// [New] that no decorated function uses is left as it is. It is meant for
// tests that run one after another:
// tests that run in parallel clear each other's caches with it, so give
// each such test a cache of its own ([WithCache], or a Decorate of its own)
// or clear one function's cache with CacheOf(f).Clear() (see the example).
// ClearAll is safe for concurrent use.
func ClearAll() {
	registry.Range(func(_, r any) bool {
		if w := r.(registered).w.Value(); w != nil {
			w.c.Clear()
		}
		return true
	})
}
