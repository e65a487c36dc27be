package redistier

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
)

// binding is one function's connection to the tier.
type binding struct {
	t      *Tier
	f      memo.TierFunc
	base   string // <prefix>:<name>:<schema>
	genKey string
	logger *slog.Logger
	gen    atomic.Pointer[string] // the current generation; nil: unknown, read it first
	known  atomic.Pointer[string] // the last generation this process used; nil: none yet
	clears atomic.Uint64          // Clear messages received and Clears made here (see readGeneration)
	// genMu makes a generation read's check of clears and its
	// setGeneration one step against Clear's own update.
	genMu sync.Mutex
	// pendingClear is set by a Clear that did not reach Redis: it is
	// retried before the function uses Redis again, so that values from
	// before the Clear are never read after Redis comes back.
	pendingClear atomic.Bool
	// pending holds the invalidations that did not reach Redis, by
	// digest: the tier retries them (Tier.retryLoop), and until one lands
	// its key is not read from Redis by this process (see Load).
	pendingMu  sync.Mutex
	pending    map[[32]byte]pendingKey
	pendingSeq uint64 // the last pendingKey.seq given
	// clearSeq is the pendingSeq of the last overflow past maxPending
	// (guarded by pendingMu): a Clear that landed covers it only if it took
	// its sequence after it.
	clearSeq uint64
}

// pendingKey is an invalidation kept for retry; seq orders the failures,
// so that a retry or a Clear that landed removes only the failures that
// came before it, never a later one of the same key.
type pendingKey struct {
	key memo.TierKey
	seq uint64
}

// maxPending bounds the invalidations a binding keeps for retry: past it,
// the function's whole generation is dropped instead (a pending Clear), so
// that everything misses rather than anything going stale.
const maxPending = 1 << 16

// The Lua scripts. KEYS[1] is a value key, KEYS[2] its lease; both carry
// the same hash tag, so they live in one Cluster slot.
var (
	// acquire returns {1, value, pttl} for a value, {2} when the caller
	// now holds the lease, or {0, pttl} with the lease's remaining time. A
	// lease with no expiry is none of memo's (each is set with PX): it is
	// given one lease period, so that it cannot hold every caller of its
	// key to the longest wait for ever.
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {1, v, redis.call('PTTL', KEYS[1])} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
local p = redis.call('PTTL', KEYS[2])
if p == -1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) p = tonumber(ARGV[2]) end
return {0, p}`)
	// refresh is acquire for a refresh: a value counts only if its
	// envelope's created-at (bytes 13 to 20, big-endian Unix nanoseconds)
	// is after ARGV[3] (the same 8 bytes); otherwise the lease is taken
	// even though an older value stands. Byte by byte, so that the
	// comparison is exact (Lua's numbers are doubles) and independent of
	// the locale (string comparison uses strcoll).
	refreshScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and #v >= 20 then
  for i = 1, 8 do
    local a, b = string.byte(v, 12 + i), string.byte(ARGV[3], i)
    if a ~= b then
      if a > b then return {1, v, redis.call('PTTL', KEYS[1])} end
      break
    end
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
local p = redis.call('PTTL', KEYS[2])
if p == -1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) p = tonumber(ARGV[2]) end
return {0, p}`)
	// fill writes the value only while the caller's lease stands: an
	// invalidation deletes the lease, and so fences the fill.
	fillScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`)
	// release gives up the caller's lease without a value; the message
	// (ARGV[3]) says whether the waiters retry the lease (the holder left)
	// or run on their own (its execution failed or was not storable).
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)
	// renew extends the caller's lease.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`)
	// generation returns the function's generation, starting a fresh,
	// random one (ARGV[1]) when the key is missing (never written, or
	// evicted): values stored under a generation that was lost must all
	// miss, so the new one is published as a Clear (ARGV[3]), which every
	// replica flushes for.
	generationScript = redis.NewScript(`
local g = redis.call('GET', KEYS[1])
if g then return g end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return ARGV[1]`)
	// invalidate deletes a value and its lease and tells the replicas.
	invalidateScript = redis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`)
)

// MaxLocalAge implements [memo.TierBinding]: the tier's WithMaxLocalAge.
func (b *binding) MaxLocalAge() time.Duration { return b.t.o.maxLocalAge }

// Unbind implements [memo.TierBinding]: the tier forgets the function.
func (b *binding) Unbind() { b.t.unbind(b) }

// generation returns the function's current generation, reading it when
// unknown. ok is false when Redis could not tell. A generation key that is
// missing (evicted, or never written) is never read as a default: the
// read starts a fresh generation, so that values stored under the lost
// one all miss (see generationScript).
func (b *binding) generation(ctx context.Context) (string, bool) {
	if b.pendingClear.Load() {
		if b.Clear(ctx) != nil {
			return "", false
		}
	}
	if g := b.gen.Load(); g != nil {
		return *g, true
	}
	return b.readGeneration(ctx)
}

// noGeneration is what a function knows (binding.known) once a read of
// its generation has failed before any succeeded: its loads then run
// locally and keep their results, so a Clear heard of (no message names
// noGeneration) and the first generation read that succeeds flush them.
// A function that has read nothing yet knows nil, and a Clear then flushes
// nothing: at a cold start, a generation's creation is itself published
// as a Clear.
var noGeneration = new(string)

// readGeneration reads the generation from Redis (creating it when it is
// missing) and makes it current; a generation that differs from the one
// this process knew flushes the function's local entries.
func (b *binding) readGeneration(ctx context.Context) (g string, ok bool) {
	defer func() {
		if !ok {
			b.known.CompareAndSwap(nil, noGeneration)
		}
	}()
	t := b.t
	for range 3 {
		// A Clear's message that arrives during the read, or a Clear
		// made here meanwhile, may name a later generation than the one
		// read: read again.
		epoch := b.clears.Load()
		fresh := newGeneration()
		var g string
		err := t.do(ctx, func(ctx context.Context) error {
			// A plain GET first (a script is a write, which CLIENT PAUSE
			// WRITE holds back); the script only when the key is missing.
			var err error
			g, err = t.rdb.Get(ctx, b.genKey).Result()
			if errors.Is(err, redis.Nil) {
				g, err = generationScript.Run(ctx, t.rdb, []string{b.genKey}, fresh, t.channel, message(msgClear, b.base, fresh, nil)).Text()
			}
			return err
		})
		if err != nil {
			return "", false
		}
		b.genMu.Lock()
		if b.clears.Load() == epoch {
			b.setGeneration(g)
			b.genMu.Unlock()
			return g, true
		}
		b.genMu.Unlock()
	}
	return "", false
}

// setGeneration makes g the function's generation, and flushes its local
// entries when this process knew another one: they may hold values of a
// generation that was dropped.
func (b *binding) setGeneration(g string) {
	old := b.known.Swap(&g)
	b.gen.Store(&g)
	if old != nil && *old != g {
		b.t.st.generationFlushes.Add(1)
		b.f.Flush()
	}
}

// newGeneration returns a random generation.
func newGeneration() string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// keys returns the value key, the lease key and the generation-and-digest
// part that messages carry.
func (b *binding) keys(gen string, key memo.TierKey) (vk, lk, rest string) {
	rest = gen + ":{" + hex.EncodeToString(key.Digest[:]) + "}"
	return b.base + ":" + rest + ":v", b.base + ":" + rest + ":l", rest
}

// ttl returns how long a value lives in Redis: the TTL memo gave its
// results (WithTTL, WithTTLFunc), or the tier's WithTTL for results
// without one.
func (b *binding) ttl(given time.Duration) time.Duration {
	if given > 0 {
		return given
	}
	if b.f.TTL > 0 {
		return b.f.TTL
	}
	return b.t.o.ttl
}

// Load implements [memo.TierBinding]: see the package documentation.
func (b *binding) Load(ctx context.Context, key memo.TierKey, compute memo.TierCompute) ([]any, time.Duration, bool) {
	return b.load(ctx, key, nil, compute)
}

// Refresh implements [memo.TierBinding]: Load with the refresh script,
// which takes only a value created after since, and otherwise the lease
// (see the package documentation).
func (b *binding) Refresh(ctx context.Context, key memo.TierKey, since time.Time, compute memo.TierCompute) ([]any, time.Duration, bool) {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(max(since.UnixNano(), 0)))
	b.t.st.refreshes.Add(1)
	return b.load(ctx, key, s[:], compute)
}

// isPending reports whether an invalidation of key has not reached Redis
// yet: the key is then local to this process.
func (b *binding) isPending(key memo.TierKey) bool {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	_, ok := b.pending[key.Digest]
	return ok
}

// remaining turns a PTTL reply to a read sent at start into how long the
// value has left from now: less the time since start, and a millisecond
// for PTTL's rounding, so that a local copy never outlives the value in
// Redis. 0 when the value has no TTL, the reply is not one, or nothing is
// left.
func remaining(v any, start time.Time) time.Duration {
	ms, ok := v.(int64)
	if !ok {
		return 0
	}
	return max(time.Duration(ms-1)*time.Millisecond-time.Since(start), 0)
}

// Peek implements [memo.TierPeeker]: the plain read of Load (GET and
// PTTL) for every key, in one pipeline (one round trip per node of a
// Cluster), taking no lease. A key that is pending invalidation, or whose
// value is missing or does not decode, is not found.
func (b *binding) Peek(ctx context.Context, keys []memo.TierKey) ([][]any, []time.Duration, []bool) {
	t := b.t
	res := make([][]any, len(keys))
	ttls := make([]time.Duration, len(keys))
	found := make([]bool, len(keys))
	if len(keys) == 0 || t.isClosed() || !t.synced(ctx) {
		return res, ttls, found
	}
	gen, ok := b.generation(ctx)
	if !ok {
		return res, ttls, found
	}
	vks := make([]string, len(keys))
	gets := make([]*redis.StringCmd, len(keys))
	lefts := make([]*redis.DurationCmd, len(keys))
	start := time.Now()
	err := t.do(ctx, func(ctx context.Context) error {
		_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, key := range keys {
				vks[i], _, _ = b.keys(gen, key)
				gets[i] = p.Get(ctx, vks[i])
				lefts[i] = p.PTTL(ctx, vks[i])
			}
			return nil
		})
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return res, ttls, found
	}
	for i, key := range keys {
		if gets[i] == nil || gets[i].Err() != nil || b.isPending(key) {
			continue
		}
		if r, ok := b.decode(vks[i], []byte(gets[i].Val())); ok {
			res[i], ttls[i], found[i] = r, remaining(int64(lefts[i].Val()/time.Millisecond), start), true
		}
	}
	return res, ttls, found
}

// load is Load, or Refresh when since is not nil (8 bytes, big-endian
// Unix nanoseconds).
func (b *binding) load(ctx context.Context, key memo.TierKey, since []byte, compute memo.TierCompute) ([]any, time.Duration, bool) {
	t := b.t
	local := func() ([]any, time.Duration, bool) {
		t.st.localRuns.Add(1)
		compute(ctx)
		return nil, 0, false
	}
	if t.isClosed() || b.isPending(key) || !t.synced(ctx) {
		return local()
	}
	gen, ok := b.generation(ctx)
	if !ok {
		return local()
	}
	vk, lk, rest := b.keys(gen, key)

	if since == nil {
		// The common case first: a plain read. (A refresh expects an old
		// value there, and goes to its script at once.)
		var (
			get  *redis.StringCmd
			left *redis.DurationCmd
		)
		start := time.Now()
		err := t.do(ctx, func(ctx context.Context) error {
			// GET and then PTTL in one round trip. Not MULTI/EXEC or a
			// script, which CLIENT PAUSE WRITE (and a read-only replica)
			// would refuse: a write between the two (an invalidation) is
			// also published, and drops the local copy.
			_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				get = p.Get(ctx, vk)
				left = p.PTTL(ctx, vk)
				return nil
			})
			return err
		})
		switch {
		case err != nil && !errors.Is(err, redis.Nil):
			return local()
		case get.Err() == nil:
			if res, ok := b.decode(vk, []byte(get.Val())); ok {
				return res, remaining(int64(left.Val()/time.Millisecond), start), true
			}
			// Garbage at the key: nobody can fill it while it stands, so
			// run locally (the next invalidation or the TTL clears it).
			return local()
		}
		t.st.misses.Add(1)
	}

	tok := token()
	deadline := time.Now().Add(t.o.maxWait)
	var start time.Time
	waited := false
	for {
		w := t.waitChan(vk) // before acquiring, so that no wake is missed
		var reply []any
		start = time.Now()
		err := t.do(ctx, func(ctx context.Context) error {
			var err error
			if since != nil {
				reply, err = refreshScript.Run(ctx, t.rdb, []string{vk, lk}, tok, millis(t.o.lease), string(since)).Slice()
			} else {
				reply, err = acquireScript.Run(ctx, t.rdb, []string{vk, lk}, tok, millis(t.o.lease)).Slice()
			}
			return err
		})
		if err != nil || len(reply) == 0 {
			t.dropWait(vk, w)
			return local()
		}
		switch reply[0] {
		case int64(1):
			t.dropWait(vk, w)
			s, _ := reply[1].(string)
			var left time.Duration
			if len(reply) > 2 {
				left = remaining(reply[2], start)
			}
			if res, ok := b.decode(vk, []byte(s)); ok {
				if since != nil {
					t.st.refreshHits.Add(1)
				}
				return res, left, true
			}
			return local()
		case int64(2):
			t.dropWait(vk, w)
			b.lead(ctx, key, vk, lk, rest, tok, compute)
			return nil, 0, false
		}
		if !waited {
			waited = true
			t.st.leaseWaits.Add(1)
			if t.o.waiting != nil {
				t.o.waiting("lease")
			}
		}
		// Another process holds the lease: wait for its fill, or for the
		// lease to expire (the holder died), whichever comes first.
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			t.dropWait(vk, w)
			return local()
		}
		wait := min(left, 200*time.Millisecond)
		if len(reply) > 1 {
			if p, ok := reply[1].(int64); ok && p >= 0 && time.Duration(p+1)*time.Millisecond < wait {
				wait = time.Duration(p+1) * time.Millisecond
			}
		}
		sleepCtx(ctx, wait, w.ch)
		if w.failed.Load() || t.isClosed() {
			// The holder's execution ended without a value to share (it
			// failed, or its result was not storable): every waiter runs
			// on its own at once rather than one after another under the
			// lease. A closed tier no longer waits on Redis.
			t.dropWait(vk, w)
			if w.failed.Load() {
				t.st.failedWakes.Add(1)
			}
			return local()
		}
	}
}

// millis converts d to the milliseconds Redis takes for PX, saturating
// (see saturate).
func millis(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// lead runs compute as the holder of the lease and fills the value.
func (b *binding) lead(ctx context.Context, key memo.TierKey, vk, lk, rest, tok string, compute memo.TierCompute) {
	t := b.t
	stop := make(chan struct{})
	heartbeat := make(chan struct{})
	go func() { // keep the lease while the function runs, and ctx lives
		defer close(heartbeat)
		tick := time.NewTicker(max(t.o.lease/3, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				// A hung execution whose context ended (a refresh past its
				// deadline, callers that all left) must not hold the key
				// for ever: the lease runs out, and another replica takes
				// over.
				return
			case <-tick.C:
				_ = t.do(context.Background(), func(ctx context.Context) error {
					return renewScript.Run(ctx, t.rdb, []string{lk}, tok, millis(t.o.lease)).Err()
				})
			}
		}
	}()
	filled, returned := false, false
	defer func() {
		close(stop)
		<-heartbeat
		if !filled {
			// An error, a refused result, a panic, an encoding failure:
			// give the lease up. When the execution returned (failed, or
			// refused), the waiters run on their own at once; when it
			// panicked, one of them takes the lease over.
			kind := byte(msgRelease)
			if returned {
				kind = msgFailed
			}
			_ = t.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
				return releaseScript.Run(ctx, t.rdb, []string{lk}, tok, t.channel, message(kind, b.base, rest, nil)).Err()
			})
		}
	}()
	res, ttl, store := compute(ctx)
	returned = true
	if !store {
		return
	}
	if d := b.ttl(ttl); d > 0 && d < time.Millisecond {
		// Redis keeps a value for whole milliseconds (PX): a shorter TTL
		// (WithTTLFunc can give one) would be stretched, and another
		// replica would be served the value after it ended. It stays
		// local.
		return
	}
	val, err := t.o.codec.Encode(appendHeader(nil, t.o.codec.ID(), b.f.Schema, vk, time.Now()), res)
	if err != nil || len(val) > t.o.maxValue {
		t.st.encodeErrors.Add(1)
		if err == nil {
			err = fmt.Errorf("%d bytes, over the limit of %d", len(val), t.o.maxValue)
		}
		if b.logger != nil {
			b.logger.Warn("memo: redistier: result not stored", "func", b.f.Name, "err", err)
		}
		return
	}
	var n int64
	err = t.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		var err error
		n, err = fillScript.Run(ctx, t.rdb, []string{vk, lk}, tok, val, millis(b.ttl(ttl)), t.channel, message(msgFill, b.base, rest, nil)).Int64()
		return err
	})
	if err != nil {
		return
	}
	filled = true
	if n == 1 {
		t.st.fills.Add(1)
	} else {
		t.st.fenced.Add(1)
	}
}

// decode opens the value at vk; a value that does not decode is counted
// and logged, and is a miss.
func (b *binding) decode(vk string, raw []byte) (res []any, ok bool) {
	t := b.t
	fail := func(err error) ([]any, bool) {
		t.st.decodeErrors.Add(1)
		if b.logger != nil {
			b.logger.Warn("memo: redistier: undecodable value treated as a miss", "func", b.f.Name, "key", vk, "err", err)
		}
		return nil, false
	}
	if len(raw) > t.o.maxValue {
		return fail(fmt.Errorf("%w: %d bytes, over the limit of %d", errUndecodable, len(raw), t.o.maxValue))
	}
	payload, err := openEnvelope(raw, t.o.codec.ID(), b.f.Schema, vk)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if r := recover(); r != nil {
			res, ok = fail(fmt.Errorf("%w: the codec panicked: %v", errUndecodable, r))
		}
	}()
	res, err = t.o.codec.Decode(payload, b.f.Results)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", errUndecodable, err))
	}
	t.st.hits.Add(1)
	return res, true
}

// Invalidate implements [memo.TierBinding]: it deletes the value and the
// lease (fencing a fill in flight) and publishes the key, so that every
// replica drops it locally. When Redis cannot be reached, it returns the
// error and keeps the invalidation for the tier to retry until it lands
// (Tier.retryLoop); meanwhile this process does not read the key from
// Redis (Load runs it locally and writes nothing).
func (b *binding) Invalidate(ctx context.Context, key memo.TierKey) error {
	if b.t.isClosed() {
		return errors.New("memo: redistier: the tier is closed")
	}
	if err := b.invalidate(ctx, key); err != nil {
		b.addPending(key)
		return err
	}
	return nil
}

// invalidate runs one invalidation of key in Redis.
func (b *binding) invalidate(ctx context.Context, key memo.TierKey) error {
	t := b.t
	// The generation is read afresh, not taken from memory, before the
	// delete and again after it: a Clear (or a generation restarted after
	// its key was lost) whose message has not arrived yet must not make
	// this invalidation miss a fill under the new generation.
	var last string
	for range 4 {
		gen, ok := b.readGeneration(ctx)
		if !ok {
			return fmt.Errorf("memo: redistier: Redis unreachable, %q not invalidated there", b.f.Name)
		}
		if gen == last {
			t.st.invalidations.Add(1)
			return nil
		}
		vk, lk, rest := b.keys(gen, key)
		err := t.do(ctx, func(ctx context.Context) error {
			return invalidateScript.Run(ctx, t.rdb, []string{vk, lk}, t.channel, message(msgInvalidate, b.base, rest, key.Args)).Err()
		})
		if err != nil {
			return fmt.Errorf("memo: redistier: invalidating %q: %w", b.f.Name, err)
		}
		last = gen
	}
	return fmt.Errorf("memo: redistier: invalidating %q: the generation kept changing", b.f.Name)
}

// addPending keeps key for the tier to retry; past maxPending keys the
// function's whole generation is dropped instead.
func (b *binding) addPending(key memo.TierKey) {
	b.pendingMu.Lock()
	if b.pending == nil {
		b.pending = make(map[[32]byte]pendingKey)
	}
	if _, ok := b.pending[key.Digest]; ok || len(b.pending) < maxPending {
		b.pendingSeq++
		b.pending[key.Digest] = pendingKey{key, b.pendingSeq}
	} else {
		b.pendingSeq++
		b.clearSeq = b.pendingSeq
		b.pendingClear.Store(true)
		b.gen.Store(nil)
	}
	b.pendingMu.Unlock()
	b.t.st.invalidationsPending.Add(1)
	if b.logger != nil {
		b.logger.Warn("memo: redistier: an invalidation did not reach Redis; retrying in the background, and the key stays local to this process meanwhile", "func", b.f.Name)
	}
	b.t.kickRetry()
}

// retryPending retries the binding's pending invalidations (and Clear),
// and reports whether any is left.
func (b *binding) retryPending(ctx context.Context) bool {
	if b.pendingClear.Load() && b.Clear(ctx) != nil {
		return true
	}
	b.pendingMu.Lock()
	keys := make([]pendingKey, 0, len(b.pending))
	for _, k := range b.pending {
		keys = append(keys, k)
	}
	b.pendingMu.Unlock()
	left := false
	for _, k := range keys {
		if err := b.invalidate(ctx, k.key); err != nil {
			left = true
			break // Redis is failing: wait for the next round
		}
		b.pendingMu.Lock()
		// A failure of the key after the one retried (its seq is later)
		// is retried on its own.
		if cur, ok := b.pending[k.key.Digest]; ok && cur.seq == k.seq {
			delete(b.pending, k.key.Digest)
		}
		b.pendingMu.Unlock()
		b.t.st.invalidationsRetried.Add(1)
	}
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	return left || len(b.pending) > 0 || b.pendingClear.Load()
}

// Clear implements [memo.TierBinding]: the function moves to a new,
// random generation, and the replicas learn it and flush.
func (b *binding) Clear(ctx context.Context) error {
	t := b.t
	if t.isClosed() {
		return errors.New("memo: redistier: the tier is closed")
	}
	gen := newGeneration()
	b.pendingMu.Lock()
	upto := b.pendingSeq // the failures the new generation covers
	b.pendingMu.Unlock()
	err := t.do(ctx, func(ctx context.Context) error {
		_, err := t.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, b.genKey, gen, 0)
			p.Publish(ctx, t.channel, message(msgClear, b.base, gen, nil))
			return nil
		})
		return err
	})
	if err != nil {
		b.pendingClear.Store(true)
		b.gen.Store(nil) // unknown until read again
		if b.logger != nil {
			b.logger.Warn("memo: redistier: Clear did not reach Redis", "func", b.f.Name, "err", err)
		}
		t.kickRetry()
		return fmt.Errorf("memo: redistier: clearing %q: %w", b.f.Name, err)
	}
	// A generation read in flight may have read the generation before
	// this one: it reads again rather than make that one current.
	b.genMu.Lock()
	b.clears.Add(1)
	b.known.Store(&gen)
	b.gen.Store(&gen)
	b.genMu.Unlock()
	// Pending invalidations that failed before the Clear are covered:
	// the generation they were for is gone. One that failed since may be
	// of a value filled under the new generation: it is retried, and so
	// is an overflow since (a pending Clear of its own).
	b.pendingMu.Lock()
	if b.clearSeq <= upto {
		b.pendingClear.Store(false)
	}
	maps.DeleteFunc(b.pending, func(_ [32]byte, k pendingKey) bool { return k.seq <= upto })
	b.pendingMu.Unlock()
	t.st.clears.Add(1)
	return nil
}
