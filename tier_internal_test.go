package memo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo/internal/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTier is an in-memory Tier: a map shared by the functions bound to it.
type fakeTier struct {
	mu       sync.Mutex
	store    map[[32]byte][]any
	created  map[[32]byte]time.Time
	loads    []TierKey
	sinces   []time.Time // of each Refresh
	funcs    []TierFunc
	clears   int
	invErr   error
	maxAge   time.Duration
	bindErr  error
	computes int
	ttls     map[[32]byte]time.Duration // the TTL each stored value was given
	unbinds  int
	// beforeInvalidate, when set, runs in Invalidate before the delete.
	beforeInvalidate func()
}

func newFakeTier() *fakeTier {
	return &fakeTier{store: map[[32]byte][]any{}, created: map[[32]byte]time.Time{}, ttls: map[[32]byte]time.Duration{}}
}

func (f *fakeTier) Bind(fn TierFunc) (TierBinding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.funcs = append(f.funcs, fn)
	return f, f.bindErr
}

func (f *fakeTier) Load(ctx context.Context, key TierKey, compute TierCompute) ([]any, time.Duration, bool) {
	f.mu.Lock()
	f.loads = append(f.loads, key)
	v, ok := f.store[key.Digest]
	left := f.left(key.Digest)
	f.mu.Unlock()
	if ok && left > 0 { // an expired value is gone, as in Redis
		return v, left, true
	}
	f.fill(ctx, key, compute)
	return nil, 0, false
}

// left returns how long the value at d has to live: its TTL (the fake
// tier's default is an hour) less its age. f.mu is held.
func (f *fakeTier) left(d [32]byte) time.Duration {
	ttl := f.ttls[d]
	if ttl == 0 {
		ttl = time.Hour
	}
	return ttl - time.Since(f.created[d])
}

func (f *fakeTier) fill(ctx context.Context, key TierKey, compute TierCompute) {
	res, ttl, store := compute(ctx)
	f.mu.Lock()
	f.computes++
	if store {
		f.store[key.Digest] = res
		f.created[key.Digest] = time.Now()
		f.ttls[key.Digest] = ttl
	}
	f.mu.Unlock()
}

// Refresh takes a value created after since; it has no leases (one
// process).
func (f *fakeTier) Refresh(ctx context.Context, key TierKey, since time.Time, compute TierCompute) ([]any, time.Duration, bool) {
	f.mu.Lock()
	f.sinces = append(f.sinces, since)
	v, ok := f.store[key.Digest]
	ok = ok && f.created[key.Digest].After(since)
	left := f.left(key.Digest)
	f.mu.Unlock()
	if ok {
		return v, left, true
	}
	f.fill(ctx, key, compute)
	return nil, 0, false
}

func (f *fakeTier) Invalidate(ctx context.Context, key TierKey) error {
	if f.beforeInvalidate != nil {
		f.beforeInvalidate()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.store, key.Digest)
	return f.invErr
}

func (f *fakeTier) Clear(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears++
	clear(f.store)
	return nil
}

func (f *fakeTier) MaxLocalAge() time.Duration { return f.maxAge }

func (f *fakeTier) Unbind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbinds++
}

// fakeReplica is another replica's tier on f's store: a tier of its own
// (a name is unique per tier in a process), sharing f's entries.
type fakeReplica struct{ *fakeTier }

func (f *fakeTier) replica() Tier { return &fakeReplica{f} }

func (f *fakeTier) lastKey() TierKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads[len(f.loads)-1]
}

func (f *fakeTier) loadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.loads)
}

func TestTierOptionErrors(t *testing.T) {
	ft := newFakeTier()
	assert.PanicsWithError(t, "memo: WithTier(nil): pass a tier, for example one made by redistier.New",
		func() { Decorate(func(int) int { return 0 }, WithName("x"), WithTier(nil)) })
	assert.Panics(t, func() { Decorate(func(int) int { return 0 }, WithTier(ft)) }, "WithName is required")
	_, err := New(WithMaxSize(1), WithName("x"), WithTier(ft))
	assert.ErrorContains(t, err, "WithTier applies to Decorate")
	ft.bindErr = errors.New("memo: cannot store chan int")
	assert.PanicsWithError(t, `memo: WithTier("x"): cannot store chan int`,
		func() { Decorate(func(int) chan int { return nil }, WithName("x"), WithTier(ft)) })
}

func TestTierSharesBetweenDecorations(t *testing.T) {
	ft := newFakeTier()
	execs := 0
	fn := func(a int, s string) (int, string, error) { execs++; return a, s, nil }
	f1 := Decorate(fn, WithName("pair"), WithTier(ft))
	f2 := Decorate(fn, WithName("pair"), WithTier(ft.replica()))
	a, _, err := f1(1, "x")
	require.NoError(t, err)
	assert.Equal(t, 1, a)
	a, s, err := f2(1, "x") // a second "replica": its L1 misses, the tier hits
	require.NoError(t, err)
	assert.Equal(t, 1, a)
	assert.Equal(t, "x", s)
	assert.Equal(t, 1, execs)
	require.Len(t, ft.funcs, 2)
	assert.Equal(t, ft.funcs[0].Schema, ft.funcs[1].Schema)
	assert.Len(t, ft.funcs[0].Results, 2, "the error result is not stored")

	// Typed paths share the same keys and rebuild their results.
	g1 := FuncErr(func(k string) (int, error) { execs++; return len(k), nil }, WithName("len"), WithTier(ft))
	g2 := Decorate(func(k string) (int, error) { execs++; return len(k), nil }, WithName("len"), WithTier(ft.replica()))
	n, err := g1("abc")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	n, err = g2("abc")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, 2, execs)

	e1 := Func(func(k int) error { execs++; return nil }, WithName("err"), WithTier(ft))
	e2 := Func(func(k int) error { execs++; return nil }, WithName("err"), WithTier(ft.replica()))
	assert.NoError(t, e1(1))
	assert.NoError(t, e2(1))
	assert.Equal(t, 3, execs)

	bad := FuncErr(func(k int) (int, error) { execs++; return 0, errors.New("no") }, WithName("bad"), WithTier(ft))
	_, err = bad(1)
	assert.Error(t, err)
	assert.Len(t, ft.store, 3, "an error is not stored in the tier")
}

func TestTierRespectsCacheIf(t *testing.T) {
	ft := newFakeTier()
	f := Decorate(func(k int) int { return k }, WithName("cacheif"), WithTier(ft),
		WithCacheIf(func(r []any) bool { return r[0].(int) > 0 }))
	f(-1)
	f(1)
	assert.Len(t, ft.store, 1, "a result WithCacheIf refuses is not shared either")
}

func TestTierKeysAreStable(t *testing.T) {
	ft := newFakeTier()
	f := Decorate(func(k any) int { return 0 }, WithName("stable"), WithTier(ft))
	f(int64(5))
	k64 := ft.lastKey()
	f(5)
	kInt := ft.lastKey()
	assert.NotEqual(t, k64.Digest, kInt.Digest, "int64(5) and int(5) differ")
	// Golden bytes: the type's name, never a process-local id. Changing
	// them changes every shared key: do it only on purpose.
	assert.Equal(t, "07696e7436340500000000000000", hex.EncodeToString(k64.Args))
	assert.Contains(t, string(k64.Args), "int64")

	type local struct{ A int }
	f(local{1})
	assert.Contains(t, string(ft.lastKey().Args), "github.com/memokit/memo.local")

	// Process-local keys stay in L1.
	n := ft.loadCount()
	x := 1
	f(&x)
	f(func() {})
	f(time.Now()) // time.Local
	assert.Equal(t, n, ft.loadCount(), "pointers, funcs and local times never reach the tier")
	f(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.Equal(t, n+1, ft.loadCount())
	loc := time.FixedZone("X", 3600)
	f(time.Date(2024, 1, 1, 0, 0, 0, 0, loc))
	assert.Contains(t, string(ft.lastKey().Args), "X")

	// A schema change (another result type) is another fingerprint: a
	// replica running a new deploy.
	g := Decorate(func(k any) string { return "" }, WithName("stable"), WithTier(ft.replica()))
	g(int64(5))
	assert.NotEqual(t, k64.Digest, ft.lastKey().Digest)
}

func TestTierInvalidateContext(t *testing.T) {
	ft := newFakeTier()
	execs := 0
	f := Decorate(func(k int) int { execs++; return k }, WithName("inv"), WithTier(ft))
	f(1)
	removed, err := InvalidateContext(context.Background(), f, 1)
	assert.True(t, removed)
	assert.NoError(t, err)
	f(1)
	assert.Equal(t, 2, execs, "gone from L1 and from the tier")
	ft.invErr = errors.New("memo: unreachable")
	removed, err = InvalidateContext(context.Background(), f, 1)
	assert.True(t, removed)
	assert.ErrorContains(t, err, "unreachable")

	plain := Decorate(func(k int) int { return k })
	plain(1)
	removed, err = InvalidateContext(context.Background(), plain, 1)
	assert.True(t, removed)
	assert.NoError(t, err)

	CacheOf(f).Clear()
	assert.Equal(t, 1, ft.clears, "Clear clears the tier's namespace")
}

func TestTierDropAndFlush(t *testing.T) {
	ft := newFakeTier()
	f := Decorate(func(k string) int { return len(k) }, WithName("drop"), WithTier(ft))
	f("ab")
	f("abc")
	require.Equal(t, 2, CacheOf(f).Len())
	ft.funcs[0].Drop(ft.lastKey().Args)
	assert.Equal(t, 1, CacheOf(f).Len(), "Drop removes the one entry")
	ft.funcs[0].Flush()
	assert.Equal(t, 0, CacheOf(f).Len())
}

func TestTierBoundsLocalAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeTier()
		ft.maxAge = time.Minute
		execs := 0
		f := Decorate(func(k int) int { execs++; return k }, WithName("age"), WithTier(ft))
		f(1)
		time.Sleep(30 * time.Second)
		f(2) // a younger entry: the bound is per entry, not a flush of L1
		time.Sleep(28 * time.Second)
		f(1)
		assert.Equal(t, 2, ft.loadCount(), "an L1 hit within the bound, less its margin for a late timer")
		time.Sleep(2 * time.Second)
		f(1)
		assert.Equal(t, 3, ft.loadCount(), "past the bound the entry is gone from L1")
		assert.Equal(t, 2, execs, "and the tier answers")
		f(2)
		assert.Equal(t, 3, ft.loadCount(), "the younger entry, 30 s old, is still an L1 hit")
		time.Sleep(30 * time.Second)
		f(2)
		assert.Equal(t, 4, ft.loadCount(), "until it reaches the bound in turn")
	})
}

// A refresh of a tiered function asks the tier's Refresh: a value another
// replica stored after since is taken without executing; an older one is
// recomputed and written through; a failed refresh writes nothing.
func TestTierRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeTier()
		var execs int
		fail := false
		f := FuncErr(func(k string) (int, error) {
			execs++
			if fail {
				return 0, errors.New("down")
			}
			return execs, nil
		}, WithName("refresh"), WithTier(ft), WithTTL(time.Hour), WithRefreshAfter(time.Minute))
		get := func() int {
			t.Helper()
			v, err := f("k")
			require.NoError(t, err)
			return v
		}
		assert.Equal(t, 1, get())
		digest := ft.lastKey().Digest

		// Another replica refreshed the key: its value is newer than
		// now − the interval, and is taken as the refresh's result.
		time.Sleep(2 * time.Minute)
		ft.mu.Lock()
		ft.store[digest] = []any{100}
		ft.created[digest] = time.Now()
		ft.mu.Unlock()
		assert.Equal(t, 1, get(), "the due entry is served at once")
		synctest.Wait()
		assert.Equal(t, 100, get())
		assert.Equal(t, 1, execs, "the other replica's refresh is taken, not re-executed")
		require.Len(t, ft.sinces, 1)
		assert.Equal(t, time.Now().Add(-time.Minute), ft.sinces[0])

		// Nobody refreshed since: the refresh executes and writes through.
		time.Sleep(2 * time.Minute)
		assert.Equal(t, 100, get())
		synctest.Wait()
		assert.Equal(t, 2, get())
		assert.Equal(t, 2, execs)
		ft.mu.Lock()
		assert.Equal(t, []any{2}, ft.store[digest], "the refreshed value is in the tier")
		ft.mu.Unlock()

		// A failed refresh keeps the old entry and writes nothing.
		fail = true
		time.Sleep(2 * time.Minute)
		assert.Equal(t, 2, get())
		synctest.Wait()
		assert.Equal(t, 3, execs)
		ft.mu.Lock()
		assert.Equal(t, []any{2}, ft.store[digest])
		ft.mu.Unlock()
		st := CacheOf(f).Stats()
		assert.Equal(t, uint64(3), st.RefreshesStarted)
		assert.Equal(t, uint64(2), st.RefreshesSucceeded)
		assert.Equal(t, uint64(1), st.RefreshesFailed)
		assert.Equal(t, 2, get(), "the old entry is kept (and a refresh tried again)")
		synctest.Wait()
	})
}

// TestTierMovedArgumentsNotShared: an execution whose starter left and
// changed what its key was computed from (a CacheKeyer pointer, which no
// copy protects) must not write its result to the tier under the old key:
// the local re-check came after the tier's fill, and the waiter and every
// later replica read ID 2's result for ID 1.
func TestTierMovedArgumentsNotShared(t *testing.T) {
	ft := newFakeTier()
	f := FuncCtx(func(ctx context.Context, p *rcKeyed) (int, error) {
		<-ctx.Value(rcRelease{}).(chan struct{})
		return p.ID * 10, nil
	}, WithName("tier-moved"), WithTier(ft))
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := context.WithValue(context.Background(), rcRelease{}, release)
		ctx, cancel := context.WithCancel(base)
		p := &rcKeyed{ID: 1}
		left := make(chan error)
		go func() { _, err := f(ctx, p); left <- err }()
		synctest.Wait()
		got := make(chan int)
		go func() { v, _ := f(base, &rcKeyed{ID: 1}); got <- v }()
		synctest.Wait()
		cancel()
		<-left
		p.ID = 2 // the caller that left reuses its argument
		close(release)
		assert.Equal(t, 10, <-got, "the waiter starts over with its own argument")
		CacheOf(f).e.Flush() // L1 gone: the next call asks the tier
		v, _ := f(base, &rcKeyed{ID: 1})
		assert.Equal(t, 10, v, "the tier must not hold ID 2's result under ID 1")
	})
}

// TestTierHitsApartFromRuns guards the debug page's "Executions" of a
// tiered function, which counted the loads the tier answered as if the
// function had run: Stats.TierHits counts those, and LocalRuns the times
// the function ran here, for a miss and for a refresh, on the typed and
// the reflective paths.
func TestTierHitsApartFromRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeTier()
		runs := 0
		fn := func(k int) int { runs++; return k }
		a := Func(fn, WithName("apart"), WithTier(ft), WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
		b := Decorate(fn, WithName("apart"), WithTier(ft.replica()), WithTTL(time.Minute), WithRefreshAfter(10*time.Second))
		a(1) // runs, fills the tier
		a(2)
		b(1) // answered by the tier
		b(2)
		b(3) // runs
		sa, sb := CacheOf(a).Stats(), CacheOf(b).Stats()
		assert.Equal(t, 3, runs)
		assert.Equal(t, [3]uint64{2, 0, 2}, [3]uint64{sa.TotalCalls, sa.TierHits, sa.LocalRuns()}, "a: calls, tier hits, local runs")
		assert.Equal(t, [3]uint64{3, 2, 1}, [3]uint64{sb.TotalCalls, sb.TierHits, sb.LocalRuns()}, "b: calls, tier hits, local runs")

		// A refresh of a's key 1 runs and writes the tier; b's refresh of
		// it then finds that value, refreshed after its own interval began.
		time.Sleep(11 * time.Second)
		a(1)
		synctest.Wait()
		b(1)
		synctest.Wait()
		sa, sb = CacheOf(a).Stats(), CacheOf(b).Stats()
		assert.Equal(t, 4, runs)
		assert.Equal(t, [3]uint64{3, 0, 3}, [3]uint64{sa.TotalCalls, sa.TierHits, sa.LocalRuns()}, "a after its refresh")
		assert.Equal(t, [3]uint64{4, 3, 1}, [3]uint64{sb.TotalCalls, sb.TierHits, sb.LocalRuns()}, "b after its refresh")
		assert.Contains(t, sb.String(), "tier hits           3")
	})
}

// TestTierInvalidatesBeforeLocal guards the order of InvalidateContext: it
// dropped the local entry before the tier's delete, so a call in between
// read the old value from the tier and put it back in L1, where it stayed
// after InvalidateContext returned. The call here runs inside the tier's
// Invalidate, before its delete.
func TestTierInvalidatesBeforeLocal(t *testing.T) {
	ft := newFakeTier()
	version := 0
	f := Decorate(func(k int) int { return version }, WithName("order"), WithTier(ft))
	require.Equal(t, 0, f(1))
	version = 1
	ft.beforeInvalidate = func() { f(1) } // reads the tier's old value
	removed, err := InvalidateContext(context.Background(), f, 1)
	require.NoError(t, err)
	assert.True(t, removed)
	assert.Equal(t, 1, f(1), "the old value did not come back")
}

// TestTierDecidesOncePerExecution guards WithCacheIf and WithTTLFunc with
// a tier: each ran twice per execution (for the tier, then for the local
// cache), and a predicate that answered differently the second time put
// in the tier a result the local cache refused. The tier now gets the
// TTL WithTTLFunc gave.
func TestTierDecidesOncePerExecution(t *testing.T) {
	ft := newFakeTier()
	ifs, ttls := 0, 0
	f := Decorate(func(k int) int { return k }, WithName("once"), WithTier(ft),
		WithCacheIf(func([]any) bool { ifs++; return ifs == 2 }), // refuses, then would accept
		WithTTLFunc(func([]any) time.Duration { ttls++; return time.Minute }))
	f(1)
	assert.Equal(t, 1, ifs)
	assert.Zero(t, ttls)
	assert.Empty(t, ft.store, "a refused result is not in the tier")
	assert.Zero(t, CacheOf(f).Len())
	f(2)
	assert.Equal(t, 2, ifs)
	assert.Equal(t, 1, ttls)
	require.Len(t, ft.store, 1)
	for _, ttl := range ft.ttls {
		assert.Equal(t, time.Minute, ttl, "the tier gets WithTTLFunc's TTL")
	}
}

// TestTierAgeCapsStaleAndRefresh guards the local age bound against
// WithStaleIfError and WithRefreshAfter: a stale window must not keep an
// entry past MaxLocalAge (the old tier's flush cut a 10-minute window to
// 27-29 s without a word), and both caps are logged at decoration.
func TestTierAgeCapsStaleAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := newFakeTier()
		ft.maxAge = time.Minute
		var logs bytes.Buffer
		fail := false
		f := FuncErr(func(k int) (int, error) {
			if fail {
				return 0, errors.New("down")
			}
			return k, nil
		}, WithName("capped"), WithTier(ft), WithTTL(30*time.Second), WithStaleIfError(10*time.Minute),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		assert.Contains(t, logs.String(), "caps WithStaleIfError")
		assert.NotContains(t, logs.String(), "WithRefreshAfter")
		Decorate(func(k int) int { return k }, WithName("refreshed"), WithTier(ft), WithTTL(5*time.Minute),
			WithRefreshAfter(2*time.Minute), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		assert.Contains(t, logs.String(), "not above WithRefreshAfter")
		_, err := f(1)
		require.NoError(t, err)
		fail = true
		time.Sleep(45 * time.Second) // past the TTL, within the stale window and the bound
		v, err := f(1)
		assert.NoError(t, err, "stale within the bound")
		assert.Equal(t, 1, v)
		time.Sleep(20 * time.Second) // past the bound
		_, err = f(1)
		assert.Error(t, err, "no stale entry past MaxLocalAge")
	})
}

// TestFreshEntryHitsEndAtAgeCap guards a tiered entry with freshness data
// (WithRefreshAfter, WithStaleIfError, WithTTLFunc) whose TTL is longer
// than the tier's local age bound, or absent: its lookups went on hitting
// until the expiry timer removed it, so a late timer served it past the
// bound. The bound now ends its hits in the lookup itself, and a refresh
// due at or past it never starts.
func TestFreshEntryHitsEndAtAgeCap(t *testing.T) {
	c := MustNew(WithMaxSize(10))
	const bound = 30 * time.Second
	fl := &engine.Call{Fo: &engine.FreshOpts{Refresh: time.Minute, Entries: true}, AgeCap: bound}
	for _, ttl := range []time.Duration{0, time.Hour} {
		c.e.Mu.Lock()
		fx := c.e.NewFresh(engine.NewNode("k", 1), ttl, fl, 1000)
		c.e.Mu.Unlock()
		assert.Equal(t, 1000+int64(bound), fx.TtlEnd, "TTL %v: hits end at the bound", ttl)
		assert.Zero(t, fx.RefreshAt, "TTL %v: a refresh due past the bound never starts", ttl)
		assert.LessOrEqual(t, fx.RemoveAt, 1000+int64(bound), "TTL %v: removed by the bound", ttl)
	}
}
