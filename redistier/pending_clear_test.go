package redistier

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/stretchr/testify/require"
)

// TestOverflowDuringClearIsNotLost guards a binding's pending Clear: an
// invalidation that failed past maxPending while a Clear was on its way to
// Redis asked for another Clear (the generation the overflow could not
// track is to be dropped), and the landing Clear, which had taken its
// sequence before the overflow, cleared that request, so no Clear came
// after the overflow.
func TestOverflowDuringClearIsNotLost(t *testing.T) {
	flushAll(t)
	c := srv.Client()
	gate := &clearGate{reached: make(chan struct{}), release: make(chan struct{})}
	c.AddHook(gate)
	tier, err := New(c, WithBudget(hangAfter))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = tier.Close()
		_ = c.Close()
	})
	<-tier.Ready()
	f := memo.Decorate(func(k int) int { return k }, memo.WithName(t.Name()), memo.WithTier(tier))
	f(1)
	var b *binding
	tier.mu.Lock()
	for _, bs := range tier.funcs {
		for _, x := range bs {
			if x.f.Name == t.Name() {
				b = x
			}
		}
	}
	tier.mu.Unlock()
	require.NotNil(t, b)

	// maxPending failed invalidations: the next one overflows.
	b.pendingMu.Lock()
	b.pending = make(map[[32]byte]pendingKey, maxPending)
	for i := range maxPending {
		var d [32]byte
		binary.LittleEndian.PutUint64(d[:], uint64(i)+1)
		b.pendingSeq++
		b.pending[d] = pendingKey{memo.TierKey{Digest: d}, b.pendingSeq}
	}
	b.pendingMu.Unlock()

	base := tier.Stats().Clears
	gate.armed.Store(true)
	done := make(chan error)
	go func() { done <- b.Clear(context.Background()) }()
	<-gate.reached                                      // the Clear took its sequence; its SET is on its way
	b.addPending(memo.TierKey{Digest: [32]byte{31: 1}}) // a new key, past maxPending: a Clear is owed after this
	close(gate.release)
	require.NoError(t, <-done)

	// The owed Clear is pending, or the background retry has made it.
	watchdog := time.Now().Add(hangAfter) // a liveness watchdog, not a speed bound
	for !b.pendingClear.Load() && tier.Stats().Clears < base+2 {
		if time.Now().After(watchdog) {
			t.Fatal("the Clear owed by an overflow after the landing Clear's sequence was dropped")
		}
		time.Sleep(time.Millisecond)
	}
	runtime.KeepAlive(f) // its binding stays bound while the test reads it
}
