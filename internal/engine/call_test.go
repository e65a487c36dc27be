package engine

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/memokit/memo/policies"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// always stores every result, for ever.
var always = VerdictFunc(func(any) (bool, bool, time.Duration) { return false, true, 0 })

// Recycle takes back an execution's Call only when no goroutine but its
// leader can still reach it: a Call that a caller joined (it holds the Call
// and reads the result from it after Done closes) is left alone, as is a
// Call whose execution has a context (calls made inside it can name it as
// their outer), while one nobody joined is reset for newCall's next miss.
// A Call reused while a joiner still read it would hand that joiner another
// key's result.
func TestRecycleOnlyUnreached(t *testing.T) {
	var c Core
	c.Init(100, 0, policies.LRU, "", nil, nil)
	key := func(b byte) []byte { return []byte{1, 2, 3, 4, 5, 6, 7, 8, b} }
	const leader, joiner = 1, 2

	// Nobody joined: recycled, reset.
	k := key(1)
	_, cl, r := c.Join(k, HashKey(k), leader, nil, true, nil)
	require.Equal(t, Leading, r)
	c.Run(cl, always, func() any { return 10 })
	require.Equal(t, 10, cl.Val)
	c.Recycle(cl)
	assert.Empty(t, cl.Key, "a Call nobody joined is reset for reuse")
	assert.Nil(t, cl.Val)

	// Joined: the joiner reads the result after Done, so it stays.
	k = key(2)
	_, cl, r = c.Join(k, HashKey(k), leader, nil, true, nil)
	require.Equal(t, Leading, r)
	_, jl, r := c.Join(k, HashKey(k), joiner, nil, true, nil)
	require.Equal(t, Joining, r)
	require.Same(t, cl, jl)
	c.Run(cl, always, func() any { return 20 })
	c.Recycle(cl)
	<-jl.Done
	assert.Equal(t, string(k), jl.Key, "a joined Call is not recycled")
	assert.Equal(t, 20, jl.Val)

	// An execution with a context: a call inside it may hold it as outer.
	k = key(3)
	_, cl, r = c.Join(k, HashKey(k), leader, nil, true, nil)
	require.Equal(t, Leading, r)
	cl.StartInline(t.Context())
	c.Run(cl, always, func() any { return 30 })
	c.Recycle(cl)
	assert.Equal(t, string(k), cl.Key, "a Call a context carries is not recycled")

	// A panicked execution: its leader panics again with the Call's value.
	k = key(4)
	_, cl, r = c.Join(k, HashKey(k), leader, nil, true, nil)
	require.Equal(t, Leading, r)
	c.Run(cl, always, func() any { panic("boom") })
	c.Recycle(cl)
	assert.Equal(t, "boom", cl.Pval)
	assert.Equal(t, string(k), cl.Key)
}

// An entry never keeps its key in memory that someone reuses: a short key
// kept outside (one not shaped as memo's keys, whose 8th byte is not 0)
// used to be the very string of its execution's Call, whose bytes lie in
// the Call's own allocation; once the Call was recycled for the next miss,
// the stored entry's key became that miss's key, and the next key's lookup
// hit the first key's result.
func TestEntryKeyOutlivesRecycledCall(t *testing.T) {
	var c Core
	c.Init(100, 0, policies.LRU, "", nil, nil)
	for _, kl := range []int{1, 7, 9, 16, 24} {
		k1 := bytes.Repeat([]byte{0xAA}, kl) // 8th byte not 0: kept outside
		k2 := bytes.Repeat([]byte{0xBB}, kl)
		_, cl, r := c.Join(k1, HashKey(k1), 1, nil, true, nil)
		require.Equal(t, Leading, r)
		c.Run(cl, always, func() any { return "first" })
		c.Recycle(cl)
		_, cl, r = c.Join(k2, HashKey(k2), 1, nil, true, nil) // most likely the same Call, reused
		require.Equal(t, Leading, r, "%d bytes: the second key must miss", kl)
		c.Run(cl, always, func() any { return "second" })
		c.Recycle(cl)
		for k, want := range map[string]string{string(k1): "first", string(k2): "second"} {
			v, ok := c.Lookup([]byte(k), HashString(k))
			require.True(t, ok, "%d bytes", kl)
			assert.Equal(t, want, v, "%d bytes", kl)
		}
	}
}

type ctxKey struct{}

// An execution's context, kept in its Call (flightCtx), answers as
// context.WithValue(parent, FlightKey{}, cl) would: the Call under
// FlightKey, the parent's values, deadline and cancellation otherwise, so
// that a call made inside the execution finds it (re-entrant calls) and the
// function sees its caller's context.
func TestFlightContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(t.Context(), ctxKey{}, "v"))
	cl := new(Call)
	ctx := cl.Start(parent)
	assert.Same(t, cl, ctx.Value(FlightKey{}))
	assert.Equal(t, "v", ctx.Value(ctxKey{}))
	assert.Nil(t, ctx.Value("other"))
	inner, stop := context.WithCancel(ctx) // a child of the execution's context
	defer stop()
	assert.Same(t, cl, inner.Value(FlightKey{}))
	require.NoError(t, ctx.Err())
	cancel() // the execution's context keeps the values, not the cancellation
	require.NoError(t, ctx.Err())
	cl.cancel() // its own: the last caller left
	<-inner.Done()
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, inner.Err(), context.Canceled)

	bg := new(Call)
	ictx := bg.StartInline(context.Background())
	assert.Same(t, bg, ictx.Value(FlightKey{}))
	assert.Nil(t, ictx.Done(), "a context that can never end stays so")
}

// The context of an inline execution (StartInline) may be read on another
// goroutine (one the function started) while the execution ends, its
// context lets go of the Call (EndInline) and the Call is reused (Recycle).
// A Value that hands the Call out must keep it from being reused, and a
// Value racing with the reuse must touch nothing of the Call: it pinned the
// Call by writing into it after loading it, which raced (under -race, a
// reported data race) with Recycle's reset of a Call it had just found
// unpinned, and pinned the Call's next execution instead.
func TestInlineContextValueRacesRecycle(t *testing.T) {
	var c Core
	c.Init(100, 0, policies.LRU, "", nil, nil)
	never := VerdictFunc(func(any) (bool, bool, time.Duration) { return false, false, 0 })
	k := []byte{1, 0, 0, 0, 0, 0, 0, 0, 9}
	ctxs := make(chan context.Context)
	got := make(chan any)
	go func() {
		for ctx := range ctxs {
			got <- ctx.Value(FlightKey{})
		}
		close(got)
	}()
	for range 20000 {
		_, cl, r := c.Join(k, HashKey(k), 1, nil, true, nil)
		require.Equal(t, Leading, r)
		ctxs <- cl.StartInline(context.Background())
		c.Run(cl, never, func() any { return 10 })
		cl.EndInline()
		c.Recycle(cl)
		if v := <-got; v != nil {
			require.Same(t, cl, v)
			require.Equal(t, string(k), cl.Key, "a Call handed out was reused")
		}
	}
	close(ctxs)
	<-got
}

// TestRecycleResetsEveryField guards Recycle's reset, which clears only the
// fields a recyclable Call can hold (zeroing the whole Call pays a write
// barrier per pointer word while the collector marks): a Call that led
// with every one of them set comes back equal to a new one, and every
// field of Call is accounted for, reset or ruled out by Recycle's checks,
// so that a field added to Call fails here until Recycle handles it. A
// field left set would hand the next miss's execution another key's
// value, options or outer execution.
func TestRecycleResetsEveryField(t *testing.T) {
	reset := []string{"Key", "H", "Refs", "Val", "held", "Fo", "stale", "AgeCap", "g", "outer", "Waiters", "ctx", "inline"}
	// Recycle declines a Call with one of these set (pooled is kept), ctx
	// but for an inline execution's, once ended...
	checked := []string{"Done", "fctx", "cancel", "release", "group", "base", "Verify", "Panicked", "Goexit", "pooled"}
	// ...and these are set only with one of those: Pval and Stack with
	// Panicked, deadline and expired with ctx, Moved with Verify, released
	// with release, until with base.
	implied := []string{"Pval", "Stack", "deadline", "expired", "Moved", "released", "until"}
	var fields []string
	for f := range reflect.TypeFor[Call]().Fields() {
		fields = append(fields, f.Name)
	}
	known := slices.Concat(reset, checked, implied)
	slices.Sort(fields)
	slices.Sort(known)
	require.Equal(t, known, fields, "Call's fields changed: update Recycle's reset and this list")

	var c Core
	c.Init(100, 0, policies.LRU, "", nil, nil)
	k := []byte("a short key")
	_, outer, r := c.Join([]byte("outer"), HashKey([]byte("outer")), 1, nil, true, nil)
	require.Equal(t, Leading, r)
	_, cl, r := c.Join(k, HashKey(k), 2, outer, true, nil)
	require.Equal(t, Leading, r)
	require.True(t, cl.pooled)
	cl.Refs = []unsafe.Pointer{unsafe.Pointer(&c)}
	cl.Fo, cl.AgeCap, cl.stale = &FreshOpts{}, time.Hour, true
	c.Run(cl, always, func() any { return "value" })
	require.NotZero(t, cl.g.Load())
	c.Recycle(cl)
	assert.True(t, reflect.DeepEqual(cl, &Call{pooled: true}), "a recycled Call is a new one: %+v", cl)

	// An inline execution's Call, ended (EndInline), its result held in
	// an entry that was not stored: ctx, inline and held set.
	never := VerdictFunc(func(any) (bool, bool, time.Duration) { return false, false, 0 })
	k2 := []byte("another short key")
	_, cl, r = c.Join(k2, HashKey(k2), 3, nil, true, nil)
	require.Equal(t, Leading, r)
	require.True(t, cl.pooled)
	ctx := cl.StartInline(context.Background())
	c.Run(cl, never, func() any { return Hold(cl, 1<<40, HeldFor[int](nil)) })
	require.NotNil(t, cl.held)
	cl.EndInline()
	c.Recycle(cl)
	assert.True(t, reflect.DeepEqual(cl, &Call{pooled: true}), "a recycled inline Call is a new one: %+v", cl)
	assert.Nil(t, ctx.Value(FlightKey{}), "its context carries nothing once it ended")
}
