package memo

import (
	"context"
	"log/slog"

	"github.com/memokit/memo/internal/keys"
)

// Calls that are never stored.
//
// A call whose key can never hit again (see keyState.never: past the key
// limit, or holding a value memo cannot identify) would only evict useful
// entries and hold its key: it runs the function, in the caller's
// goroutine and with the caller's context, joins no execution, stores
// nothing, and counts in Stats.Uncacheable (and, as every miss, in Led or
// Abandoned).

// uncacheable runs a call whose key, in s, can never hit again. It takes
// ownership of s.
func uncacheable[T any](w *wrapped, s *keys.State, ctx context.Context, run func(context.Context) T, cancelled func(context.Context) T) T {
	long := s.TooLong
	keys.PutState(s)
	w.c.noteUncacheable(long)
	if ctx != nil && ctx.Err() != nil {
		w.c.e.Rec.Abandoned(1)
		return cancelled(ctx)
	}
	return runAlone(w, tally{&w.c.e.Rec, false}, ctx, run) // timed, and counted as Led
}

// noteUncacheable counts a call or Set that is not stored because its key
// can never hit again, and logs it through the cache's logger.
func (c *Cache) noteUncacheable(tooLong bool) {
	c.e.Rec.Uncacheable(1)
	if c.e.Logger == nil {
		return
	}
	reason := "an argument holds a value memo cannot identify (a func in an unexported field, or nesting deeper than 1000)"
	if tooLong {
		reason = "its key is longer than 4 MiB"
	}
	c.e.Logger.LogAttrs(context.Background(), slog.LevelWarn, "memo: call not cached: its key can never hit again",
		slog.String("cache", c.e.Name), slog.String("reason", reason))
}
