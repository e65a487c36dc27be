package redistier

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/memokit/memo"
)

// The tests in this file come from a review (a fresh helper asked to make
// the tier serve a wrong value across replicas); each failed before its
// fix.

// TestSubMillisecondTTLStaysLocal: a result given a TTL under a
// millisecond is not written to Redis, where PX would stretch it to 1 ms
// and another replica would read it after its TTL has passed.
func TestSubMillisecondTTLStaysLocal(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	const ttl = 200 * time.Microsecond
	fn := func(k int) int64 { return time.Now().UnixNano() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a), memo.WithTTLFunc(func([]any) time.Duration { return ttl }))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b), memo.WithTTLFunc(func([]any) time.Duration { return ttl }))
	worst := time.Duration(0)
	stale := 0
	for k := range 200 {
		made := fa(k)
		for time.Since(time.Unix(0, made)) < 2*ttl {
		}
		start := time.Now()
		got := fb(k)
		if got == made {
			stale++
			worst = max(worst, start.Sub(time.Unix(0, made)))
		}
	}
	if stale > 0 {
		t.Fatalf("replica b served %d of 200 values read from Redis after their TTL of %v had passed (at worst %v after the value was made); b's hits: %d", stale, ttl, worst, b.Stats().Hits)
	}
}

// TestValueAtAnotherKeyIsAMiss: a value that lands at another key of the
// same function (a digest collision, a copy, a value planted there) is
// refused by its key tag, as a miss, rather than served as that key's
// result (the envelope used to name the codec and schema but not the key).
func TestValueAtAnotherKeyIsAMiss(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	fn := func(k string) string { return "result of " + k }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	require.Equal(t, "result of alice", fa("alice"))
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	fa("bob")
	all := valueKeys(t, srv)
	require.Len(t, all, 2)
	bobKey := all[0]
	if bobKey == keys[0] {
		bobKey = all[1]
	}
	// alice's value, as stored by memo, at bob's key (what a digest
	// collision or a planted copy gives).
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	raw, err := rdb.Get(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, bobKey, raw, time.Hour).Err())
	got := fb("bob")
	assert.Equal(t, "result of bob", got, "replica b took another key's value as bob's (hits %d, decode errors %d)", b.Stats().Hits, b.Stats().DecodeErrors)
}

// TestCloseFlushesLocalEntries: once a replica's tier is closed, its
// subscription is gone and no other replica's invalidation can reach its
// L1 entries, so Close flushes them (they used to be served for up to
// WithMaxLocalAge: for ever with 0).
func TestCloseFlushesLocalEntries(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var version atomic.Int64
	fn := func(k int) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	require.Equal(t, int64(0), fa(1))
	require.Equal(t, int64(0), fb(1))
	require.NoError(t, b.Close())
	version.Store(1)
	ok, err := memo.InvalidateContext(context.Background(), fa, 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(1), fa(1))
	assert.Equal(t, int64(1), fb(1), "replica b, closed, still serves the value replica a invalidated")
}

// TestClearFlushesReplicaWithoutGeneration: a replica whose generation
// read failed (here the generation key holds a value of the wrong type:
// bad data in Redis; a timeout does the same) runs its calls locally and
// keeps their results in L1. Another replica's Clear then repairs the key
// and publishes the new generation: the first replica must flush on it,
// though it knows no generation (it used to ignore the message).
func TestClearFlushesReplicaWithoutGeneration(t *testing.T) {
	flushAll(t)
	cleared := make(chan struct{}, 16)
	a := newTier(t, srv)
	b := newTier(t, srv, withHandled(func(kind byte) {
		if kind == msgClear {
			cleared <- struct{}{}
		}
	}))
	var version atomic.Int64
	fn := func(k int) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	require.Equal(t, int64(0), fa(1)) // creates the generation key
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	gens, err := rdb.Keys(ctx, "*:gen").Result()
	require.NoError(t, err)
	require.Len(t, gens, 1)
	for len(cleared) > 0 {
		<-cleared
	}
	// Bad data at the generation key: a list.
	require.NoError(t, rdb.Del(ctx, gens[0]).Err())
	require.NoError(t, rdb.RPush(ctx, gens[0], "x").Err())

	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	require.Equal(t, int64(0), fb(1), "b runs locally (its generation read fails) and keeps the result")
	require.Equal(t, uint64(1), b.Stats().LocalRuns)

	version.Store(1) // the data changed: Clear drops every result
	memo.CacheOf(fa).Clear()
	select {
	case <-cleared:
	case <-time.After(hangAfter):
		t.Fatal("b never got the Clear")
	}
	require.Equal(t, int64(1), fa(1))
	assert.Equal(t, int64(1), fb(1), "b serves the result from before a's Clear, after receiving the Clear")
}

// TestGobRefusesTrailingBytes: a Gob value with bytes after the
// results is corrupt, and a miss, as it is under Binary, JSON and Msgpack
// (Gob's decoder used not to check that the payload was used up).
func TestGobRefusesTrailingBytes(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv, WithCodec(Gob)), newTier(t, srv, WithCodec(Gob))
	fn := func(k int) int64 { return int64(k) * 10 }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	fa(1)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	raw, err := rdb.Get(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, keys[0], raw+"corrupt trailing bytes", time.Hour).Err())
	fb(1)
	assert.Equal(t, uint64(0), b.Stats().Hits, "a corrupt payload was accepted")
	assert.Equal(t, uint64(1), b.Stats().DecodeErrors)
}

// TestLeaseWithoutExpiryRunsOut: a lease key with no expiry (none of
// memo's: each is set with PX; planted, or left by a tool) is given one
// lease period by the first caller that finds it, which then waits that
// long at most and takes the lease, rather than waiting WithMaxWait on
// every call and running locally, for as long as the key stays.
func TestLeaseWithoutExpiryRunsOut(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv, WithLease(50*time.Millisecond), WithMaxWait(10*time.Second))
	var runs atomic.Int64
	fn := func(k int) int64 { return runs.Add(1) }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	require.Equal(t, int64(1), fa(1))
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	lease := strings.TrimSuffix(keys[0], ":v") + ":l"
	ok, err := memo.InvalidateContext(context.Background(), fa, 1)
	require.NoError(t, err)
	require.True(t, ok)

	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, lease, "planted", 0).Err())
	before := a.Stats()
	require.Equal(t, int64(2), fa(1))
	after := a.Stats()
	assert.Equal(t, before.LocalRuns, after.LocalRuns, "the call waited the longest wait and ran locally")
	assert.Equal(t, before.Fills+1, after.Fills, "the call took the lease once the planted one ran out, and filled")
}
