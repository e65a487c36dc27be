package redistier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type item struct {
	ID      int64
	Tags    []string
	Empty   []int
	Price   float64
	When    time.Time
	Nested  map[string]map[string]int
	Pointer *int
}

func TestL2HitAcrossReplicas(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var execs atomic.Int64
	zero := 0
	fn := func(id int64) (item, error) {
		execs.Add(1)
		return item{ID: id, Tags: []string{"x"}, Empty: []int{}, Price: 1.5,
			When: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Nested: map[string]map[string]int{"a": {"b": 1}},
			Pointer: &zero}, nil
	}
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))

	want, err := fa(1<<62 + 1)
	require.NoError(t, err)
	got, err := fb(1<<62 + 1)
	require.NoError(t, err)
	assert.Equal(t, int64(1), execs.Load(), "the second replica reads L2 instead of executing")
	assert.Equal(t, uint64(1), b.Stats().Hits)
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, []int{}, got.Empty, "empty stays empty")
	assert.Equal(t, 1.5, got.Price)
	assert.Equal(t, time.UTC, got.When.Location(), "UTC stays UTC")
	assert.True(t, want.When.Equal(got.When))
	assert.Equal(t, want.Nested, got.Nested)
	require.NotNil(t, got.Pointer)
	assert.Equal(t, 0, *got.Pointer)

	// An L1 hit does not reach Redis.
	before := b.Stats()
	_, _ = fb(1<<62 + 1)
	assert.Equal(t, before.Hits+before.Misses, b.Stats().Hits+b.Stats().Misses)
	assert.Equal(t, uint64(1), memo.CacheOf(fb).Stats().Hits)
}

func TestUnencodableValueIsNotShared(t *testing.T) {
	flushAll(t)
	var logs safeBuffer
	a, b := newTier(t, srv, WithLogger(logs.logger()), WithCodec(JSON)), newTier(t, srv, WithCodec(JSON))
	var execs atomic.Int64
	fn := func(k int) float64 { execs.Add(1); return math.NaN() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	assert.True(t, math.IsNaN(fa(1)))
	assert.True(t, math.IsNaN(fb(1)))
	assert.Equal(t, int64(2), execs.Load(), "JSON refuses NaN: not shared, never changed")
	assert.Equal(t, uint64(1), a.Stats().EncodeErrors)
	assert.Contains(t, logs.String(), "result not stored")

	// With msgpack, NaN is shared.
	c, d := newTier(t, srv, WithCodec(Msgpack)), newTier(t, srv, WithCodec(Msgpack))
	fc := memo.Decorate(fn, memo.WithName(t.Name()+"/mp"), memo.WithTier(c))
	fd := memo.Decorate(fn, memo.WithName(t.Name()+"/mp"), memo.WithTier(d))
	assert.True(t, math.IsNaN(fc(1)))
	assert.True(t, math.IsNaN(fd(1)))
	assert.Equal(t, int64(3), execs.Load())
}

func TestTypedPathsShare(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var execs atomic.Int64
	fn := func(ctx context.Context, k string) (string, error) {
		execs.Add(1)
		return "v-" + k, nil
	}
	fa := memo.FuncCtx(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.FuncCtx(fn, memo.WithName(t.Name()), memo.WithTier(b))
	// Decorate and the typed path build the same keys: they share entries.
	fc := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(newTier(t, srv)))
	for _, f := range []func(context.Context, string) (string, error){fa, fb, fc} {
		v, err := f(context.Background(), "k")
		require.NoError(t, err)
		assert.Equal(t, "v-k", v)
	}
	assert.Equal(t, int64(1), execs.Load())

	g := func(a int, s string) []byte { execs.Add(1); return []byte(s + fmt.Sprint(a)) }
	ga := memo.Func2(g, memo.WithName(t.Name()+"/g"), memo.WithTier(a))
	gb := memo.Func2(g, memo.WithName(t.Name()+"/g"), memo.WithTier(b))
	assert.Equal(t, []byte("x1"), ga(1, "x"))
	assert.Equal(t, []byte("x1"), gb(1, "x"))
	assert.Equal(t, int64(2), execs.Load())
}

func TestInterfaceArgumentsAreStable(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var execs atomic.Int64
	fn := func(k any) string { execs.Add(1); return fmt.Sprintf("%T:%v", k, k) }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	assert.Equal(t, "int:1", fa(1))
	assert.Equal(t, "int64:1", fb(int64(1)), "int(1) and int64(1) stay apart")
	assert.Equal(t, "int:1", fb(1))
	assert.Equal(t, "[]string:[a]", fa([]string{"a"}))
	assert.Equal(t, "[]string:[a]", fb([]string{"a"}))
	assert.Equal(t, int64(3), execs.Load())
}

func TestUnshareableCallsStayLocal(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	var execs atomic.Int64
	type box struct{ N int }
	fn := func(p *box) int { execs.Add(1); return p.N }
	f := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	p := &box{7}
	assert.Equal(t, 7, f(p))
	assert.Equal(t, 7, f(p))
	assert.Equal(t, int64(1), execs.Load(), "cached locally")
	assert.Empty(t, valueKeys(t, srv), "a pointer keyed by identity never reaches Redis")

	loc := func(tm time.Time) int { execs.Add(1); return tm.Second() }
	g := memo.Decorate(loc, memo.WithName(t.Name()+"/time"), memo.WithTier(a))
	g(time.Now())
	assert.Empty(t, valueKeys(t, srv), "time.Local may differ between machines")
	g(time.Now().UTC())
	assert.Len(t, valueKeys(t, srv), 1)
}

func TestErrorsAreNotStored(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var execs atomic.Int64
	fn := func(k int) (int, error) { execs.Add(1); return 0, errors.New("boom") }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	_, err := fa(1)
	require.Error(t, err)
	_, err = fb(1)
	require.Error(t, err)
	assert.Equal(t, int64(2), execs.Load())
	assert.Empty(t, valueKeys(t, srv))

	p := memo.Decorate(func(k int) int { panic("no") }, memo.WithName(t.Name()+"/panic"), memo.WithTier(a))
	assert.PanicsWithValue(t, "no", func() { p(1) })
	assert.Empty(t, valueKeys(t, srv))
}

func TestUnencodableResultPanicsAtDecoration(t *testing.T) {
	needRedis(t)
	a := newTier(t, srv)
	// Unexported fields and recursive types are carried by the default
	// codec (Binary); codec_test.go has each codec's refusals.
	cases := map[string]any{
		"any":   func(int) any { return nil },
		"chan":  func(int) chan int { return nil },
		"func":  func(int) func() { return nil },
		"error": func(int) (error, error) { return nil, nil },
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "Decorate must panic")
				assert.Contains(t, fmt.Sprint(r), "memo:")
				assert.Contains(t, fmt.Sprint(r), "result type")
			}()
			memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
		})
	}
	assert.PanicsWithError(t, `memo: WithTier needs WithName(name): the name keys the function's entries in the tier and must be the same in every replica`,
		func() { memo.Decorate(func(int) int { return 0 }, memo.WithTier(a)) })
}

type node struct{ Next *node }

func TestInvalidateReachesEveryReplica(t *testing.T) {
	flushAll(t)
	dropped := make(chan struct{}, 16)
	a := newTier(t, srv, withHandled(func(kind byte) {
		if kind == msgInvalidate {
			dropped <- struct{}{}
		}
	}))
	b := newTier(t, srv)
	var version atomic.Int64
	fn := func(k string) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	assert.Equal(t, int64(0), fa("k"))
	assert.Equal(t, int64(0), fb("k"))
	version.Store(1)
	removed, err := memo.InvalidateContext(context.Background(), fb, "k")
	require.NoError(t, err)
	assert.True(t, removed)
	<-dropped
	assert.Equal(t, 0, memo.CacheOf(fa).Len(), "the peer dropped its copy")
	assert.Equal(t, int64(1), fa("k"))
	assert.Equal(t, int64(1), fb("k"))
}

func TestClearMovesToANewGeneration(t *testing.T) {
	flushAll(t)
	a, b := newTier(t, srv), newTier(t, srv)
	var execs atomic.Int64
	fn := func(k int) int { execs.Add(1); return k }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	fa(1)
	fa(2)
	memo.CacheOf(fa).Clear()
	assert.Equal(t, uint64(1), a.Stats().Clears)
	fb(1)
	assert.Equal(t, int64(3), execs.Load(), "after Clear, L2 misses")
	fa(1)
	assert.Equal(t, int64(3), execs.Load(), "and the new generation is shared")
}

func TestBadValuesAreMisses(t *testing.T) {
	flushAll(t)
	var logs safeBuffer
	a := newTier(t, srv, WithMaxValueBytes(4096))
	var execs atomic.Int64
	fn := func(k int) []int { execs.Add(1); return []int{k, k} }
	f := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	f(1)
	keys := valueKeys(t, srv)
	require.Len(t, keys, 1)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	good, err := c.Get(ctx, keys[0]).Bytes()
	require.NoError(t, err)

	otherSchema := slices.Clone(good)
	otherSchema[4] ^= 0xff
	otherCodec := slices.Clone(good)
	otherCodec[3] = Msgpack.ID()
	otherKey := slices.Clone(good) // the key tag of another key
	otherKey[20] ^= 0xff
	bad := map[string][]byte{
		"garbage":      []byte("not a memo value at all, really"),
		"empty":        {},
		"header only":  good[:headerLen],
		"truncated":    good[:len(good)-1],
		"oversized":    append(slices.Clone(good), make([]byte, 8192)...),
		"other schema": otherSchema,
		"other codec":  otherCodec,
		"other key":    otherKey,
		"bad payload":  append(slices.Clone(good[:headerLen]), 0xc1, 0xc1, 0xc1),
	}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, c.Set(ctx, keys[0], v, time.Minute).Err())
			// A fresh replica: its L1 is empty, so it reads the bad value.
			r := newTier(t, srv, WithMaxValueBytes(4096), WithLogger(logs.logger()))
			g := memo.Decorate(fn, memo.WithName(t.Name()[:len("TestBadValuesAreMisses")]), memo.WithTier(r))
			n := execs.Load()
			assert.Equal(t, []int{1, 1}, g(1), "a bad value is a miss: the function runs")
			assert.Equal(t, n+1, execs.Load())
			// One value, one error (the old tier decoded it twice: once
			// from its GET, again from the lease script's reply).
			assert.Equal(t, uint64(1), r.Stats().DecodeErrors)
			assert.Zero(t, r.Stats().Hits)
		})
	}
	assert.Contains(t, logs.String(), "undecodable value")
}

func TestInFlightFillRacingInvalidateNeverWritesBack(t *testing.T) {
	flushAll(t)
	a, b, c := newTier(t, srv), newTier(t, srv), newTier(t, srv)
	var version atomic.Int64
	started := make(chan struct{})
	release := make(chan struct{})
	fn := func(k int) int64 {
		v := version.Load()
		if k >= 0 {
			started <- struct{}{}
			<-release
		}
		return v
	}
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	check := memo.Decorate(func(k int) int64 { return version.Load() }, memo.WithName(t.Name()), memo.WithTier(c))
	const reps = 1000
	for i := range reps {
		done := make(chan int64)
		go func() { done <- fa(i) }()
		<-started
		version.Add(1) // the source changes while the fill is in flight
		_, err := memo.InvalidateContext(context.Background(), fb, i)
		require.NoError(t, err)
		close(release)
		old := <-done
		release = make(chan struct{})
		require.Equal(t, version.Load(), check(i), "rep %d: the stale fill (%d) was written back", i, old)
	}
	assert.Equal(t, uint64(reps), a.Stats().Fenced)
	assert.Zero(t, a.Stats().Fills)
}

func TestPeerDropLatency(t *testing.T) {
	flushAll(t)
	got := make(chan time.Time, 1)
	a := newTier(t, srv, withHandled(func(kind byte) {
		if kind == msgInvalidate {
			got <- time.Now()
		}
	}))
	b := newTier(t, srv)
	fn := func(k int) int { return k }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	fb := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(b))
	const n = 300
	lat := make([]time.Duration, 0, n)
	for i := range n {
		fa(i)
		start := time.Now()
		_, err := memo.InvalidateContext(context.Background(), fb, i)
		require.NoError(t, err)
		lat = append(lat, (<-got).Sub(start))
		require.Zero(t, memo.CacheOf(fa).Len())
	}
	slices.Sort(lat)
	t.Logf("peer L1 drop after InvalidateContext (n=%d): p50 %v p99 %v max %v", n, lat[n/2], lat[n*99/100], lat[n-1])
}

func TestPubsubKillFlushesThenServesFresh(t *testing.T) {
	flushAll(t)
	a := newTier(t, srv)
	var version atomic.Int64
	fn := func(k string) int64 { return version.Load() }
	fa := memo.Decorate(fn, memo.WithName(t.Name()), memo.WithTier(a))
	assert.Equal(t, int64(0), fa("k"))
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	// The source changes and the value is deleted in Redis without a
	// message: only the resubscription's flush can save a.
	version.Store(1)
	for _, k := range valueKeys(t, srv) {
		require.NoError(t, c.Del(ctx, k).Err())
	}
	before := a.Stats().Resubscribes
	require.NoError(t, srv.Do("CLIENT", "KILL", "TYPE", "pubsub"))
	require.Eventually(t, func() bool { return a.Stats().Resubscribes > before }, hangAfter, time.Millisecond)
	assert.Equal(t, 0, memo.CacheOf(fa).Len(), "flushed on resubscribe")
	assert.Equal(t, int64(1), fa("k"), "and serves the fresh value")
}

// TestMaxLocalAgeBoundsEachEntry guards the per-entry staleness bound:
// WithMaxLocalAge removes each L1 entry once it is that old, and the other
// entries keep their hits (the old tier flushed the whole L1 every period,
// so both entries went at once).
func TestMaxLocalAgeBoundsEachEntry(t *testing.T) {
	flushAll(t)
	const maxAge = 2 * time.Second
	a := newTier(t, srv, WithMaxLocalAge(maxAge))
	var version atomic.Int64
	f := memo.Decorate(func(k int) int64 { return version.Load() }, memo.WithName(t.Name()), memo.WithTier(a))
	c := memo.CacheOf(f)
	assert.Equal(t, int64(0), f(1))
	stored := time.Now()
	require.Eventually(t, func() bool { return time.Since(stored) > maxAge/2 }, hangAfter, time.Millisecond)
	assert.Equal(t, int64(0), f(2))
	require.Equal(t, 2, c.Len())
	// The source changes and Redis loses the values, with no message: the
	// old values stay in L1 only until each is maxAge old.
	version.Store(1)
	require.NoError(t, srv.Do("FLUSHALL"))
	require.Eventually(t, func() bool { return c.Len() < 2 }, hangAfter, time.Millisecond)
	assert.Equal(t, 1, c.Len(), "the older entry went alone: the younger one keeps its hits")
	// When (the bound) is only logged: no test asserts a wall-clock bound.
	t.Logf("the first entry was removed at the age of %v (bound %v)", time.Since(stored), maxAge)
	assert.Equal(t, int64(1), f(1))
}

// safeBuffer is a goroutine-safe log sink.
type safeBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	return len(p), nil
}

func (s *safeBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(s, nil)) }

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}

var _ = redis.Nil
