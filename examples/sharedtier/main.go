// Command sharedtier shows two replicas of a service sharing one memoized
// function through Redis: one computes, the other reads the result, an
// invalidation on one reaches the other, and with Redis gone both keep
// answering locally.
//
//	REDIS_ADDR=localhost:6379 go run .
//
// REDIS_ADDR defaults to localhost:6379 (a local redis-server).
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/redistier"
	"github.com/redis/go-redis/v9"
)

// price is the slow source both replicas ask: 100 ms a lookup.
var lookups atomic.Int64

func price(ctx context.Context, sku string) (float64, error) {
	lookups.Add(1)
	select {
	case <-time.After(100 * time.Millisecond):
		return float64(len(sku)) * 1.25, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// replica is one process's view: its own client, tier and memoized func.
type replica struct {
	rdb   *redis.Client
	tier  *redistier.Tier
	price func(context.Context, string) (float64, error)
}

func newReplica(addr string) *replica {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true, // required: every Redis call keeps to its budget
		MaxRetries:            -1,   // one attempt per operation: a failure falls back to a local run at once
		DialTimeout:           100 * time.Millisecond,
	})
	tier, err := redistier.New(rdb, redistier.WithPrefix("memo-example"))
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-tier.Ready():
	case <-time.After(time.Second):
		fmt.Println("(Redis does not answer: the calls below run locally)")
	}
	return &replica{rdb: rdb, tier: tier, price: memo.FuncCtx(price,
		memo.WithName("shop.price"), // the same name in every replica
		memo.WithTier(tier),
		memo.WithTTL(10*time.Minute))}
}

func (r *replica) close() {
	r.tier.Close()
	r.rdb.Close()
}

func main() {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "localhost:6379"
	}
	ctx := context.Background()
	a, b := newReplica(addr), newReplica(addr)
	defer a.close()
	defer b.close()
	memo.CacheOf(a.price).Clear() // start from an empty shared namespace

	timed := func(who string, r *replica, sku string) {
		start := time.Now()
		p, err := r.price(ctx, sku)
		fmt.Printf("%s price(%q) = %.2f, %v  in %v  (lookups so far: %d)\n", who, sku, p, err, time.Since(start).Round(100*time.Microsecond), lookups.Load())
	}
	timed("replica A", a, "espresso") // cold: A looks it up and fills Redis
	timed("replica B", b, "espresso") // B's L1 misses, Redis hits: no lookup
	timed("replica B", b, "espresso") // B's L1 hits: no Redis at all

	// An invalidation on A deletes the shared value and drops B's copy.
	_, err := memo.InvalidateContext(ctx, a.price, "espresso")
	fmt.Println("A invalidates espresso:", err)
	time.Sleep(10 * time.Millisecond) // let the broadcast arrive (about 0.1 ms on loopback)
	fmt.Println("B's local entries after the broadcast:", memo.CacheOf(b.price).Len())
	timed("replica B", b, "espresso") // B looks it up again

	st := b.tier.Stats()
	fmt.Printf("\nB's tier: L2 hits %d, misses %d, fills %d, lease waits %d, local runs %d, errors %d, breaker %s\n",
		st.Hits, st.Misses, st.Fills, st.LeaseWaits, st.LocalRuns, st.Errors, st.BreakerState)
}
