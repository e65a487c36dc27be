package redistier

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/memokit/memo/redistier/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// srv is the redis-server every test but the fault tests shares; the fault
// tests start their own.
var (
	srv    *redistest.Server
	srvDir string
)

// TestMain starts a real redis-server on a free loopback port. Without one
// the Redis tests skip, except in CI (CI=true), where that is a failure.
// A test binary started with MEMO_REDISTIER_CHILD set is a child process
// of the cross-process tests (child_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv("MEMO_REDISTIER_CHILD"); mode != "" {
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
	srv, err = redistest.Start(srvDir)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	code := m.Run()
	srv.Close()
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
func newServer(t testing.TB, args ...string) *redistest.Server {
	t.Helper()
	needRedis(t)
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

// newTier returns a tier on s with its own client (a replica), subscribed.
func newTier(t testing.TB, s *redistest.Server, opts ...Option) *Tier {
	t.Helper()
	needRedis(t)
	c := s.Client()
	// Generous durations unless the test sets its own: tests that are not
	// about failures must not see a loaded machine's slow round trip as
	// one (the budget), nor a slow holder as a dead one (the lease, the
	// wait for it), nor have L1 flushed at a time they do not choose (no
	// age bound).
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

// flushAll empties srv.
func flushAll(t testing.TB) {
	t.Helper()
	needRedis(t)
	require.NoError(t, srv.Do("FLUSHALL"))
}

// valueKeys returns the value keys on s.
func valueKeys(t testing.TB, s *redistest.Server) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	keys, err := c.Keys(context.Background(), "*:v").Result()
	require.NoError(t, err)
	return keys
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
