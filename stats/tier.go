package stats

// Tier is a snapshot of a shared tier's figures: a second-level store that
// several processes read through, such as package redistier's Redis tier.
// It is the shape in which the exporters (memoprom, memootel) and the
// debug page (memohttp) take a tier's figures, so that they depend on no
// tier implementation: a tier's own statistics are converted to it in a
// func registered with each (for example memoprom.WithTier). It is a plain
// value; its zero value is a tier with no activity.
type Tier struct {
	// Hits and Misses count lookups in the tier; a value that could not be
	// decoded is a miss (and a DecodeError).
	Hits, Misses uint64
	// Errors counts operations on the tier that failed or ran out of time;
	// the caller went on without the tier.
	Errors uint64
	// DecodeErrors counts values found in the tier that could not be
	// decoded (another version's format, a corrupt value).
	DecodeErrors uint64
	// LeaseWaits counts callers that waited for another process to finish
	// an execution instead of running their own.
	LeaseWaits uint64
	// BreakerOpens counts the times the tier's circuit breaker opened.
	BreakerOpens uint64
	// BreakerOpen reports whether the breaker is open now: while it is,
	// calls bypass the tier.
	BreakerOpen bool
	// Fills counts values this process wrote to the tier after running
	// the function (it held the key's lease).
	Fills uint64
	// LocalRuns counts loads that ran the function without the tier: the
	// tier failing, its breaker open, or a wait for another process too
	// long. Their results stayed local.
	LocalRuns uint64
	// Invalidations counts invalidations (memo.InvalidateContext) that
	// reached the tier.
	Invalidations uint64
	// Resubscribes counts the times the tier's feed of other processes'
	// invalidations was restored after a break; each flushed the local
	// entries of the tier's functions, as invalidations may have been
	// missed.
	Resubscribes uint64
	// GenerationFlushes counts flushes of the local entries of the tier's
	// functions because their generation changed under this process
	// (another replica's Clear, or a generation key that was lost and
	// started anew): they may hold values of a dropped generation.
	GenerationFlushes uint64
}

// HitRatio returns Hits / (Hits + Misses), or 0 when there were no lookups.
func (t Tier) HitRatio() float64 {
	total := t.Hits + t.Misses
	if total == 0 {
		return 0
	}
	return float64(t.Hits) / float64(total)
}
