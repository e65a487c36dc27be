package memo

import (
	"context"

	"github.com/memokit/memo/internal/engine"
)

// startRefresh runs cl, a refresh of w's entry, in a goroutine of its own,
// with a private copy of the arguments (detach makes it, with the copiers
// of detach.go; nil when run holds nothing a caller can change) and a
// context of its own (call.startRefresh): it keeps ctx's values and
// deadline but not its cancellation, ends at cl.until at the latest, and
// carries cl, so that a call for cl's key made with it can tell. It runs
// through execute, as any execution. tk, when not nil, is the key's tier
// key (WithTier): the refresh then goes through the tier's Refresh (see
// refreshTiered), under that context, so that a refresh that hangs gives
// the key's lease up when its time is up.
func startRefresh[T any](w *wrapped, cl *engine.Call, ctx context.Context, run func(context.Context) T, detach func() (func(context.Context) T, func(string) bool), verify func(string) bool, tk *TierKey) {
	if detach != nil {
		run, verify = detach() // now, while the caller's memory is still the call's
	}
	cl.Verify = verify  // the refresh outlives its caller (see call.verify)
	var tv *tierVerdict // the decision the tier's path takes (see viaTier)
	if tk != nil {
		tv = new(tierVerdict)
		run = refreshTiered(w, cl, tv, *tk, w.fo.Refresh, run)
	}
	// A function without a context ignores rctx, but a tier's Refresh
	// does not: its lease must not outlive the refresh's time.
	rctx := cl.StartRefresh(ctx, &w.c.e)
	w.c.e.Rec.RefreshStarted()
	go w.c.e.Refresh(cl, w.tierJudge(tv), func() any { return hold(w, cl, run(rctx)) })
}
