package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestFlightsAgainstMap checks the in-flight table (flights) against a map
// under random inserts and removals, by execution and by key, with hashes
// drawn from a few values so that keys collide, chains wrap around the
// table's end and backward-shift deletion moves executions: every
// execution inserted and not removed is found, by its key, and nothing
// else is.
func TestFlightsAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ft flights
	ref := map[string]*Call{}
	hashOf := func(i int) uint64 {
		// Few distinct high halves (the table's home bits), some near
		// the top of a small table so that probes wrap.
		return uint64(i%5+(i%3)*6)<<32 | uint64(i)
	}
	for step := range 20000 {
		i := rng.IntN(64)
		key := fmt.Sprint("k", i)
		h := hashOf(i)
		switch cl := ref[key]; {
		case cl == nil:
			cl = &Call{Key: key, H: h}
			ft.insert(cl)
			ref[key] = cl
		case rng.IntN(2) == 0:
			if !ft.remove(cl) {
				t.Fatalf("step %d: remove(%q) found nothing", step, key)
			}
			delete(ref, key)
		default:
			ft.removeKey([]byte(key), h)
			delete(ref, key)
		}
		if rng.IntN(500) == 0 {
			ft.clear()
			clear(ref)
		}
		if ft.n != len(ref) {
			t.Fatalf("step %d: %d executions, want %d", step, ft.n, len(ref))
		}
		for j := range 64 {
			k := fmt.Sprint("k", j)
			if got, want := ft.find([]byte(k), hashOf(j)), ref[k]; got != want {
				t.Fatalf("step %d: find(%q) = %p, want %p", step, k, got, want)
			}
		}
		n := 0
		for cl := range ft.All() {
			if ref[cl.Key] != cl {
				t.Fatalf("step %d: All yields %q, not in the table", step, cl.Key)
			}
			n++
		}
		if n != len(ref) {
			t.Fatalf("step %d: All yields %d executions, want %d", step, n, len(ref))
		}
	}
	// A removed execution is not removed again, nor one of the same key
	// that replaced it.
	old := &Call{Key: "x", H: 7 << 32}
	ft.insert(old)
	ft.removeKey([]byte("x"), old.H)
	cur := &Call{Key: "x", H: 7 << 32}
	ft.insert(cur)
	if ft.remove(old) {
		t.Fatal("remove of a detached execution reported it removed")
	}
	if ft.find([]byte("x"), old.H) != cur {
		t.Fatal("the current execution is gone")
	}
}
