package memo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/memokit/memo/internal/engine"
	"github.com/memokit/memo/internal/keys"
)

// bindTier binds w to cfg's tier; it panics with a memo: error when the
// tier refuses the function. reflective tells a Decorate'd function.
func (w *wrapped) bindTier(cfg config, reflective bool) {
	if cfg.tier == nil {
		return
	}
	t := w.typ
	var results []reflect.Type
	for i := range t.NumOut() {
		if i != w.errOut {
			results = append(results, t.Out(i))
		}
	}
	// The tier holds the cache weakly: a decorated function that is
	// dropped must not be kept alive by the tier it was bound to.
	wc := weak.Make(w.c)
	c := w.c
	fid := w.fid
	f := TierFunc{
		Name:    cfg.name,
		Schema:  keys.SchemaOf(t),
		Results: results,
		TTL:     c.e.Ttl,
		Logger:  c.e.Logger,
		Drop: func(args []byte) {
			if c := wc.Value(); c != nil {
				k := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(args)), fid)
				k = append(k, args...)
				c.e.Remove(k, engine.HashKey(k))
			}
		},
		Flush: func() {
			if c := wc.Value(); c != nil {
				c.e.Flush()
			}
		},
	}
	release, err := claimTierName(cfg.tier, cfg.name, w)
	if err != nil {
		panic(err)
	}
	b, err := cfg.tier.Bind(f)
	if err != nil {
		release()
		panic(&bindError{cfg.name, err})
	}
	if b == nil {
		release()
		panic(fmt.Errorf("memo: WithTier(%q): the tier's Bind returned no binding", cfg.name))
	}
	w.tier = &tierFunc{b: b, name: cfg.name, schema: f.Schema, maxAge: max(b.MaxLocalAge(), 0), outcome: !reflective && t.NumOut() == 2, reflective: reflective}
	w.warnAgeCap(cfg.name)
	unregister := c.addTier(w.tier.b)
	// A collected function unbinds: the tier and a shared cache's Clear
	// forget it. The cleanup holds neither w nor c.
	runtime.AddCleanup(w, func(b TierBinding) {
		unregister()
		b.Unbind()
	}, b)
}

// warnAgeCap logs at Warn, through the function's logger, when the tier's
// bound on a local entry's age cuts what the function's options ask for:
// a refresh interval at or past the bound never refreshes (the entry is
// gone first), and a stale-if-error window that would keep an entry past
// the bound is cut there.
func (w *wrapped) warnAgeCap(name string) {
	l, maxAge, fo := w.c.e.Logger, w.tier.maxAge, w.fo
	if l == nil || maxAge <= 0 || fo == nil {
		return
	}
	if fo.Refresh >= maxAge {
		l.Warn("memo: the tier's MaxLocalAge is not above WithRefreshAfter: local entries are removed before a refresh is due, and are read again from the tier instead",
			"func", name, "refresh_after", fo.Refresh, "max_local_age", maxAge)
	}
	if fo.Stale > 0 && (w.c.e.Ttl == 0 || w.c.e.Ttl+fo.Stale > maxAge) {
		l.Warn("memo: the tier's MaxLocalAge caps WithStaleIfError: no local entry, stale or not, is kept past it",
			"func", name, "stale_if_error", fo.Stale, "ttl", w.c.e.Ttl, "max_local_age", maxAge)
	}
}

// tierKey returns the tier key of the stable key in s (its function
// number, 8 bytes, left out).
func (tf *tierFunc) tierKey(s *keys.State) TierKey {
	args := bytes.Clone(s.Buf[8:])
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte("memo/tier/1\x00"))
	h.Write(binary.AppendUvarint(n[:0], uint64(len(tf.name))))
	h.Write([]byte(tf.name))
	h.Write(tf.schema[:])
	h.Write(args)
	var k TierKey
	h.Sum(k.Digest[:0])
	k.Args = args
	return k
}

// ageCap is the tier's bound on a local entry's age, 0 for none.
func (w *wrapped) ageCap() time.Duration {
	if w.tier == nil {
		return 0
	}
	return w.tier.maxAge
}

// tierVerdict carries to the local store the decision an execution
// through the tier took (see viaTier), so that WithCacheIf and
// WithTTLFunc run once per execution and the local cache and the tier
// agree. It is written and read by the execution's goroutine.
type tierVerdict struct {
	set, failed, store bool
	ttl                time.Duration
}

// tierJudge returns w.judge, except for an execution whose decision tv
// holds (tv may be nil).
func (w *wrapped) tierJudge(tv *tierVerdict) engine.Verdict {
	if tv == nil {
		return w
	}
	return engine.VerdictFunc(func(val any) (bool, bool, time.Duration) {
		if tv.set {
			tv.set = false
			return tv.failed, tv.store, tv.ttl
		}
		return w.judge(val)
	})
}

// resultTTL reports whether w's results have a TTL (WithTTL or
// WithTTLFunc): a local copy of a tier value then keeps to the value's
// remaining TTL.
func (w *wrapped) resultTTL() bool {
	return w.c.e.Ttl > 0 || (w.fo != nil && w.fo.TtlFunc != nil)
}

// hitTTL returns the local TTL of a value the tier returned with ttl to
// live there, and whether to store it locally at all: a value whose
// results have a TTL expires locally when it would in the tier (rounded
// down, see roundTTL), and one the tier cannot date is not kept.
func (w *wrapped) hitTTL(ttl time.Duration) (time.Duration, bool) {
	if !w.resultTTL() {
		return w.localTTL(0), true
	}
	if ttl <= 0 {
		return 0, false
	}
	if w.c.e.Ttl > 0 {
		ttl = min(ttl, w.c.e.Ttl)
	}
	return w.localTTL(roundTTL(ttl)), true
}

// roundTTL rounds d down to its three most significant bits, so that the
// remaining TTLs of values read from a tier fall into few expiry lists
// (one per distinct TTL, see Cache.linkExpiry), at the cost of at most a
// quarter of a local copy's life.
func roundTTL(d time.Duration) time.Duration {
	n := bits.Len64(uint64(d))
	if n <= 3 {
		return d
	}
	return time.Duration(uint64(d) &^ (1<<(n-3) - 1))
}

// resultSetter is implemented by *outcome[R], to rebuild a typed result
// from the tier's values.
type resultSetter interface{ setResult(v any) }

// tierKeyOf returns the tier key of s for a miss or a refresh of a tiered
// function, or nil when w has no tier or the key cannot be shared (the
// call then stays local). The miss path's hook for a tier: the local
// leader of a miss runs through viaTier with the tier's Load, which asks
// the tier first, and a refresh through refreshTiered.
func tierKeyOf(w *wrapped, s *keys.State) *TierKey {
	if w.tier != nil && s.Ambiguous != nil {
		w.c.noteAmbiguous(s.Ambiguous)
	}
	if w.tier == nil || !s.Shareable() {
		return nil
	}
	k := w.tier.tierKey(s)
	return &k
}

// refreshTiered returns run wrapped so that a refresh of key (see
// tierKeyOf) goes through the tier's Refresh: it takes a value another
// replica refreshed less than d ago, or runs under the key's lease and
// writes its result through to the tier. The refresh stores locally by
// the decision the tier's path took, which it leaves in tv.
func refreshTiered[T any](w *wrapped, cl *engine.Call, tv *tierVerdict, key TierKey, d time.Duration, run func(context.Context) T) func(context.Context) T {
	load := func(ctx context.Context, key TierKey, compute TierCompute) ([]any, time.Duration, bool) {
		return w.tier.b.Refresh(ctx, key, time.Now().Add(-d), compute)
	}
	return viaTier(w, load, key, run, cl, tv)
}

// viaTier returns run wrapped to go through load (a binding's Load or
// Refresh) for key. The execution's results go to the tier only if its
// arguments still give key (see call.verify): cl is the execution, or nil
// when it is the one the execution's context carries. tv receives the
// decision taken on the results (stored or not, for how long), which the
// local store then follows (see tierJudge): WithCacheIf and WithTTLFunc
// run once.
func viaTier[T any](w *wrapped, load func(context.Context, TierKey, TierCompute) ([]any, time.Duration, bool), key TierKey, run func(context.Context) T, cl *engine.Call, tv *tierVerdict) func(context.Context) T {
	return func(ctx context.Context) T {
		var (
			out T
			ran bool
		)
		tv.set = false
		lctx := ctx
		if lctx == nil {
			lctx = context.Background()
		}
		res, left, hit := load(lctx, key, func(cctx context.Context) ([]any, time.Duration, bool) {
			ran = true
			if ctx == nil {
				out = run(nil)
			} else {
				out = run(cctx)
			}
			failed, store, ttl := w.judgeRaw(any(out))
			tv.failed, tv.store, tv.ttl, tv.set = failed, store, w.localTTL(ttl), true
			res, ok := w.tierValues(any(out))
			return res, ttl, ok && !failed && store && unmoved(cctx, cl)
		})
		if ran {
			return out
		}
		if !hit {
			return run(ctx)
		}
		w.c.e.Rec.TierHit() // Stats.TierHits: this execution did not run the function
		tv.ttl, tv.store = w.hitTTL(left)
		tv.failed, tv.set = false, true
		return tierValue[T](w, res)
	}
}

// unmoved reports whether the execution cl (or, when cl is nil, the one
// ctx carries) may store its results: it has no verify, or its arguments
// still give its key. A caller that left may have changed what the key was
// computed from (see call.verify); execute checks the same before storing
// locally, but the tier is written before execute sees the results.
func unmoved(ctx context.Context, cl *engine.Call) bool {
	if cl == nil && ctx != nil {
		cl, _ = ctx.Value(engine.FlightKey{}).(*engine.Call)
	}
	return cl == nil || cl.Verify == nil || cl.Verify(cl.Key)
}

func (w *wrapped) tierValues(val any) ([]any, bool) {
	switch {
	case w.tier.reflective:
		vs := val.([]reflect.Value)
		if w.errOut >= 0 && !vs[w.errOut].IsNil() {
			return nil, false
		}
		out := make([]any, 0, len(vs))
		for i, v := range vs {
			if i != w.errOut {
				out = append(out, v.Interface())
			}
		}
		return out, true
	case w.tier.outcome:
		if val.(failer).failure() != nil {
			return nil, false
		}
		return []any{val.(interface{ result() any }).result()}, true
	case w.errOut == 0: // a typed Func whose only result is an error
		return []any{}, val == nil
	}
	return []any{val}, true
}

// tierValue rebuilds the value the miss path returns from the tier's
// results.
func tierValue[T any](w *wrapped, res []any) T {
	var t T
	switch {
	case w.tier.reflective:
		out := make([]reflect.Value, w.typ.NumOut())
		j := 0
		for i := range out {
			rt := w.typ.Out(i)
			v := reflect.New(rt).Elem()
			if i != w.errOut {
				if res[j] != nil {
					v.Set(reflect.ValueOf(res[j]))
				}
				j++
			}
			out[i] = v
		}
		return any(out).(T)
	case w.tier.outcome:
		any(&t).(resultSetter).setResult(res[0])
		return t
	case w.errOut == 0:
		return t
	}
	return as[T](res[0])
}

// tierNames holds the name of every live tiered function, per tier: a
// name identifies a function's results in its tier (in every replica), so
// two live functions of one process bound to one tier under one name
// would read each other's results. The registry holds the functions
// weakly: a function that is dropped frees its name.
var tierNames sync.Map

type tierName struct {
	t    Tier // nil for a tier whose type is not comparable: the name alone
	name string
}

// claimTierName records w as the function named name in t, or returns the
// memo: error that Decorate panics with when a live function already has
// that name there. release gives the name up (a decoration that fails).
func claimTierName(t Tier, name string, w *wrapped) (release func(), err error) {
	k := tierName{name: name}
	if reflect.TypeOf(t).Comparable() {
		k.t = t
	}
	wp := weak.Make(w)
	for {
		old, loaded := tierNames.LoadOrStore(k, wp)
		if !loaded {
			break
		}
		if ow := old.(weak.Pointer[wrapped]).Value(); ow != nil {
			return nil, fmt.Errorf("memo: WithName(%q) is already used by a live function (%v) decorated WithTier with the same tier: the name identifies a function's results in the tier, shared by every replica, so the two would return each other's results; give each tiered function a name of its own (a function decorated once per instance, such as a method value, needs a name per instance)", name, ow.typ)
		}
		if tierNames.CompareAndSwap(k, old, wp) {
			break
		}
	}
	ref := tierNameRef{k, wp}
	runtime.AddCleanup(w, releaseTierName, ref)
	return func() { releaseTierName(ref) }, nil
}

type tierNameRef struct {
	k  tierName
	wp weak.Pointer[wrapped]
}

// releaseTierName frees a collected function's name, unless another
// function has claimed it since.
func releaseTierName(r tierNameRef) { tierNames.CompareAndDelete(r.k, r.wp) }

// bindError is the panic of a Decorate whose tier refused to bind the
// function: it names the function and says the tier's reason once (a
// reason that starts "memo: " loses that prefix), and unwraps to it.
type bindError struct {
	name string
	err  error
}

func (e *bindError) Error() string {
	return fmt.Sprintf("memo: WithTier(%q): %s", e.name, strings.TrimPrefix(e.err.Error(), "memo: "))
}

func (e *bindError) Unwrap() error { return e.err }
