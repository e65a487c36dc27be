package memo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"

	"github.com/memokit/memo"
	"github.com/memokit/memo/policies"
)

// A typed function's result lies in the entry that stores it (one
// allocation per miss; see the README's steady state). Every kind of result
// must read back as returned, on the miss, on later hits after collections,
// after the entry was evicted while a caller still held the value, and
// through every path that stores: Func, FuncErr (result and error
// together), FuncCtx with a context that can end (the execution on its own
// goroutine), Decorate's reflective path, a TTL (the value moves to the
// entry's extra) and a refresh.
func TestResultsHeldInEntries(t *testing.T) {
	type rec struct {
		p *int
		s string
		a [3]int
	}
	x := 5
	t.Run("int", func(t *testing.T) { heldResults(t, func(k int) int { return k * 1000003 }) })
	t.Run("string", func(t *testing.T) { heldResults(t, func(k int) string { return fmt.Sprint("v", k) }) })
	t.Run("struct", func(t *testing.T) {
		heldResults(t, func(k int) rec { return rec{&x, fmt.Sprint(k), [3]int{k, k, k}} })
	})
	t.Run("pointer", func(t *testing.T) { heldResults(t, func(int) *int { return &x }) })
	t.Run("slice", func(t *testing.T) { heldResults(t, func(k int) []int { return []int{k, -k} }) })
	t.Run("any", func(t *testing.T) { heldResults(t, func(k int) any { return k }) })
	t.Run("byte", func(t *testing.T) { heldResults(t, func(k int) byte { return byte(k) }) })
	t.Run("array", func(t *testing.T) { heldResults(t, func(k int) [40]int { return [40]int{39: k} }) })
	// Pointer-shaped results, which an interface holds as themselves (see
	// engine.HeldFor): stored as they are.
	maps := make([]map[int]int, 64)
	chans := make([]chan int, 64)
	for k := range 64 {
		maps[k], chans[k] = map[int]int{k: k}, make(chan int, k+1)
	}
	t.Run("map", func(t *testing.T) { heldResults(t, func(k int) map[int]int { return maps[k] }) })
	t.Run("chan", func(t *testing.T) { heldResults(t, func(k int) chan int { return chans[k] }) })
	t.Run("one-pointer array", func(t *testing.T) { heldResults(t, func(k int) [1]*int { return [1]*int{&x} }) })
	t.Run("one-pointer struct", func(t *testing.T) {
		heldResults(t, func(k int) struct{ m map[int]int } { return struct{ m map[int]int }{maps[k]} })
	})
}

func heldResults[R any](t *testing.T, r func(int) R) {
	synctest.Test(t, func(t *testing.T) { heldResultsBubbled(t, r) })
}

func heldResultsBubbled[R any](t *testing.T, r func(int) R) {
	check := func(name string, f func(int) R, want func(int) any) {
		t.Helper()
		held := make([]R, 0, 64)
		for round := range 3 {
			for k := range 64 {
				got := f(k)
				assert.Equal(t, want(k), any(got), "%s, key %d, round %d", name, k, round)
				if round == 0 {
					held = append(held, got)
				}
			}
			runtime.GC()
			time.Sleep(2 * time.Millisecond) // the fake clock: refreshes are due
			synctest.Wait()                  // and have run
		}
		for k, v := range held { // the callers' copies outlive evictions
			assert.Equal(t, want(k), any(v), "%s, key %d, held", name, k)
		}
	}
	plain := func(k int) any { return r(k) }
	for i, opts := range [][]memo.Option{
		{memo.WithMaxSize(16)},
		{memo.WithMaxSize(16), memo.WithTTL(time.Hour)},
		{memo.WithMaxSize(1000), memo.WithRefreshAfter(time.Millisecond)},
	} {
		name := fmt.Sprint("options ", i, ": ")
		check(name+"Func", memo.Func(r, opts...), plain)
		fe := memo.FuncErr(func(k int) (R, error) {
			if k%7 == 0 {
				var zero R
				return zero, errors.New("seven")
			}
			return r(k), nil
		}, opts...)
		check(name+"FuncErr", func(k int) R {
			v, err := fe(k)
			if err != nil {
				assert.Equal(t, 0, k%7)
				return r(k)
			}
			return v
		}, plain)
		ctx, cancel := context.WithCancel(context.Background())
		fc := memo.FuncCtx(func(_ context.Context, k int) (R, error) { return r(k), nil }, opts...)
		check(name+"FuncCtx", func(k int) R { v, _ := fc(ctx, k); return v }, plain)
		cancel()
		fd := memo.Decorate(func(k int, _ struct{}) R { return r(k) }, opts...)
		check(name+"Decorate", func(k int) R { return fd(k, struct{}{}) }, plain)
		memo.ClearAll()
	}
}

// heldBig is a result held in its entry that refers to a large object, so
// that a test can tell, through a weak pointer, whether the entry is gone.
type heldBig struct {
	p *[1 << 12]byte
	k int
}

// heldBigAlive runs f on keys 0 to n-1 with a context that can end (the
// execution on its own goroutine, under a context that carries it, and its
// result, for as long as the function keeps it: here key keep's), then
// does drop, and returns how many results are still alive after a
// collection.
func heldBigAlive(t *testing.T, n, keep int, opts []memo.Option, drop func(f any)) int {
	t.Helper()
	var (
		kept  context.Context
		weaks []weak.Pointer[[1 << 12]byte]
	)
	f := memo.FuncCtx(func(ctx context.Context, k int) (heldBig, error) {
		r := heldBig{p: new([1 << 12]byte), k: k}
		weaks = append(weaks, weak.Make(r.p))
		if k == keep {
			kept = ctx
		}
		return r, nil
	}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for k := range n {
		r, err := f(ctx, k)
		assert.NoError(t, err)
		assert.Equal(t, k, r.k)
	}
	drop(f)
	runtime.GC()
	alive := 0
	for _, w := range weaks {
		if w.Value() != nil {
			alive++
		}
	}
	runtime.KeepAlive(kept)
	return alive
}

// Entries evicted, each policy's way, are freed though the first of them
// keeps a result alive: a removed entry keeps no link to the others (the
// policy's, the expiry list's).
func TestEvictedEntriesFreedThoughOneResultHeld(t *testing.T) {
	for _, k := range []policies.Kind{policies.LRU, policies.LFU, policies.WTinyLFU} {
		for _, ttl := range []time.Duration{0, time.Hour} {
			opts := []memo.Option{memo.WithMaxSize(10), memo.WithPolicy(k)}
			if ttl > 0 {
				opts = append(opts, memo.WithTTL(ttl))
			}
			alive := heldBigAlive(t, 200, 0, opts, func(any) {})
			assert.LessOrEqual(t, alive, 11, "%v, TTL %v: results alive, ten entries and one kept", k, ttl)
		}
	}
}

// A result held in its entry keeps that entry alive while anything holds
// the result (here the context of the execution that returned it, kept by
// the function: it carries the execution, and so its result), but no other
// entry: Clear must cut the links between the entries it drops, the expiry
// list's too. It left them, so that the one result kept every entry of its
// TTL, and all their results, alive after Clear.
func TestClearedEntriesFreedThoughOneResultHeld(t *testing.T) {
	for i, opts := range [][]memo.Option{
		{memo.WithTTL(time.Hour)},
		{},
		{memo.WithRefreshAfter(time.Hour)},
	} {
		alive := heldBigAlive(t, 100, 50, opts, func(f any) { memo.CacheOf(f).Clear() })
		assert.LessOrEqual(t, alive, 1, "options %d: results alive after Clear, one kept", i)
	}
}
