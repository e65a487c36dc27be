package memo

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests below guard the misses of a Func of an int or a short string
// with no shared tier, which join with a key made on the caller's stack
// (missKey): whatever outlives the call (an execution its leader left, a
// refresh, a stored entry) must hold a key of its own, never the caller's
// stack bytes, which the caller's next call overwrites and a stack growth
// moves.

// grow calls itself depth times with a frame of a kilobyte, so that the
// goroutine's stack grows (and is copied elsewhere) while it runs.
//
//go:noinline
func grow(depth int) int {
	var pad [1024]byte
	pad[depth%len(pad)] = byte(depth)
	if depth == 0 {
		return int(pad[0])
	}
	return grow(depth-1) + int(pad[depth%len(pad)]) - int(byte(depth))
}

// TestStackKeyLeaderLeavesExecutionStoresItsKey: a FuncCtx leader whose
// context can end leaves the execution it started (a second caller still
// waits on it) and, on the same goroutine, at the same stack depth, makes
// a miss of another string of the same length, whose key bytes overwrite
// the first key's on its stack. The first execution, released after,
// stores its result under its own key: each key then hits with its own
// value, and the waiter gets the first key's.
func TestStackKeyLeaderLeavesExecutionStoresItsKey(t *testing.T) {
	for _, n := range []int{5, 16, 40, 127} { // in a Call's own allocation or not
		t.Run(fmt.Sprint(n), func(t *testing.T) { leaderLeaves(t, n) })
	}
}

func leaderLeaves(t *testing.T, n int) {
	synctest.Test(t, func(t *testing.T) {
		pad := strings.Repeat(".", n-5)
		alpha, bravo := "alpha"+pad, "bravo"+pad
		release := make(chan struct{})
		var runs atomic.Int64
		f := FuncCtx(func(ctx context.Context, s string) (string, error) {
			runs.Add(1)
			if s == alpha {
				<-release
			}
			return "v:" + s, nil
		})
		ctx1, cancel1 := context.WithCancel(context.Background())
		left := make(chan struct{})
		got := make(chan string, 1)
		go func() {
			_, err := f(ctx1, alpha)
			assert.ErrorIs(t, err, context.Canceled)
			close(left)
			v, err := f(context.Background(), bravo)
			assert.NoError(t, err)
			got <- v
		}()
		synctest.Wait() // the execution for alpha runs and blocks
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		waiter := make(chan string, 1)
		go func() {
			v, err := f(ctx2, alpha)
			assert.NoError(t, err)
			waiter <- v
		}()
		synctest.Wait() // the second caller waits on alpha's execution
		cancel1()
		<-left
		assert.Equal(t, "v:"+bravo, <-got)
		close(release)
		assert.Equal(t, "v:"+alpha, <-waiter)
		synctest.Wait()
		require.Equal(t, int64(2), runs.Load())
		for _, s := range []string{alpha, bravo} {
			v, err := f(context.Background(), s)
			require.NoError(t, err)
			assert.Equal(t, "v:"+s, v)
		}
		assert.Equal(t, int64(2), runs.Load(), "both keys hit")
	})
}

// TestStackKeyRefreshStoresItsKey: a refresh (WithRefreshAfter) started
// by a due hit of a Func of a string, and one of an int, outlives the
// call that started it; that caller's next miss, of another key of the
// same length, made at the same stack depth, overwrites the key bytes on
// its stack before the refresh ends. The refresh's result is stored under
// its own key, and the other key keeps its own result.
func TestStackKeyRefreshStoresItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var gen atomic.Int64
		block := make(chan struct{})
		fs := Func(func(s string) string {
			g := gen.Add(1)
			if g == 3 { // the refresh of alpha
				<-block
			}
			return fmt.Sprintf("%s#%d", s, g)
		}, WithRefreshAfter(time.Minute), WithTTL(time.Hour))
		require.Equal(t, "alpha#1", fs("alpha"))
		require.Equal(t, "bravo#2", fs("bravo"))
		time.Sleep(2 * time.Minute)
		require.Equal(t, "alpha#1", fs("alpha"), "the due hit serves the entry")
		synctest.Wait() // the refresh runs and blocks
		require.Equal(t, "delta#4", fs("delta"))
		close(block)
		synctest.Wait()
		assert.Equal(t, "alpha#3", fs("alpha"), "the refresh stored under its key")
		assert.Equal(t, "delta#4", fs("delta"))

		var ign atomic.Int64
		blockI := make(chan struct{})
		fi := Func(func(k int) int64 {
			g := ign.Add(1)
			if g == 3 {
				<-blockI
			}
			return int64(k)*1000 + g
		}, WithRefreshAfter(time.Minute), WithTTL(time.Hour))
		require.Equal(t, int64(7001), fi(7))
		require.Equal(t, int64(8002), fi(8))
		time.Sleep(2 * time.Minute)
		require.Equal(t, int64(7001), fi(7))
		synctest.Wait()
		require.Equal(t, int64(9004), fi(9))
		close(blockI)
		synctest.Wait()
		assert.Equal(t, int64(7003), fi(7))
		assert.Equal(t, int64(9004), fi(9))
	})
}

// TestStackKeyRecursionGrowsStack: a memoized function that calls itself
// for a shorter key, so that each level leads its own execution with its
// key on a stack that grows (and moves) under the executions in flight
// beneath it, for every string length 0 to 127 and for ints 2,000 deep.
// Every level gets its own result, and every key then hits with it.
func TestStackKeyRecursionGrowsStack(t *testing.T) {
	var fs func(string) int
	var runs atomic.Int64
	fs = Func(func(s string) int {
		runs.Add(1)
		if s == "" {
			return grow(64)
		}
		return fs(s[1:]) + 1
	}, WithMaxSize(4096))
	s := strings.Repeat("abcdefghij", 13)[:127]
	require.Equal(t, 127, fs(s))
	for i := range len(s) + 1 {
		assert.Equal(t, len(s)-i, fs(s[i:]), "key of %d bytes", len(s)-i)
	}
	assert.Equal(t, int64(128), runs.Load(), "each key ran once")

	var fi func(int) int
	fi = Func(func(n int) int {
		if n == 0 {
			return grow(8)
		}
		return fi(n-1) + 1
	}, WithMaxSize(4096))
	require.Equal(t, 2000, fi(2000))
	for n := range 2001 {
		require.Equal(t, n, fi(n))
	}
}

// TestStackKeyConcurrentChurn: goroutines call a Func of a string (every
// length from 0 to 127, strings that are each other's prefixes, so keys
// differ in their length byte alone), a Func of an int, and a FuncCtx of
// a string with contexts that end at once or partway, in a cache too small
// for the keys (evictions and tombstones all along), while another
// goroutine invalidates keys and clears the cache. Some executions grow
// their goroutine's stack. Every result any caller gets is its own key's.
func TestStackKeyConcurrentChurn(t *testing.T) {
	base := strings.Repeat("x", 127)
	want := func(s string) string { return fmt.Sprintf("%d:%s", len(s), s) }
	fs := Func(func(s string) string {
		if len(s)%5 == 0 {
			grow(16)
		}
		return want(s)
	}, WithMaxSize(32))
	fi := Func(func(k int) int {
		if k%7 == 0 {
			grow(16)
		}
		return -k
	}, WithMaxSize(32))
	release := make(chan struct{})
	fc := FuncCtx(func(ctx context.Context, s string) (string, error) {
		if len(s)%3 == 0 {
			select {
			case <-release:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return want(s), nil
	}, WithMaxSize(32))
	const goroutines, rounds = 4, 600
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			Invalidate(fs, base[:i%128])
			Invalidate(fi, i%300)
			if i%16 == 0 {
				CacheOf(fc).Clear()
			}
		}
	})
	var callers sync.WaitGroup
	for g := range goroutines {
		callers.Go(func() {
			for i := range rounds {
				n := (i*31 + g*17) % 128
				s := base[:n]
				if got := fs(s); got != want(s) {
					t.Errorf("fs(%d bytes) = %q", n, got)
				}
				k := (i*13 + g) % 300
				if got := fi(k); got != -k {
					t.Errorf("fi(%d) = %d", k, got)
				}
				ctx, cancel := context.WithCancel(context.Background())
				if i%4 == 0 {
					cancel()
				}
				got, err := fc(ctx, s)
				if err == nil && got != want(s) {
					t.Errorf("fc(%d bytes) = %q", n, got)
				}
				cancel()
			}
		})
	}
	// Release the blocked executions as the callers go, so that some
	// finish with waiters and some after every caller left.
	wg.Go(func() {
		for {
			select {
			case release <- struct{}{}:
			case <-stop:
				return
			}
		}
	})
	callers.Wait()
	close(stop)
	wg.Wait()
	for n := range 128 {
		assert.Equal(t, want(base[:n]), fs(base[:n]))
	}
}
