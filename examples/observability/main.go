// Command observability serves memo's debug page and Prometheus metrics
// over a demo of three caches under a steady synthetic load:
//
//	cd examples/observability && go run .       # http://127.0.0.1:8080/debug/memo
//	curl -s 127.0.0.1:8080/debug/memo?format=json
//	curl -s 127.0.0.1:8080/metrics | grep memo_
//
// The caches: "users" (a context-aware lookup with a TTL, refreshed ahead
// of expiry and served stale when its "database" fails, shared through a
// simulated tier with a second replica of itself in the same process,
// listed as "users#2"), "prices" (LFU, smaller than its key space, so it
// evicts; prices not set yet are not stored), and "geo", one cache shared
// by two functions through memo.WithCache. The simulated tier,
// "l2 (simulated)", is a memo.Tier in memory standing in for a Redis one
// (redistier): users' local misses ask it first, so the page shows the
// function's runs apart from the executions the tier answered, and how a
// tier's figures are wired in with WithTier.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/memohttp"
	"github.com/memokit/memo/memoprom"
	"github.com/memokit/memo/policies"
	"github.com/memokit/memo/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve on")
	warm := flag.Int("warm", 3000, "calls made before serving, so the page has figures")
	ttl := flag.Duration("ttl", 8*time.Second, "the users cache's TTL")
	refresh := flag.Duration("refresh", 3*time.Second, "the users cache's refresh-ahead interval")
	flag.Parse()

	d := newDemo(*ttl, *refresh)
	d.load(*warm, 4)
	stop := d.keepLoading()
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving http://%s/debug/memo and http://%s/metrics", ln.Addr(), ln.Addr())
	log.Fatal(http.Serve(ln, d.mux()))
}

// demo holds the three demo caches' functions and the simulated tier.
type demo struct {
	user    func(context.Context, int) (string, error)
	userB   func(context.Context, int) (string, error) // another replica's
	price   func(int) float64
	country func(int) string
	city    func(int) string
	tier    *simTier
}

// work sleeps for a random time in [lo, hi): the demo's stand-in for I/O.
func work(lo, hi time.Duration) {
	time.Sleep(lo + rand.N(hi-lo))
}

// errDatabase is the simulated database's occasional failure.
var errDatabase = errors.New("database unavailable")

// newDemo makes the demo's caches; users keeps its entries for ttl and
// refreshes them after refresh.
func newDemo(ttl, refresh time.Duration) *demo {
	d := &demo{tier: newSimTier()}
	lookupUser := func(ctx context.Context, id int) (string, error) {
		// The "database": slow, and now and then down.
		work(2*time.Millisecond, 12*time.Millisecond)
		if rand.N(20) == 0 {
			return "", errDatabase
		}
		return fmt.Sprintf("user-%d", id), nil
	}
	// Two replicas of the service, each with its local cache of users,
	// sharing results through the tier: one name, so one key space there.
	// (Each replica's tier is a handle of its own on the shared store, as
	// each process has its own redistier.Tier.)
	d.user = memo.FuncCtx(lookupUser, memo.WithName("users"), memo.WithMaxSize(300), memo.WithTTL(ttl),
		memo.WithRefreshAfter(refresh), memo.WithStaleIfError(time.Minute), memo.WithTier(d.tier))
	d.userB = memo.FuncCtx(lookupUser, memo.WithName("users"), memo.WithMaxSize(300), memo.WithTTL(ttl),
		memo.WithRefreshAfter(refresh), memo.WithStaleIfError(time.Minute), memo.WithTier(&simReplica{d.tier}))

	d.price = memo.Func(func(sku int) float64 {
		work(100*time.Microsecond, 2*time.Millisecond)
		if sku%50 == 0 {
			return 0 // not priced yet: asked again next time
		}
		return float64(sku%1000) / 10
	}, memo.WithName("prices"), memo.WithPolicy(policies.LFU), memo.WithMaxSize(60),
		memo.WithCacheIf(func(r []any) bool { return r[0].(float64) != 0 }))

	geo := memo.MustNew(memo.WithName("geo"), memo.WithMaxSize(200))
	d.country = memo.Func(func(ip int) string {
		work(20*time.Microsecond, 200*time.Microsecond)
		return fmt.Sprintf("country-%d", ip%40)
	}, memo.WithCache(geo))
	d.city = memo.Func(func(ip int) string {
		work(50*time.Microsecond, 400*time.Microsecond)
		return fmt.Sprintf("city-%d", ip%90)
	}, memo.WithCache(geo))
	return d
}

// simTier is a shared tier in memory (a memo.Tier), standing in for a
// Redis one: it keeps every value a load stored, answers a load from it
// after a short round trip, and fails one operation in a hundred, after
// which memo runs the function locally.
type simTier struct {
	mu     sync.Mutex
	values map[[32]byte]simValue

	hits, misses, fills, localRuns, errors atomic.Uint64
}

type simValue struct {
	results []any
	stored  time.Time
	expires time.Time // zero: never
}

func newSimTier() *simTier { return &simTier{values: map[[32]byte]simValue{}} }

// simReplica is another process's handle on a simTier's store.
type simReplica struct{ *simTier }

func (t *simTier) Bind(memo.TierFunc) (memo.TierBinding, error) { return t, nil }

func (t *simTier) Load(ctx context.Context, key memo.TierKey, compute memo.TierCompute) ([]any, time.Duration, bool) {
	return t.load(ctx, key, time.Time{}, compute)
}

func (t *simTier) Refresh(ctx context.Context, key memo.TierKey, since time.Time, compute memo.TierCompute) ([]any, time.Duration, bool) {
	return t.load(ctx, key, since, compute)
}

// load answers with a value stored after since, or runs compute and
// stores what it returns.
func (t *simTier) load(ctx context.Context, key memo.TierKey, since time.Time, compute memo.TierCompute) ([]any, time.Duration, bool) {
	work(200*time.Microsecond, time.Millisecond) // the round trip
	if rand.N(100) == 0 {
		t.errors.Add(1)
		t.localRuns.Add(1)
		res, _, _ := compute(ctx) // memo's function runs, without the tier
		return res, 0, false
	}
	t.mu.Lock()
	v, ok := t.values[key.Digest]
	t.mu.Unlock()
	now := time.Now()
	live := v.expires.IsZero() || now.Before(v.expires)
	if ok && live && v.stored.After(since) {
		t.hits.Add(1)
		var left time.Duration // the TTL travels: memo's local copy expires with this one
		if !v.expires.IsZero() {
			left = v.expires.Sub(now)
		}
		return v.results, left, true
	}
	t.misses.Add(1)
	res, ttl, store := compute(ctx)
	if store {
		v := simValue{results: res, stored: time.Now()}
		if ttl > 0 {
			v.expires = v.stored.Add(ttl)
		}
		t.mu.Lock()
		t.values[key.Digest] = v
		t.mu.Unlock()
		t.fills.Add(1)
	}
	return nil, 0, false
}

func (t *simTier) Invalidate(_ context.Context, key memo.TierKey) error {
	t.mu.Lock()
	delete(t.values, key.Digest)
	t.mu.Unlock()
	return nil
}

func (t *simTier) Clear(context.Context) error {
	t.mu.Lock()
	clear(t.values)
	t.mu.Unlock()
	return nil
}

func (t *simTier) MaxLocalAge() time.Duration { return 0 }

func (t *simTier) Unbind() {}

// figures adapts the simulated tier's counters to stats.Tier, as
// redistier's Tier.Figures does a real tier's.
func (t *simTier) figures() stats.Tier {
	return stats.Tier{Hits: t.hits.Load(), Misses: t.misses.Load(), Fills: t.fills.Load(),
		LocalRuns: t.localRuns.Load(), Errors: t.errors.Load()}
}

// call makes one request's worth of cached calls with skewed keys.
func (d *demo) call(z *rand.Zipf) {
	ctx := context.Background()
	user := d.user
	if rand.N(2) == 0 {
		user = d.userB // the load balancer's pick
	}
	_, _ = user(ctx, int(z.Uint64()%2000))
	d.price(rand.N(400))
	d.country(rand.N(120))
	d.city(rand.N(120))
}

// load makes n requests from g goroutines and waits for them.
func (d *demo) load(n, g int) {
	var wg sync.WaitGroup
	for w := range g {
		wg.Go(func() {
			z := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 1)), 1.1, 1, 1<<20)
			for range n / g {
				d.call(z)
			}
		})
	}
	wg.Wait()
}

// keepLoading makes about 200 requests a second until stop is called.
func (d *demo) keepLoading() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		z := rand.NewZipf(rand.New(rand.NewPCG(99, 1)), 1.1, 1, 1<<20)
		for {
			select {
			case <-done:
				return
			case <-t.C:
				d.call(z)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// mux serves the debug page at /debug/memo and the metrics at /metrics.
func (d *demo) mux() *http.ServeMux {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		memoprom.NewCollector(memoprom.WithTier("l2 (simulated)", d.tier.figures)),
		collectors.NewGoCollector(),
	)
	mux := http.NewServeMux()
	mux.Handle("/debug/memo", memohttp.Handler(memohttp.WithTier("l2 (simulated)", d.tier.figures)))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}
