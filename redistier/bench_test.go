package redistier

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/require"
)

var l1HitRuns atomic.Int64

// BenchmarkL1Hit compares a local hit with and without a tier: the hit
// path must not change (a hit never reaches Redis).
func BenchmarkL1Hit(b *testing.B) {
	needRedis(b)
	fn := func(k int) int { return k * 2 }
	// The tier bounds the age of each L1 entry (WithMaxLocalAge, 30 s):
	// an entry whose result has no TTL is removed by the cache's expiry
	// timer, so a hit reads no clock and costs what it does without a
	// tier.
	// (tier=unbounded: WithMaxLocalAge(0), no age bound at all.) The
	// variants run in a rotating order, one more step each time the
	// benchmark runs (-count), so that none is always first or last on a
	// busy machine.
	variants := []struct {
		name string
		opts []memo.Option
	}{
		{"tier=off", nil},
		{"tier=on", []memo.Option{memo.WithTier(newTier(b, srv))}},
		{"tier=unbounded", []memo.Option{memo.WithTier(newTier(b, srv, WithMaxLocalAge(0)))}},
	}
	r := int(l1HitRuns.Add(1))
	for j := range variants {
		v := variants[(j+r)%len(variants)]
		f := memo.Func(fn, append(v.opts, memo.WithName(b.Name()+"/"+v.name))...)
		for i := range 64 {
			f(i)
		}
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f(i & 63)
				i++
			}
		})
	}
}

// BenchmarkL2Hit is a decorated call that misses L1 and hits L2 (two keys
// alternate in an L1 of one entry), against a bare go-redis GET of the
// same value key: the tier's overhead over the round trip.
func BenchmarkL2Hit(b *testing.B) {
	needRedis(b)
	require.NoError(b, srv.Do("FLUSHALL"))
	payload := func(k int) []byte { return []byte(strconv.Itoa(k) + "-0123456789abcdef0123456789abcdef") }
	filler := memo.Func(payload, memo.WithName("bench-l2"), memo.WithTier(newTier(b, srv)))
	filler(0)
	filler(1)
	keys := valueKeys(b, srv)
	require.Len(b, keys, 2)
	tier := newTier(b, srv)
	f := memo.Func(payload, memo.WithName("bench-l2"), memo.WithTier(tier), memo.WithMaxSize(1))

	b.Run("tier", func(b *testing.B) {
		f(1) // L1 holds key 1: the loop's first call, of key 0, misses it
		b.ReportAllocs()
		hits := tier.Stats().Hits
		i := 0
		for b.Loop() {
			f(i & 1)
			i++
		}
		require.Equal(b, uint64(i), tier.Stats().Hits-hits, "every call an L2 hit")
	})
	b.Run("bare-GET", func(b *testing.B) {
		rdb := srv.Client()
		defer rdb.Close()
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := rdb.Get(ctx, keys[i&1]).Bytes(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkWaiterWake measures how long after the lease holder's function
// returns a waiter in another replica has the value: the fill, its
// pub/sub message, and the waiter's read. It reports the p50 and p99.
func BenchmarkWaiterWake(b *testing.B) {
	needRedis(b)
	require.NoError(b, srv.Do("FLUSHALL"))
	holder, waiter := newTier(b, srv), newTier(b, srv)
	release := make(chan struct{})
	started := make(chan struct{})
	var returned atomic.Int64
	fn := func(k int) int {
		started <- struct{}{}
		<-release
		returned.Store(time.Now().UnixNano())
		return k
	}
	fh := memo.Func(fn, memo.WithName("bench-wake"), memo.WithTier(holder))
	fw := memo.Func(func(k int) int { return -1 }, memo.WithName("bench-wake"), memo.WithTier(waiter))
	var lat []time.Duration
	k := 0
	for b.Loop() {
		k++
		go fh(k)
		<-started
		waits := waiter.Stats().LeaseWaits
		got := make(chan int)
		go func() { got <- fw(k) }()
		for waiter.Stats().LeaseWaits == waits {
			time.Sleep(50 * time.Microsecond)
		}
		release <- struct{}{}
		if v := <-got; v != k {
			b.Fatalf("waiter got %d, want the holder's %d", v, k)
		}
		lat = append(lat, time.Since(time.Unix(0, returned.Load())))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
