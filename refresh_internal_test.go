package memo

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An execution that outlives its callers must not store, or hand its
// waiters, a result computed from arguments a caller changed after leaving,
// also where no copy can protect them: a key made by WithKey from a
// pointee, or by the CacheKey method of a pointer. (rcKeyed and rcRelease
// are shared with flight_internal_test.go and tier_internal_test.go.)

type rcReq struct{ ID int }

type rcKeyed struct{ ID int }

func (p *rcKeyed) CacheKey() any { return p.ID }

// A refresh outlives the hit that started it. The hit's caller reuses its
// request, which WithKey keyed by a pointee: the refresh must not store
// the result of the new ID under the old one.
func TestRefreshAfterCallerReusedKeyedPointee(t *testing.T) {
	// Each case returns the memoized call, and the argument it is called
	// with, whose ID its setter changes in place.
	type maker func(release <-chan struct{}) (call func() int, fresh func(id int) int, set func(id int))
	makers := map[string]maker{
		"WithKey": func(release <-chan struct{}) (func() int, func(int) int, func(int)) {
			var calls atomic.Int32
			f := Decorate(func(r *rcReq) int {
				if calls.Add(1) > 1 {
					<-release
				}
				return r.ID * 10
			}, WithKey(func(a []any) any { return a[0].(*rcReq).ID }), WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
			r := &rcReq{ID: 1}
			return func() int { return f(r) }, func(id int) int { return f(&rcReq{id}) }, func(id int) { r.ID = id }
		},
		"CacheKeyerFunc": func(release <-chan struct{}) (func() int, func(int) int, func(int)) {
			var calls atomic.Int32
			f := Func(func(k *rcKeyed) int {
				if calls.Add(1) > 1 {
					<-release
				}
				return k.ID * 10
			}, WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
			k := &rcKeyed{ID: 1}
			return func() int { return f(k) }, func(id int) int { return f(&rcKeyed{id}) }, func(id int) { k.ID = id }
		},
		"CacheKeyerFunc2Ctx": func(release <-chan struct{}) (func() int, func(int) int, func(int)) {
			var calls atomic.Int32
			f := Func2Ctx(func(_ context.Context, k *rcKeyed, n int) (int, error) {
				if calls.Add(1) > 1 {
					<-release
				}
				return k.ID*10 + n, nil
			}, WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
			k := &rcKeyed{ID: 1}
			call := func(k *rcKeyed) int { v, _ := f(context.Background(), k, 0); return v }
			return func() int { return call(k) }, func(id int) int { return call(&rcKeyed{id}) }, func(id int) { k.ID = id }
		},
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				call, fresh, set := mk(release)
				require.Equal(t, 10, call())
				time.Sleep(11 * time.Second)
				require.Equal(t, 10, call()) // a hit that starts the refresh
				set(2)                       // the argument is reused once the call returned
				close(release)
				synctest.Wait()
				assert.Equal(t, 10, fresh(1), "a result for ID 2 was stored under ID 1")
				assert.Equal(t, 20, fresh(2))
			})
		})
	}
}

type rcRelease struct{}

// A caller without a context that joined a refresh (its entry's TTL ended
// while the refresh ran) whose arguments were changed starts over too.
func TestJoinerOfMovedRefreshStartsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		f := Decorate(func(r *rcReq) int {
			if calls.Add(1) == 2 {
				<-release
			}
			return r.ID * 10
		}, WithKey(func(a []any) any { return a[0].(*rcReq).ID }), WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
		r := &rcReq{ID: 1}
		require.Equal(t, 10, f(r))
		time.Sleep(11 * time.Second)
		require.Equal(t, 10, f(r)) // starts the refresh
		r.ID = 2
		time.Sleep(time.Minute) // the entry's TTL ends: callers join the refresh
		got := make(chan int)
		go func() { got <- f(&rcReq{ID: 1}) }()
		synctest.Wait()
		close(release)
		assert.Equal(t, 10, <-got, "the joiner got the result for ID 2")
		assert.Equal(t, int32(3), calls.Load(), "the joiner ran the function for its own arguments")
		assert.Equal(t, 10, f(&rcReq{ID: 1}))
	})
}
