package keys

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// Identity of Go objects.
//
// A key never holds a pointer: it holds an identity id, a number given to
// one object the first time a key meets it and never given to another. A
// pointer therefore does not keep its object alive through a key, and an
// object allocated later at the same address gets a new id, so it cannot hit
// an entry made for the old one. The registry maps an address to a weak
// pointer and its id; the weak pointer tells a live object from a new one at
// the same address, and a cleanup forgets the address once the object is
// collected.

type idRecord struct {
	wp weak.Pointer[byte]
	id uint64
}

type idShard struct {
	mu sync.RWMutex
	m  map[uintptr]*idRecord
	_  [64 - 8]byte // keep shards on separate cache lines
}

const idShardCount = 64

var (
	idShards [idShardCount]idShard
	idNext   atomic.Uint64
)

func idShardOf(addr uintptr) *idShard {
	return &idShards[(addr>>4^addr>>13)%idShardCount]
}

// identityOf returns the identity id of the Go object that p points into,
// and false when p is not Go memory (C memory, or an address made with
// unsafe), which has no identity beyond its address.
func identityOf(p unsafe.Pointer) (uint64, bool) {
	addr := uintptr(p)
	sh := idShardOf(addr)
	sh.mu.RLock()
	rec := sh.m[addr]
	sh.mu.RUnlock()
	if rec != nil && unsafe.Pointer(rec.wp.Value()) == p {
		return rec.id, true
	}
	return newIdentity(sh, p)
}

func newIdentity(sh *idShard, p unsafe.Pointer) (uint64, bool) {
	addr := uintptr(p)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if rec := sh.m[addr]; rec != nil && unsafe.Pointer(rec.wp.Value()) == p {
		return rec.id, true
	}
	id := idNext.Add(1)
	// weak.Make on memory that is not Go's is a fatal error, but
	// runtime.AddCleanup panics on it: register the cleanup first, and
	// only then make the weak pointer.
	if !addCleanup((*byte)(p), forgetIdentity, idCleanup{addr, id}) {
		return 0, false
	}
	if sh.m == nil {
		sh.m = make(map[uintptr]*idRecord)
	}
	sh.m[addr] = &idRecord{weak.Make((*byte)(p)), id}
	return id, true
}

type idCleanup struct {
	addr uintptr
	id   uint64
}

func forgetIdentity(c idCleanup) {
	sh := idShardOf(c.addr)
	sh.mu.Lock()
	if rec := sh.m[c.addr]; rec != nil && rec.id == c.id {
		delete(sh.m, c.addr)
	}
	sh.mu.Unlock()
}

// addCleanup is runtime.AddCleanup that reports false instead of panicking
// when p is not Go memory.
func addCleanup[S any](p *byte, f func(S), arg S) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	runtime.AddCleanup(p, f, arg)
	return true
}

// Identities returns how many objects the registry tracks (for tests).
func Identities() int {
	n := 0
	for i := range idShards {
		sh := &idShards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
