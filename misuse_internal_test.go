package memo

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Mistakes that used to fail late or silently fail at once, each with a
// message that starts "memo:" and says what to fix.

// assertMemoPanic checks that f panics with a message that starts "memo:"
// and contains want.
func assertMemoPanic(t *testing.T, want string, f func()) {
	t.Helper()
	msg := dtPanicMessage(t, f)
	assert.True(t, strings.HasPrefix(msg, "memo: "), "panic message %q does not start with \"memo: \"", msg)
	assert.Contains(t, msg, want)
}

func TestShortTTL(t *testing.T) {
	t.Parallel()
	plain := func(x int) int { return x }
	withErr := func(x int) (int, error) { return x, nil }
	for _, tc := range []struct {
		opt  Option
		want string
	}{
		{WithTTL(60), "WithTTL(60) is 60ns, below the 1ms minimum: a time.Duration counts nanoseconds; did you mean 60*time.Second (or 60*time.Millisecond)?"},
		{WithTTL(1), "did you mean 1*time.Second"},
		{WithTTL(time.Millisecond - 1), "WithTTL(999999) is 999.999µs"},
		{WithErrorTTL(30), "WithErrorTTL(30) is 30ns, below the 1ms minimum"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			assertMemoPanic(t, tc.want, func() { Decorate(withErr, tc.opt) })
			assertMemoPanic(t, tc.want, func() { FuncErr(withErr, tc.opt) })
			assertMemoPanic(t, tc.want, func() {
				FuncCtx(func(context.Context, int) (int, error) { return 0, nil }, tc.opt)
			})
		})
	}
	// New returns the message as an error.
	_, err := New(WithMaxSize(10), WithTTL(60))
	assertMemoError(t, err, "did you mean 60*time.Second")

	// A millisecond is accepted, and an entry lives that long.
	c, err := New(WithMaxSize(10), WithTTL(time.Millisecond))
	require.NoError(t, err)
	assert.Equal(t, time.Millisecond, c.Stats().TTL)
	f := Decorate(plain, WithTTL(time.Millisecond))
	assert.Equal(t, time.Millisecond, CacheOf(f).Stats().TTL)
	Decorate(withErr, WithErrorTTL(time.Millisecond))
}

// errorFirst has an error result, but not a trailing one.
func errorFirst(x int) (error, int) { return nil, x } //lint:ignore ST1008 the shape under test

func TestErrorTTLWithoutErrorResult(t *testing.T) {
	t.Parallel()
	const want = "has no trailing error result"
	opt := WithErrorTTL(time.Second)
	for name, f := range map[string]func(){
		"Decorate func(int) int":          func() { Decorate(func(x int) int { return x }, opt) },
		"Decorate func(int)":              func() { Decorate(func(int) {}, opt) },
		"Decorate error not last":         func() { Decorate(errorFirst, opt) },
		"Decorate ctx, no error":          func() { Decorate(func(_ context.Context, x int) int { return x }, opt) },
		"Decorate error-like result type": func() { Decorate(func(x int) *PanicError { return nil }, opt) },
		"Func":                            func() { Func(func(x int) string { return "" }, opt) },
		"Func2":                           func() { Func2(func(x, y int) int { return x + y }, opt) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertMemoPanic(t, want, f)
		})
	}
	// Functions with a trailing error take it, a typed Func of an error too.
	Decorate(func(x int) (int, error) { return x, nil }, opt)
	Decorate(func(x int) error { return nil }, opt)
	FuncErr(func(x int) (int, error) { return x, nil }, opt)
	Func2Err(func(x, y int) (int, error) { return x, nil }, opt)
	FuncCtx(func(context.Context, int) (int, error) { return 0, nil }, opt)
	Func2Ctx(func(context.Context, int, int) (int, error) { return 0, nil }, opt)
	execs := 0
	fail := errors.New("fail")
	g := Func(func(x int) error { execs++; return fail }, opt)
	assert.ErrorIs(t, g(1), fail)
	assert.ErrorIs(t, g(1), fail)
	assert.Equal(t, 1, execs, "Func of an error with WithErrorTTL stores the error")
}

func TestWithZeroCache(t *testing.T) {
	t.Parallel()
	const want = "WithCache(&Cache{}): the zero Cache is not usable; make the shared cache with New or MustNew"
	assertMemoPanic(t, want, func() { Decorate(func(x int) int { return x }, WithCache(&Cache{})) })
	assertMemoPanic(t, want, func() { Func(func(x int) int { return x }, WithCache(&Cache{})) })
	assertMemoPanic(t, want, func() {
		Func2Ctx(func(context.Context, int, int) (int, error) { return 0, nil }, WithCache(&Cache{}))
	})
	assertMemoPanic(t, "WithCache(nil)", func() { Decorate(func(x int) int { return x }, WithCache(nil)) })
	_, err := newConfig([]Option{WithCache(new(Cache))}, true)
	assertMemoError(t, err, want)
	// A cache made by New is accepted.
	f := Func(func(x int) int { return x }, WithCache(MustNew(WithMaxSize(2))))
	assert.Equal(t, 3, f(3))
}

// cacheMethods calls every method of c once.
var cacheMethods = map[string]func(c *Cache){
	"Get":             func(c *Cache) { _, _ = c.Get(1) },
	"Set":             func(c *Cache) { c.Set(1, 2) },
	"Delete":          func(c *Cache) { c.Delete(1) },
	"Len":             func(c *Cache) { c.Len() },
	"Clear":           func(c *Cache) { c.Clear() },
	"ResetStats":      func(c *Cache) { c.ResetStats() },
	"Stats":           func(c *Cache) { c.Stats() },
	"UpdateProfiling": func(c *Cache) { c.UpdateProfiling(time.Millisecond) },
}

func TestNilAndZeroCache(t *testing.T) {
	t.Parallel()
	for name, call := range cacheMethods {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertMemoPanic(t, "nil *Cache: make a cache with New or MustNew; CacheOf returns nil", func() { call(nil) })
			assertMemoPanic(t, "the zero Cache is not usable: make a cache with New or MustNew, or get a decorated function's with CacheOf", func() { call(&Cache{}) })
			var c Cache
			assertMemoPanic(t, "zero Cache", func() { call(&c) })
			// A made cache takes every call.
			call(MustNew(WithMaxSize(2)))
		})
	}
	// The case users hit: the statistics of a function memo did not make.
	plain := func(x int) int { return x }
	require.Nil(t, CacheOf(plain))
	assertMemoPanic(t, "CacheOf returns nil for a function that Decorate or Func did not return", func() { CacheOf(plain).Stats() })
}

func TestInvalidateTyped(t *testing.T) {
	t.Parallel()
	f := Func(func(x int64) int64 { return x })
	f(1)
	assert.True(t, Invalidate(f, 1), "an untyped constant converts without loss")
	assertMemoPanic(t, "argument 1, string, does not convert without loss to int64; the function takes (int64)", func() { Invalidate(f, "1") })
	assertMemoPanic(t, "the arguments (int, int) do not fit the parameters (int64)", func() { Invalidate(f, 1, 2) })

	g := Func2Ctx(func(_ context.Context, a string, b int8) (string, error) { return fmt.Sprint(a, b), nil })
	_, err := g(context.Background(), "a", 1)
	require.NoError(t, err)
	assert.True(t, Invalidate(g, "a", 1))
	assertMemoPanic(t, "argument 2, int(300), does not convert without loss to int8; the function takes (string, int8), the context left out", func() { Invalidate(g, "a", 300) })
	assertMemoPanic(t, "the arguments (string) do not fit the parameters (string, int8), the context left out", func() { Invalidate(g, "a") })

	// A function memo did not decorate has no entry to drop.
	assert.False(t, Invalidate(func(x int64) int64 { return x }, "anything", 1, 2))
}

// TestEveryCacheMethodChecks calls every exported method of *Cache, those
// added later included, on a nil and a zero Cache: each must panic with a
// memo: message rather than a nil dereference or an index error.
func TestEveryCacheMethodChecks(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[*Cache]()
	require.Positive(t, typ.NumMethod())
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			for _, recv := range []*Cache{nil, {}} {
				args := []reflect.Value{reflect.ValueOf(recv)}
				for j := 1; j < m.Type.NumIn(); j++ {
					args = append(args, reflect.Zero(m.Type.In(j)))
				}
				call := m.Func.Call
				if m.Type.IsVariadic() {
					call = m.Func.CallSlice
				}
				assertMemoPanic(t, "make a cache with New or MustNew", func() { call(args) })
			}
		})
	}
}

// TestNameNotUTF8 guards a name that is not valid UTF-8: it was accepted,
// and memoprom then answered every scrape with a 500 (a Prometheus label
// value must be UTF-8), taking the application's own metrics down with
// it. Decorate and the typed functions panic, New returns the error.
func TestNameNotUTF8(t *testing.T) {
	for _, name := range []string{"bad\xff", "\xc3", "ok-then-\xed\xa0\x80"} { // a lone byte, a cut rune, a surrogate
		const want = "must be valid UTF-8"
		assertMemoPanic(t, want, func() { Decorate(func(int) int { return 0 }, WithName(name)) })
		assertMemoPanic(t, want, func() { Func(func(int) int { return 0 }, WithName(name)) })
		_, err := New(WithName(name), WithMaxSize(1))
		require.Error(t, err, "%q", name)
		assert.True(t, strings.HasPrefix(err.Error(), "memo: "), err.Error())
		assert.Contains(t, err.Error(), want)
	}
	for _, name := range []string{"naïve", "日本語", "a\"b\nc<d>", "é#2"} {
		c, err := New(WithName(name), WithMaxSize(1))
		require.NoError(t, err, "%q is valid UTF-8", name)
		assert.Equal(t, name, c.Name())
	}
}
