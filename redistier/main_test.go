package redistier

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memokit/memo/redistier/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// srv is the Redis every test but the fault tests shares: one
// redis-server, or, with MEMO_REDIS_CLUSTER=1, the front of a three-master
// Redis Cluster (its Client is a cluster client, its Do runs on every
// node). The fault tests start servers of their own.
var (
	srv    *redistest.Server
	srvDir string
)

// clusterEnv is the environment variable that runs the suite against a
// Redis Cluster: .ci/run runs the suite twice, without it and with it.
const clusterEnv = "MEMO_REDIS_CLUSTER"

// onCluster reports whether the suite runs against a Redis Cluster.
func onCluster() bool { return os.Getenv(clusterEnv) == "1" }

// TestMain starts a real redis-server on a free loopback port, or with
// MEMO_REDIS_CLUSTER=1 a three-master Redis Cluster on loopback ports.
// Without redis-server the Redis tests skip, except in CI (CI=true), where
// that is a failure. A test binary started with MEMO_REDISTIER_CHILD set
// is a child process of the cross-process tests (child_test.go,
// checker_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv("MEMO_REDISTIER_CHILD"); mode != "" {
		if strings.HasPrefix(mode, "checker") {
			os.Exit(runCheckerChild(mode))
		}
		os.Exit(runChild(mode))
	}
	if redistest.Binary() == "" {
		if os.Getenv("CI") == "true" {
			fmt.Println("redis-server not found, and CI=true: the Redis tests must run in CI (.ci/run installs redis-server)")
			os.Exit(1)
		}
		fmt.Println("redis-server not found: the Redis tests skip")
		os.Exit(m.Run())
	}
	var err error
	srvDir, err = os.MkdirTemp("", "memo-redistier-*")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	if onCluster() {
		var c *redistest.Cluster
		if c, err = redistest.StartCluster(srvDir); err == nil {
			srv = c.Front()
			fmt.Println("redistier: the suite runs against a three-master Redis Cluster at", c.Addrs())
		}
	} else {
		srv, err = redistest.Start(srvDir)
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Close()
	closeSharedCluster()
	_ = os.RemoveAll(srvDir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Println("goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needRedis skips a test when there is no redis-server (never in CI: see
// TestMain).
func needRedis(t testing.TB) {
	t.Helper()
	if srv == nil {
		t.Skip("no redis-server")
	}
}

// newServer starts a redis-server of the test's own, for fault injection.
// In the cluster variant of the suite the tests that need one skip: they
// ran in the single-server variant, and they would run the same there
// (cluster_test.go injects the cluster's faults).
func newServer(t testing.TB, args ...string) *redistest.Server {
	t.Helper()
	needRedis(t)
	if onCluster() {
		t.Skip("a single redis-server's faults: the single-server variant of the suite runs this test (" + clusterEnv + "=1 is the cluster variant)")
	}
	s, err := redistest.Start(t.TempDir(), args...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// hangAfter is the Redis tests' liveness watchdog: a wait that has not
// ended after it is reported as a hang, so that the test's cleanups stop
// the servers and child processes it started (go test's -timeout would
// leave them running). It bounds no speed: no test asserts a wall-clock
// bound, and a wait that ends does so well within it under any load.
const hangAfter = 2 * time.Minute

// newTier returns a tier on s with its own client (a replica),
// subscribed: on a cluster's front, a *redis.ClusterClient.
func newTier(t testing.TB, s *redistest.Server, opts ...Option) *Tier {
	t.Helper()
	needRedis(t)
	var c redis.UniversalClient
	if cl := s.Cluster(); cl != nil {
		c = cl.Client()
	} else {
		c = s.Client()
	}
	// Generous durations unless the test sets its own: tests that are not
	// about failures must not see a loaded machine's slow round trip as
	// one (the budget), nor a slow holder as a dead one (the lease, the
	// wait for it), nor have L1 entries dropped at a time they do not
	// choose (no age bound).
	tier, err := New(c, append([]Option{WithBudget(hangAfter), WithLease(hangAfter), WithMaxWait(hangAfter),
		WithMaxLocalAge(0)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = tier.Close()
		_ = c.Close()
	})
	select {
	case <-tier.Ready():
	case <-time.After(hangAfter):
		t.Fatal("the tier never subscribed")
	}
	return tier
}

// flushAll empties srv; on a cluster it also waits until the messages
// that earlier tests published have reached every node (see
// redistest.Cluster.Drain), so that a test's new replicas get none.
func flushAll(t testing.TB) {
	t.Helper()
	needRedis(t)
	require.NoError(t, srv.Do("FLUSHALL"))
	if c := srv.Cluster(); c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
		defer cancel()
		require.NoError(t, c.Drain(ctx))
	}
}

// valueKeys returns the value keys on s (on every node of a cluster).
func valueKeys(t testing.TB, s *redistest.Server) []string {
	t.Helper()
	return keysOf(t, s.Client(), "*:v")
}

// keysOf returns the keys matching pattern that c reaches: on every master
// of a cluster client.
func keysOf(t testing.TB, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	defer c.Close()
	ctx := context.Background()
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var keys []string
		require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			k, err := n.Keys(ctx, pattern).Result()
			mu.Lock()
			keys = append(keys, k...)
			mu.Unlock()
			return err
		}))
		slices.Sort(keys)
		return keys
	}
	keys, err := c.Keys(ctx, pattern).Result()
	require.NoError(t, err)
	return keys
}

// childClient returns the client of a child process (child_test.go) on
// addr: a cluster client seeded with it when the parent runs the cluster
// variant (the child inherits MEMO_REDIS_CLUSTER).
func childClient(addr string) redis.UniversalClient {
	if onCluster() {
		return redis.NewClusterClient(redistest.ClusterOptions(addr))
	}
	return redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
}

// withHandled makes the tier call f after each channel message.
func withHandled(f func(kind byte)) Option { return func(o *options) { o.handled = f } }

// withWaiting makes the tier call f when a load waits: for the first
// subscription ("subscription") or for another process's lease ("lease").
func withWaiting(f func(what string)) Option { return func(o *options) { o.waiting = f } }

// withSubscribeGate holds the tier's subscriber back until gate closes,
// so that a test can start loads before the first subscription is in
// place.
func withSubscribeGate(gate <-chan struct{}) Option {
	return func(o *options) { o.subscribeGate = gate }
}
