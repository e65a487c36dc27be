package memo

import (
	"context"
	"log/slog"
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
func uncacheable[T any](w *wrapped, s *keyState, ctx context.Context, run func(context.Context) T, cancelled func(context.Context) T) T {
	long := s.tooLong
	putState(s)
	w.c.noteUncacheable(long)
	if ctx != nil && ctx.Err() != nil {
		w.c.e.rec.Abandoned(1)
		return cancelled(ctx)
	}
	return runAlone(w, tally{&w.c.e.rec, false}, ctx, run) // timed, and counted as Led
}

// noteUncacheable counts a call or Set that is not stored because its key
// can never hit again, and logs it through the cache's logger.
func (c *Cache) noteUncacheable(tooLong bool) {
	c.e.rec.Uncacheable(1)
	if c.e.logger == nil {
		return
	}
	reason := "an argument holds a value memo cannot identify (a func in an unexported field, or nesting deeper than 1000)"
	if tooLong {
		reason = "its key is longer than 4 MiB"
	}
	c.e.logger.LogAttrs(context.Background(), slog.LevelWarn, "memo: call not cached: its key can never hit again",
		slog.String("cache", c.e.name), slog.String("reason", reason))
}
