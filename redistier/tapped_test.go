package redistier

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// tappedTier is a tier whose subscription reports the kind of every
// message it handles (waitFor), and can be held (hold): the tests that
// need a message handled only after some step use it.
type tappedTier struct {
	*Tier
	msgs            chan byte
	held            atomic.Bool
	holding, unhold chan struct{}
	unholdOnce      sync.Once
}

// newTappedTier returns a subscribed tappedTier on c; the test's cleanup
// releases its subscription and closes it and c.
func newTappedTier(t *testing.T, c redis.UniversalClient) *tappedTier {
	t.Helper()
	tt := &tappedTier{msgs: make(chan byte, 64), holding: make(chan struct{}), unhold: make(chan struct{})}
	tier, err := New(c, WithBudget(5*time.Second), withHandled(func(k byte) {
		tt.msgs <- k
		if k == msgFill && tt.held.CompareAndSwap(true, false) {
			close(tt.holding)
			<-tt.unhold
		}
	}))
	require.NoError(t, err)
	tt.Tier = tier
	t.Cleanup(func() {
		tt.release()
		_ = tier.Close()
		_ = c.Close()
	})
	<-tier.Ready()
	return tt
}

// waitFor reads the tier's messages until it has seen each kind. On a
// Cluster, messages published through different nodes may arrive in
// either order.
func (tt *tappedTier) waitFor(t *testing.T, kinds ...byte) {
	t.Helper()
	want := map[byte]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	for len(want) > 0 {
		select {
		case k := <-tt.msgs:
			delete(want, k)
		case <-time.After(hangAfter): // a liveness watchdog, not a speed bound
			t.Fatalf("no message of kinds %q after %v", kinds, hangAfter)
		}
	}
}

// hold blocks the subscription until release: it publishes a message of
// no function on c and returns once its handler is blocked, so that the
// messages after it are handled only after release.
func (tt *tappedTier) hold(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	tt.held.Store(true)
	require.NoError(t, c.Publish(context.Background(), tt.channel, message(msgFill, "review", "x", nil)).Err())
	<-tt.holding
}

// release lets a held subscription go on; it may be called more than once.
func (tt *tappedTier) release() { tt.unholdOnce.Do(func() { close(tt.unhold) }) }
