package memo

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkIdentities asserts every identity that stats.Stats documents, for a
// snapshot taken at quiescence after lookups lookups (calls of memoized
// functions and Cache.Get) and no Cache.UpdateProfiling sample.
func checkIdentities(t *testing.T, st stats.Stats, lookups uint64) {
	t.Helper()
	assert.Equal(t, lookups, st.Hits+st.Misses, "Hits + Misses == lookups")
	assert.Equal(t, st.Misses, st.Led+st.Coalesced+st.Abandoned+st.GetMisses, "Misses == Led + Coalesced + Abandoned + GetMisses")
	assert.Zero(t, st.Pending(), "Pending() == 0")
	assert.Equal(t, st.TotalCalls, st.Led+st.AbandonedLeaders+st.RefreshesStarted, "TotalCalls == Led + AbandonedLeaders + RefreshesStarted")
	assert.Equal(t, st.RefreshesStarted, st.RefreshesSucceeded+st.RefreshesFailed, "RefreshesStarted == RefreshesSucceeded + RefreshesFailed")
	assert.Equal(t, st.TotalCalls, st.ExecTimes.Count(), "ExecTimes.Count() == TotalCalls")
	assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced+st.GetMisses+(st.Abandoned-st.AbandonedLeaders),
		"Misses == TotalCalls - RefreshesStarted + Coalesced + GetMisses + (Abandoned - AbandonedLeaders)")
	if st.Abandoned == 0 {
		assert.Equal(t, st.Misses, st.TotalCalls-st.RefreshesStarted+st.Coalesced+st.GetMisses, "the README's, with no caller leaving")
	}
	assert.LessOrEqual(t, st.Failures, st.TotalCalls, "Failures <= TotalCalls")
	assert.LessOrEqual(t, st.AbandonedLeaders, st.Abandoned, "AbandonedLeaders <= Abandoned")
	assert.LessOrEqual(t, st.StaleServed, st.Led+st.Coalesced, "StaleServed <= Led + Coalesced")
	assert.LessOrEqual(t, st.StaleRetries, st.Led+st.AbandonedLeaders, "StaleRetries <= Led + AbandonedLeaders")
	assert.LessOrEqual(t, st.CurrentSize, st.MaxSize, "CurrentSize <= MaxSize")
}

// Every documented identity of stats.Stats holds exactly at quiescence
// under 16 goroutines that mix refresh-ahead (entries due for a refresh
// evicted or invalidated between their lookup and the execution, the
// miscount this guards), stale-if-error outages and their retries, TTL
// expiry, eviction from a small cache, Invalidate, the dropping of every
// entry that Clear does (with executions in flight), Cache.Get and Set,
// panics, and callers that leave (their context cancelled or past its
// deadline). Clear itself, which resets the statistics, runs between
// rounds, when nothing is in flight; the identities are checked after each
// round. Time is synctest's: executions and callers sleep in it.
func TestStatsIdentitiesUnderStress(t *testing.T) {
	for _, leave := range []bool{false, true} {
		name := "no caller leaves"
		if leave {
			name = "callers leave"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { statsStress(t, leave) })
		})
	}
}

func statsStress(t *testing.T, leave bool) {
	c := MustNew(WithMaxSize(16), WithTTL(8*time.Millisecond))
	var version atomic.Int64
	start := time.Now()
	outage := func() bool { return time.Since(start)/(10*time.Millisecond)%3 == 0 } // 10 ms in 30
	body := func(ctx context.Context, k int) (int, error) {
		v := version.Add(1)
		if d := time.Duration(v%4) * time.Millisecond; d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		switch {
		case v%7 == 0 || outage():
			return 0, errBoom
		case v%29 == 0:
			panic(errBoom)
		}
		return k*1_000_000 + int(v%1_000_000), nil
	}
	f := FuncCtx(body, WithCache(c), WithRefreshAfter(3*time.Millisecond), WithStaleIfError(50*time.Millisecond),
		WithCacheIf(func(r []any) bool { return r[0].(int)%11 != 0 }))
	g := FuncErr(func(k int) (int, error) { return body(context.Background(), k) }, WithCache(c),
		WithRefreshAfter(2*time.Millisecond), WithStaleIfError(30*time.Millisecond))

	var lookups atomic.Uint64
	check := func(k, v int, err error) {
		if err == nil && v/1_000_000 != k && v != 0 {
			t.Errorf("f(%d) = %d: another key's result", k, v)
		}
	}
	callF := func(r *rand.Rand, k int) {
		defer func() {
			if p := recover(); p != nil && !errors.Is(asError(p), errBoom) {
				t.Errorf("unexpected panic %v", p)
			}
		}()
		ctx := context.Background()
		if leave && r.IntN(4) == 0 {
			var cancel context.CancelFunc
			if r.IntN(2) == 0 {
				ctx, cancel = context.WithTimeout(ctx, time.Duration(r.IntN(3000))*time.Microsecond)
			} else {
				ctx, cancel = context.WithCancel(ctx)
				d := time.Duration(r.IntN(2000)) * time.Microsecond
				go func() {
					time.Sleep(d)
					cancel()
				}()
			}
			defer cancel()
		}
		lookups.Add(1)
		v, err := f(ctx, k)
		check(k, v, err)
	}
	callG := func(k int) {
		defer func() {
			if p := recover(); p != nil && !errors.Is(asError(p), errBoom) {
				t.Errorf("unexpected panic %v", p)
			}
		}()
		lookups.Add(1)
		v, err := g(k)
		check(k, v, err)
	}

	reached := map[string]uint64{}
	for round := range 3 {
		var wg sync.WaitGroup
		for gr := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(round), uint64(gr)))
				for range 300 {
					k := r.IntN(8) + 1
					switch op := r.IntN(100); {
					case op < 2:
						Invalidate(f, k)
					case op < 3:
						Invalidate(g, k)
					case op < 4:
						c.e.Flush() // Clear's dropping of every entry, executions in flight
					case op < 8:
						lookups.Add(1)
						_, _ = c.Get(k)
					case op < 10:
						c.Set(k, k)
					case op < 60:
						callF(r, k)
					default:
						callG(k)
					}
					if r.IntN(4) == 0 {
						time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
					}
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Second) // every refresh, and every execution callers left, ends
		synctest.Wait()
		st := c.Stats()
		t.Logf("round %d: %d lookups: hits %d, misses %d (led %d, coalesced %d, abandoned %d (leaders %d), get %d); calls %d, refreshes %d (ok %d, failed %d), stale %d, retries %d, rejected %d, evictions %d, expirations %d",
			round, lookups.Load(), st.Hits, st.Misses, st.Led, st.Coalesced, st.Abandoned, st.AbandonedLeaders, st.GetMisses,
			st.TotalCalls, st.RefreshesStarted, st.RefreshesSucceeded, st.RefreshesFailed, st.StaleServed, st.StaleRetries, st.Rejected,
			st.Evictions, st.Expirations)
		checkIdentities(t, st, lookups.Load())
		for name, n := range map[string]uint64{
			"RefreshesStarted": st.RefreshesStarted, "RefreshesFailed": st.RefreshesFailed, "StaleServed": st.StaleServed,
			"StaleRetries": st.StaleRetries, "Evictions": st.Evictions, "Expirations": st.Expirations,
			"Rejected": st.Rejected, "GetMisses": st.GetMisses, "Coalesced": st.Coalesced,
			"Abandoned": st.Abandoned, "AbandonedLeaders": st.AbandonedLeaders,
		} {
			reached[name] += n
		}

		c.Clear()
		lookups.Store(0)
		assert.Equal(t, stats.Stats{MaxSize: 16, TTL: 8 * time.Millisecond}, c.Stats(), "Clear resets every statistic")
	}
	// The stress reaches what it is meant to (over its rounds: one round
	// may miss a rare event, such as an outage's retry).
	for name, n := range reached {
		if leave || (name != "Abandoned" && name != "AbandonedLeaders") {
			assert.NotZero(t, n, name)
		}
	}
}

// asError returns p, a recovered panic value, as an error: a *PanicError's
// value for a caller that shared a panicking execution.
func asError(p any) error {
	if pe, ok := p.(*PanicError); ok {
		p = pe.Value
	}
	err, _ := p.(error)
	return err
}

// hookCtx is a context whose first Err call runs hook: the miss path asks
// it between the lookup and join, which lets a test remove the entry the
// lookup found at that instant.
type hookCtx struct {
	context.Context
	once sync.Once
	hook func()
}

func (c *hookCtx) Err() error {
	c.once.Do(c.hook)
	return c.Context.Err()
}

// A lookup that finds an entry due for a refresh, whose entry is then
// evicted or invalidated before the call reaches its execution, is a miss
// that leads the execution it runs (it was counted as a hit that ran the
// function, and TotalCalls == Led + RefreshesStarted broke).
func TestRefreshDueEntryGoneBeforeJoin(t *testing.T) {
	for _, how := range []string{"evicted", "invalidated"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				c := MustNew(WithMaxSize(1), WithPolicy(policies.LRU), WithTTL(time.Minute))
				f := FuncCtx(func(_ context.Context, k int) (int, error) {
					return int(calls.Add(1)), nil
				}, WithCache(c), WithRefreshAfter(time.Second))
				v, err := f(context.Background(), 1)
				require.NoError(t, err)
				require.Equal(t, 1, v)
				time.Sleep(2 * time.Second) // due for a refresh
				ctx := &hookCtx{Context: context.Background(), hook: func() {
					if how == "evicted" {
						c.Set("another", 0) // the only room
					} else {
						Invalidate(f, 1)
					}
				}}
				v, err = f(ctx, 1)
				require.NoError(t, err)
				assert.Equal(t, 2, v, "the entry went: a fresh execution")
				synctest.Wait()
				st := c.Stats()
				assert.EqualValues(t, 0, st.RefreshesStarted)
				assert.EqualValues(t, 0, st.Hits)
				assert.EqualValues(t, 2, st.Misses)
				assert.EqualValues(t, 2, st.Led)
				checkIdentities(t, st, 2)
			})
		})
	}
}
