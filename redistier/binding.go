package redistier

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	// pendingClear is set by a Clear that did not reach Redis: it is
	// retried before the function uses Redis again, so that values from
	// before the Clear are never read after Redis comes back.
	pendingClear atomic.Bool
}

// The Lua scripts. KEYS[1] is a value key, KEYS[2] its lease; both carry
// the same hash tag, so they live in one Cluster slot.
var (
	// acquire returns {1, value} for a value, {2} when the caller now
	// holds the lease, or {0, pttl} with the lease's remaining time.
	acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0, redis.call('PTTL', KEYS[2])}`)
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
      if a > b then return {1, v} end
      break
    end
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0, redis.call('PTTL', KEYS[2])}`)
	// fill writes the value only while the caller's lease stands: an
	// invalidation deletes the lease, and so fences the fill.
	fillScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1`)
	// release gives up the caller's lease without a value.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`)
	// renew extends the caller's lease.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])`)
	// invalidate deletes a value and its lease and tells the replicas.
	invalidateScript = redis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 1`)
)

// MaxLocalAge implements [memo.TierBinding]: 0, since the tier bounds the
// age of local entries itself, by flushing them (see Tier.ageLoop).
func (b *binding) MaxLocalAge() time.Duration { return 0 }

// generation returns the function's current generation, reading it when
// unknown. ok is false when Redis could not tell.
func (b *binding) generation(ctx context.Context) (string, bool) {
	if b.pendingClear.Load() {
		if b.Clear(ctx) != nil {
			return "", false
		}
	}
	if g := b.gen.Load(); g != nil {
		return *g, true
	}
	var g string
	err := b.t.do(ctx, func(ctx context.Context) error {
		var err error
		g, err = b.t.rdb.Get(ctx, b.genKey).Result()
		if errors.Is(err, redis.Nil) {
			g, err = "0", nil
		}
		return err
	})
	if err != nil {
		return "", false
	}
	b.gen.CompareAndSwap(nil, &g)
	return *b.gen.Load(), true
}

// keys returns the value key, the lease key and the generation-and-digest
// part that messages carry.
func (b *binding) keys(gen string, key memo.TierKey) (vk, lk, rest string) {
	rest = gen + ":{" + hex.EncodeToString(key.Digest[:]) + "}"
	return b.base + ":" + rest + ":v", b.base + ":" + rest + ":l", rest
}

// ttl returns how long values live in Redis.
func (b *binding) ttl() time.Duration {
	if b.f.TTL > 0 {
		return b.f.TTL
	}
	return b.t.o.ttl
}

// Load implements [memo.TierBinding]: see the package documentation.
func (b *binding) Load(ctx context.Context, key memo.TierKey, compute func(context.Context) ([]any, bool)) ([]any, bool) {
	return b.load(ctx, key, nil, compute)
}

// Refresh implements [memo.TierBinding]: Load with the refresh script,
// which takes only a value created after since, and otherwise the lease
// (see the package documentation).
func (b *binding) Refresh(ctx context.Context, key memo.TierKey, since time.Time, compute func(context.Context) ([]any, bool)) ([]any, bool) {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(max(since.UnixNano(), 0)))
	b.t.st.refreshes.Add(1)
	return b.load(ctx, key, s[:], compute)
}

// load is Load, or Refresh when since is not nil (8 bytes, big-endian
// Unix nanoseconds).
func (b *binding) load(ctx context.Context, key memo.TierKey, since []byte, compute func(context.Context) ([]any, bool)) ([]any, bool) {
	t := b.t
	local := func() ([]any, bool) {
		t.st.localRuns.Add(1)
		compute(ctx)
		return nil, false
	}
	if t.isClosed() || !t.synced(ctx) {
		return local()
	}
	gen, ok := b.generation(ctx)
	if !ok {
		return local()
	}
	vk, lk, rest := b.keys(gen, key)

	if since == nil {
		// The common case first: a plain GET. (A refresh expects an old
		// value there, and goes to its script at once.)
		var raw []byte
		err := t.do(ctx, func(ctx context.Context) error {
			var err error
			raw, err = t.rdb.Get(ctx, vk).Bytes()
			return err
		})
		switch {
		case err == nil:
			if res, ok := b.decode(vk, raw); ok {
				return res, true
			}
		case errors.Is(err, redis.Nil):
		default:
			return local()
		}
		t.st.misses.Add(1)
	}

	tok := token()
	deadline := time.Now().Add(t.o.maxWait)
	waited := false
	for {
		ch := t.waitChan(vk) // before acquiring, so that no wake is missed
		var reply []any
		err := t.do(ctx, func(ctx context.Context) error {
			var err error
			if since != nil {
				reply, err = refreshScript.Run(ctx, t.rdb, []string{vk, lk}, tok, t.o.lease.Milliseconds(), string(since)).Slice()
			} else {
				reply, err = acquireScript.Run(ctx, t.rdb, []string{vk, lk}, tok, t.o.lease.Milliseconds()).Slice()
			}
			return err
		})
		if err != nil || len(reply) == 0 {
			t.dropWait(vk, ch)
			return local()
		}
		switch reply[0] {
		case int64(1):
			t.dropWait(vk, ch)
			s, _ := reply[1].(string)
			if res, ok := b.decode(vk, []byte(s)); ok {
				if since != nil {
					t.st.refreshHits.Add(1)
				}
				return res, true
			}
			// Garbage at the key: nobody can fill it while it stands, so
			// run locally (the next invalidation or the TTL clears it).
			return local()
		case int64(2):
			t.dropWait(vk, ch)
			return nil, b.lead(ctx, key, vk, lk, rest, tok, compute)
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
			t.dropWait(vk, ch)
			return local()
		}
		wait := min(left, 200*time.Millisecond)
		if len(reply) > 1 {
			if pttl, ok := reply[1].(int64); ok && pttl >= 0 && time.Duration(pttl+1)*time.Millisecond < wait {
				wait = time.Duration(pttl+1) * time.Millisecond
			}
		}
		sleepCtx(ctx, wait, ch)
	}
}

// lead runs compute as the holder of the lease and fills the value. It
// reports false: the results come from compute.
func (b *binding) lead(ctx context.Context, key memo.TierKey, vk, lk, rest, tok string, compute func(context.Context) ([]any, bool)) bool {
	t := b.t
	stop := make(chan struct{})
	heartbeat := make(chan struct{})
	go func() { // keep the lease while the function runs, and its context lasts
		defer close(heartbeat)
		tick := time.NewTicker(t.o.lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done(): // a function that outlives its context must not hold the key for ever
				return
			case <-tick.C:
				_ = t.do(context.Background(), func(ctx context.Context) error {
					return renewScript.Run(ctx, t.rdb, []string{lk}, tok, t.o.lease.Milliseconds()).Err()
				})
			}
		}
	}()
	filled := false
	defer func() {
		close(stop)
		<-heartbeat
		if !filled {
			// An error, a panic, an encoding failure: give the lease up
			// so that a waiter takes over at once.
			_ = t.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
				return releaseScript.Run(ctx, t.rdb, []string{lk}, tok, t.channel, message(msgRelease, b.base, rest, nil)).Err()
			})
		}
	}()
	res, store := compute(ctx)
	if !store {
		return false
	}
	val, err := t.o.codec.Encode(appendHeader(nil, t.o.codec.ID(), b.f.Schema, time.Now()), res)
	if err != nil || len(val) > t.o.maxValue {
		t.st.encodeErrors.Add(1)
		if err == nil {
			err = fmt.Errorf("%d bytes, over the limit of %d", len(val), t.o.maxValue)
		}
		if b.logger != nil {
			b.logger.Warn("memo: redistier: result not stored", "func", b.f.Name, "err", err)
		}
		return false
	}
	var n int64
	err = t.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		var err error
		n, err = fillScript.Run(ctx, t.rdb, []string{vk, lk}, tok, val, b.ttl().Milliseconds(), t.channel, message(msgFill, b.base, rest, nil)).Int64()
		return err
	})
	if err != nil {
		return false
	}
	filled = true
	if n == 1 {
		t.st.fills.Add(1)
	} else {
		t.st.fenced.Add(1)
	}
	return false
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
	payload, err := openEnvelope(raw, t.o.codec.ID(), b.f.Schema)
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
// replica drops it locally.
func (b *binding) Invalidate(ctx context.Context, key memo.TierKey) error {
	t := b.t
	if t.isClosed() {
		return errors.New("memo: redistier: the tier is closed")
	}
	// The generation is read afresh, not taken from memory: a Clear
	// whose message has not arrived yet must not make this invalidation
	// miss a fill in flight under the new generation.
	b.gen.Store(nil)
	gen, ok := b.generation(ctx)
	if !ok {
		return fmt.Errorf("memo: redistier: Redis unreachable, %q not invalidated there", b.f.Name)
	}
	vk, lk, rest := b.keys(gen, key)
	err := t.do(ctx, func(ctx context.Context) error {
		return invalidateScript.Run(ctx, t.rdb, []string{vk, lk}, t.channel, message(msgInvalidate, b.base, rest, key.Args)).Err()
	})
	if err != nil {
		return fmt.Errorf("memo: redistier: invalidating %q: %w", b.f.Name, err)
	}
	t.st.invalidations.Add(1)
	return nil
}

// Clear implements [memo.TierBinding]: the function moves to a new,
// random generation, and the replicas learn it and flush.
func (b *binding) Clear(ctx context.Context) error {
	t := b.t
	if t.isClosed() {
		return errors.New("memo: redistier: the tier is closed")
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	gen := hex.EncodeToString(r[:])
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
		return fmt.Errorf("memo: redistier: clearing %q: %w", b.f.Name, err)
	}
	b.gen.Store(&gen)
	b.pendingClear.Store(false)
	t.st.clears.Add(1)
	return nil
}
