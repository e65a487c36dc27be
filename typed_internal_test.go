package memo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tests of the typed fast paths (Func, FuncErr, FuncCtx, Func2, Func2Err,
// Func2Ctx): their keys are byte-for-byte Decorate's, and they have
// Decorate's call semantics.

// tyInt is a named basic type: not keyed by appendBasic, and a key apart
// from int through an interface.
type tyInt int

// tyQuery is a struct argument with a slice field.
type tyQuery struct {
	Name string
	Tags []string
}

// tyKey returns the key the fast path builds for a call of w's function
// with a (fid, then appendBasic), and whether a has a basic type.
func tyKey[A any](w *wrapped, a A) ([]byte, bool) {
	k := binary.LittleEndian.AppendUint64(nil, w.fid)
	return appendBasic(k, a)
}

// tyReflectKey returns the key the reflective encoder builds for a call of
// w's function with args.
func tyReflectKey(w *wrapped, args ...reflect.Value) []byte {
	s := keys.GetState()
	defer keys.PutState(s)
	w.encode(s, args)
	return slices.Clone(s.Buf)
}

// tyCheckBasic checks appendBasic against the reflective encoder of T, on
// its own and as the key of a typed function, for each of vals.
func tyCheckBasic[T any](t *testing.T, vals ...T) {
	t.Helper()
	enc := keys.EncoderOf(reflect.TypeFor[T]())
	for _, v := range vals {
		got, ok := appendBasic(nil, v)
		require.True(t, ok, "%T is basic", v)
		s := keys.GetState()
		enc(s, reflect.ValueOf(v)) // as a decorated function sees it: not addressable
		want := slices.Clone(s.Buf)
		keys.PutState(s)
		assert.Equal(t, want, got, "%T %v", v, v)

		// After a prefix too, as the second argument of Func2.
		got2, _ := appendBasic([]byte("prefix"), v)
		assert.Equal(t, append([]byte("prefix"), want...), got2)
	}

	var execs atomic.Int32
	f := Func(func(T) int { return int(execs.Add(1)) })
	w := lookupWrapped(f)
	require.NotNil(t, w)
	for i, v := range vals {
		fast, ok := tyKey(w, v)
		require.True(t, ok)
		assert.Equal(t, tyReflectKey(w, reflect.ValueOf(v)), fast, "whole key of %T %v", v, v)

		before := execs.Load()
		f(v)
		f(v)
		assert.Equal(t, before+1, execs.Load(), "value %d (%v): the second call hits", i, v)
		// Invalidate keys through the reflective encoder: it finds the
		// entry the fast path stored.
		assert.True(t, Invalidate(f, v), "value %d (%v)", i, v)
		assert.False(t, Invalidate(f, v), "value %d (%v): already gone", i, v)
	}
}

func TestTypedKeyBytesMatchEncoder(t *testing.T) {
	t.Parallel()
	t.Run("int", func(t *testing.T) {
		tyCheckBasic(t, 0, 1, -1, 42, math.MinInt, math.MaxInt)
	})
	t.Run("int64", func(t *testing.T) {
		tyCheckBasic[int64](t, 0, 1, -1, math.MinInt64, math.MaxInt64)
	})
	t.Run("int32", func(t *testing.T) {
		tyCheckBasic[int32](t, 0, 1, -1, math.MinInt32, math.MaxInt32)
	})
	t.Run("uint", func(t *testing.T) {
		tyCheckBasic[uint](t, 0, 1, math.MaxUint)
	})
	t.Run("uint64", func(t *testing.T) {
		tyCheckBasic[uint64](t, 0, 1, 1<<63, math.MaxUint64)
	})
	t.Run("uint32", func(t *testing.T) {
		tyCheckBasic[uint32](t, 0, 1, 1<<31, math.MaxUint32)
	})
	t.Run("string", func(t *testing.T) {
		tyCheckBasic(t, "", "a", "ab", "héllo\x00", strings.Repeat("x", 200))
	})
	t.Run("bool", func(t *testing.T) {
		tyCheckBasic(t, false, true)
	})
	t.Run("float64", func(t *testing.T) {
		nan2 := math.Float64frombits(0x7ff8_0000_0000_0001) // another NaN payload
		tyCheckBasic(t, 0, math.Copysign(0, -1), 1.5, -1.5, math.MaxFloat64,
			-math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(), nan2)

		var execs atomic.Int32
		f := Func(func(x float64) float64 { execs.Add(1); return x })
		f(math.NaN())
		f(nan2)
		assert.EqualValues(t, 1, execs.Load(), "every NaN is one key")
		assert.True(t, Invalidate(f, nan2))
		f(0)
		assert.False(t, Invalidate(f, math.Copysign(0, -1)), "-0.0 and +0.0 differ")
		f(math.Copysign(0, -1))
		assert.EqualValues(t, 3, execs.Load())
		assert.Equal(t, 2, CacheOf(f).Len())
	})

	t.Run("not basic", func(t *testing.T) {
		// Types appendBasic leaves to the reflective encoder.
		for _, ok := range []bool{
			tyOK(int8(1)), tyOK(int16(1)), tyOK(uint8(1)), tyOK(uint16(1)), tyOK(uintptr(1)),
			tyOK(float32(1)), tyOK(complex(1, 2)), tyOK(tyInt(1)), tyOK([]byte("a")),
			tyOK(time.Second), tyOK(new(int)), tyOK(tyQuery{}),
			tyOK[any](1), tyOK[any]("a"), tyOK[fmt.Stringer](nil), tyOK[error](errors.New("x")),
		} {
			assert.False(t, ok)
		}
	})
}

// tyOK reports whether appendBasic keys a value of static type A.
func tyOK[A any](a A) bool {
	_, ok := appendBasic(nil, a)
	return ok
}

// TestTypedInterfaceArgKeysByDynamicType: a basic value passed through an
// interface parameter is keyed with its dynamic type, as by Decorate.
func TestTypedInterfaceArgKeysByDynamicType(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	f := Func(func(x any) string { execs.Add(1); return fmt.Sprintf("%T", x) })
	assert.Equal(t, "int", f(1))
	assert.Equal(t, "int64", f(int64(1)))
	assert.Equal(t, "memo.tyInt", f(tyInt(1)))
	assert.Equal(t, "int32", f(int32(1)))
	assert.Equal(t, "uint", f(uint(1)))
	assert.Equal(t, "float64", f(1.0))
	assert.Equal(t, "int", f(1))
	assert.EqualValues(t, 6, execs.Load(), "int, int64, tyInt, int32, uint, float64 are six keys")
	assert.True(t, Invalidate(f, int64(1)))
	assert.True(t, Invalidate(f, 1))
	assert.False(t, Invalidate(f, 1))
	assert.Equal(t, 4, CacheOf(f).Len())

	g := Func2(func(x, y any) string { return fmt.Sprintf("%T %T", x, y) })
	assert.Equal(t, "int int64", g(1, int64(2)))
	assert.Equal(t, "int64 int", g(int64(1), 2))
	assert.Equal(t, "tyInt tyInt", strings.ReplaceAll(g(tyInt(1), tyInt(2)), "memo.", ""))
	assert.Equal(t, "int int", g(1, 2))
	assert.Equal(t, 4, CacheOf(g).Len())
	assert.True(t, Invalidate(g, int64(1), 2))
}

// A tyForm is one typed constructor, driven through a common shape.
type tyForm[A any] struct {
	name string
	ctx  bool // takes a leading context
	errs bool // returns an error
	two  bool // takes two arguments
	// build memoizes body (a non-error form drops body's error; a form
	// without a context gives body a nil one).
	build func(body func(ctx context.Context, a, b A) (string, error), opts ...Option) tyFn[A]
}

// tyFn is a memoized function and a common way to call it.
type tyFn[A any] struct {
	fn   any
	call func(ctx context.Context, a, b A) (string, error)
}

// args returns what Invalidate takes for a call with a (and b).
func (f tyForm[A]) args(a, b A) []any {
	if f.two {
		return []any{a, b}
	}
	return []any{a}
}

func tyForms[A any]() []tyForm[A] {
	var zero A
	return []tyForm[A]{
		{name: "Func", build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := Func(func(a A) string { r, _ := body(nil, a, zero); return r }, opts...)
			return tyFn[A]{f, func(_ context.Context, a, _ A) (string, error) { return f(a), nil }}
		}},
		{name: "FuncErr", errs: true, build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := FuncErr(func(a A) (string, error) { return body(nil, a, zero) }, opts...)
			return tyFn[A]{f, func(_ context.Context, a, _ A) (string, error) { return f(a) }}
		}},
		{name: "FuncCtx", ctx: true, errs: true, build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := FuncCtx(func(ctx context.Context, a A) (string, error) { return body(ctx, a, zero) }, opts...)
			return tyFn[A]{f, func(ctx context.Context, a, _ A) (string, error) { return f(ctx, a) }}
		}},
		{name: "Func2", two: true, build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := Func2(func(a, b A) string { r, _ := body(nil, a, b); return r }, opts...)
			return tyFn[A]{f, func(_ context.Context, a, b A) (string, error) { return f(a, b), nil }}
		}},
		{name: "Func2Err", two: true, errs: true, build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := Func2Err(func(a, b A) (string, error) { return body(nil, a, b) }, opts...)
			return tyFn[A]{f, func(_ context.Context, a, b A) (string, error) { return f(a, b) }}
		}},
		{name: "Func2Ctx", two: true, ctx: true, errs: true, build: func(body func(context.Context, A, A) (string, error), opts ...Option) tyFn[A] {
			f := Func2Ctx(func(ctx context.Context, a, b A) (string, error) { return body(ctx, a, b) }, opts...)
			return tyFn[A]{f, func(ctx context.Context, a, b A) (string, error) { return f(ctx, a, b) }}
		}},
	}
}

// tyResult is what the test bodies return for a call.
func tyResult[A any](two bool, a, b A) string {
	if two {
		return fmt.Sprintf("%T:%v|%T:%v", a, a, b, b)
	}
	return fmt.Sprintf("%T:%v", a, a)
}

func tyCatch(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

type tyBoom struct{ n int }

// tyRunForms runs the semantics tests on every form, with the argument
// pairs (a1, b1) and (a2, b2), which must be different keys for the one-
// and the two-argument forms.
func tyRunForms[A any](t *testing.T, a1, b1, a2, b2 A) {
	for _, form := range tyForms[A]() {
		t.Run(form.name, func(t *testing.T) {
			t.Parallel()
			tyHitMiss(t, form, a1, b1, a2, b2)
			if form.errs {
				tyErrors(t, form, a1, b1)
			}
			tyPanics(t, form, a1, b1)
			tyCoalescing(t, form, a1, b1)
			if form.ctx {
				tyContext(t, form, a1, b1)
			}
		})
	}
}

func tyHitMiss[A any](t *testing.T, form tyForm[A], a1, b1, a2, b2 A) {
	var execs atomic.Int32
	f := form.build(func(_ context.Context, a, b A) (string, error) {
		execs.Add(1)
		return tyResult(form.two, a, b), nil
	})
	c := CacheOf(f.fn)
	require.NotNil(t, c, "CacheOf")
	calls := 0
	call := func(a, b A) string {
		calls++
		r, err := f.call(context.Background(), a, b)
		require.NoError(t, err)
		return r
	}
	assert.Equal(t, tyResult(form.two, a1, b1), call(a1, b1))
	assert.Equal(t, tyResult(form.two, a1, b1), call(a1, b1))
	assert.Equal(t, tyResult(form.two, a2, b2), call(a2, b2))
	assert.Equal(t, tyResult(form.two, a1, b1), call(a1, b1))
	assert.Equal(t, tyResult(form.two, a2, b2), call(a2, b2))
	assert.EqualValues(t, 2, execs.Load(), "executions")
	st := c.Stats()
	assert.EqualValues(t, 3, st.Hits)
	assert.EqualValues(t, 2, st.Misses)
	assert.EqualValues(t, calls, st.Hits+st.Misses, "every call is a hit or a miss")
	assert.EqualValues(t, 2, st.TotalCalls)
	assert.Equal(t, 2, c.Len())

	assert.True(t, Invalidate(f.fn, form.args(a1, b1)...))
	assert.False(t, Invalidate(f.fn, form.args(a1, b1)...), "already gone")
	assert.Equal(t, 1, c.Len())
	assert.Equal(t, tyResult(form.two, a1, b1), call(a1, b1))
	assert.EqualValues(t, 3, execs.Load(), "executes again after Invalidate")
	assert.Equal(t, tyResult(form.two, a2, b2), call(a2, b2))
	assert.EqualValues(t, 3, execs.Load(), "the other entry is still there")

	// The key the typed function stored is the one Decorate's encoder
	// builds: Invalidate found it above; for basic types, compare bytes.
	w := lookupWrapped(f.fn)
	if k, ok := tyKey(w, a1); ok {
		args := []reflect.Value{reflect.ValueOf(&a1).Elem()}
		if form.two {
			k, ok = appendBasic(k, b1)
			args = append(args, reflect.ValueOf(&b1).Elem())
		}
		if form.ctx {
			args = append([]reflect.Value{reflect.Zero(contextType)}, args...)
		}
		if ok {
			assert.Equal(t, tyReflectKey(w, args...), k)
		}
	}
}

func tyErrors[A any](t *testing.T, form tyForm[A], a, b A) {
	fail := errors.New("fail")
	for _, errorTTL := range []time.Duration{0, time.Hour} {
		var opts []Option
		if errorTTL > 0 {
			opts = append(opts, WithErrorTTL(errorTTL))
		}
		var execs atomic.Int32
		f := form.build(func(context.Context, A, A) (string, error) {
			execs.Add(1)
			return "partial", fail
		}, opts...)
		for range 3 {
			r, err := f.call(context.Background(), a, b)
			assert.ErrorIs(t, err, fail)
			assert.Equal(t, "partial", r, "the results come with the error")
		}
		st := CacheOf(f.fn).Stats()
		if errorTTL == 0 {
			assert.EqualValues(t, 3, execs.Load(), "errors are not stored")
			assert.Zero(t, CacheOf(f.fn).Len())
			assert.EqualValues(t, 3, st.Failures)
		} else {
			assert.EqualValues(t, 1, execs.Load(), "WithErrorTTL stores errors")
			assert.Equal(t, 1, CacheOf(f.fn).Len())
			assert.EqualValues(t, 2, st.Hits)
			assert.EqualValues(t, 1, st.Failures)
			assert.True(t, Invalidate(f.fn, form.args(a, b)...))
		}
		assert.EqualValues(t, 3, st.Hits+st.Misses)
	}
}

func tyPanics[A any](t *testing.T, form tyForm[A], a, b A) {
	release := make(chan struct{})
	var execs atomic.Int32
	boom := &tyBoom{1}
	f := form.build(func(context.Context, A, A) (string, error) {
		execs.Add(1)
		<-release
		panic(boom)
	})
	c := CacheOf(f.fn)
	runner := make(chan any, 1)
	waiter := make(chan any, 1)
	go func() {
		runner <- tyCatch(func() { _, _ = f.call(context.Background(), a, b) })
	}()
	flAwaitInFlight(t, c, 1, 1)
	go func() {
		waiter <- tyCatch(func() { _, _ = f.call(context.Background(), a, b) })
	}()
	flAwaitInFlight(t, c, 1, 2)
	close(release)
	assert.Same(t, boom, flRecv(t, runner), "the runner sees the original panic value")
	r := flRecv(t, waiter)
	var pe *PanicError
	require.ErrorAs(t, r.(error), &pe, "a waiter panics with *PanicError, got %#v", r)
	assert.Same(t, boom, pe.Value)
	assert.EqualValues(t, 1, execs.Load())
	assert.Zero(t, c.Len(), "a panic is not stored")

	// The cache stays usable, and the panic was not stored.
	assert.Same(t, boom, tyCatch(func() { _, _ = f.call(context.Background(), a, b) }))
	assert.EqualValues(t, 2, execs.Load())
	st := c.Stats()
	assert.EqualValues(t, 3, st.Hits+st.Misses)
	assert.EqualValues(t, 2, st.Failures)
}

func tyCoalescing[A any](t *testing.T, form tyForm[A], a, b A) {
	const n = 20
	release := make(chan struct{})
	var execs atomic.Int32
	f := form.build(func(_ context.Context, a, b A) (string, error) {
		execs.Add(1)
		<-release
		return tyResult(form.two, a, b), nil
	})
	c := CacheOf(f.fn)
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = f.call(context.Background(), a, b) })
	}
	// Every caller waits: one execution, n callers on it.
	flAwaitInFlight(t, c, 1, n)
	close(release)
	wg.Wait()
	assert.EqualValues(t, 1, execs.Load(), "one execution for %d callers", n)
	for i := range n {
		assert.NoError(t, errs[i])
		assert.Equal(t, tyResult(form.two, a, b), results[i], "caller %d", i)
	}
	st := c.Stats()
	assert.EqualValues(t, n, st.Misses, "callers that waited are misses")
	assert.EqualValues(t, n, st.Hits+st.Misses)
	assert.EqualValues(t, n-1, st.Coalesced)
	assert.EqualValues(t, 1, st.TotalCalls)
	assert.Equal(t, 1, c.Len())
}

type tyCtxKey struct{}

func tyContext[A any](t *testing.T, form tyForm[A], a, b A) {
	t.Run("waiter leaves, the execution stores", func(t *testing.T) {
		release := make(chan struct{})
		bodyCtxErr := make(chan error, 1)
		var execs atomic.Int32
		f := form.build(func(ctx context.Context, a, b A) (string, error) {
			execs.Add(1)
			<-release
			bodyCtxErr <- ctx.Err()
			return fmt.Sprint(ctx.Value(tyCtxKey{})), nil
		})
		c := CacheOf(f.fn)
		// The first caller (whose values the execution keeps) leaves; the
		// second stays.
		ctx1, cancel1 := context.WithCancel(context.WithValue(context.Background(), tyCtxKey{}, "first"))
		defer cancel1()
		type res struct {
			r   string
			err error
		}
		first := make(chan res, 1)
		second := make(chan res, 1)
		go func() {
			r, err := f.call(ctx1, a, b)
			first <- res{r, err}
		}()
		flAwaitInFlight(t, c, 1, 1)
		go func() {
			r, err := f.call(context.Background(), a, b)
			second <- res{r, err}
		}()
		flAwaitInFlight(t, c, 1, 2)
		cancel1()
		got := flRecv(t, first)
		assert.ErrorIs(t, got.err, context.Canceled, "the caller whose context ended returns at once")
		assert.Empty(t, got.r, "with zero results")
		flAwaitInFlight(t, c, 1, 1)
		close(release)
		assert.NoError(t, flRecv(t, bodyCtxErr), "the execution's context lives while a caller waits")
		got = flRecv(t, second)
		assert.NoError(t, got.err)
		assert.Equal(t, "first", got.r, "the execution keeps the first caller's values")
		assert.Equal(t, 1, c.Len(), "the execution stored its result")
		r, err := f.call(context.Background(), a, b)
		assert.NoError(t, err)
		assert.Equal(t, "first", r)
		assert.EqualValues(t, 1, execs.Load())
		st := c.Stats()
		assert.EqualValues(t, 1, st.Hits)
		assert.EqualValues(t, 3, st.Hits+st.Misses)
	})

	t.Run("last caller leaves, the execution is cancelled", func(t *testing.T) {
		stopped := make(chan struct{})
		f := form.build(func(ctx context.Context, _, _ A) (string, error) {
			<-ctx.Done()
			defer close(stopped)
			return "", ctx.Err()
		})
		c := CacheOf(f.fn)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := f.call(ctx, a, b)
			errc <- err
		}()
		flAwaitInFlight(t, c, 1, 1)
		cancel()
		assert.ErrorIs(t, flRecv(t, errc), context.Canceled)
		flRecv(t, stopped)
		assert.Zero(t, c.Len())
	})

	t.Run("cancelled context does not execute", func(t *testing.T) {
		var execs atomic.Int32
		f := form.build(func(context.Context, A, A) (string, error) {
			execs.Add(1)
			return "r", nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := f.call(ctx, a, b)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Empty(t, r)
		ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = f.call(ctx, a, b)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, execs.Load())
		assert.Zero(t, CacheOf(f.fn).Len())
	})

	t.Run("nil context", func(t *testing.T) {
		f := form.build(func(ctx context.Context, _, _ A) (string, error) {
			if ctx == nil {
				return "", errors.New("nil context in the function")
			}
			return "r", ctx.Err()
		})
		for range 2 {
			r, err := f.call(nil, a, b) //nolint:staticcheck // a nil context on purpose
			assert.NoError(t, err)
			assert.Equal(t, "r", r)
		}
		assert.EqualValues(t, 1, CacheOf(f.fn).Stats().Hits)
	})
}

func TestTypedForms(t *testing.T) {
	t.Parallel()
	t.Run("int", func(t *testing.T) {
		t.Parallel()
		tyRunForms(t, 1, 2, 2, 1)
	})
	t.Run("string", func(t *testing.T) {
		t.Parallel()
		// ("x", "y") and ("xy", "") are apart.
		tyRunForms(t, "x", "y", "xy", "")
	})
	t.Run("float64", func(t *testing.T) {
		t.Parallel()
		tyRunForms(t, 0, math.NaN(), math.Copysign(0, -1), math.NaN())
	})
	t.Run("struct", func(t *testing.T) {
		t.Parallel()
		tyRunForms(t,
			tyQuery{"a", []string{"x"}}, tyQuery{"b", nil},
			tyQuery{"a", []string{"x", "y"}}, tyQuery{"b", []string{}})
	})
	t.Run("named int", func(t *testing.T) {
		t.Parallel()
		tyRunForms[tyInt](t, 1, 2, 2, 1)
	})
	t.Run("interface", func(t *testing.T) {
		t.Parallel()
		// int(1) and tyInt(1) are different keys, and so are (int(1),
		// int64(2)) and (tyInt(1), int(2)).
		tyRunForms[any](t, 1, int64(2), tyInt(1), 2)
	})
}

func TestTypedAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	fi := Func(func(x int) int { return x * 2 })
	fs := Func(func(s string) string { return s + "!" })
	fc := FuncCtx(func(_ context.Context, s string) (string, error) { return s + "?", nil })
	f2 := Func2(func(x int, s string) int { return x + len(s) })
	ctx := context.Background()
	fi(21)
	fs("user:1234")
	_, _ = fc(ctx, "user:1234")
	f2(1, "user:1234")
	cases := map[string]func(){
		"Func[int,int]":          func() { benchSink += fi(21) },
		"Func[string,string]":    func() { benchSink += len(fs("user:1234")) },
		"FuncCtx[string,string]": func() { s, _ := fc(ctx, "user:1234"); benchSink += len(s) },
		"Func2[int,string,int]":  func() { benchSink += f2(1, "user:1234") },
	}
	for name, hit := range cases {
		assert.Zero(t, testing.AllocsPerRun(1000, hit), "a hit of %s allocates", name)
	}
	assert.Zero(t, CacheOf(fi).Stats().Misses-1)
	assert.Zero(t, CacheOf(fc).Stats().Misses-1)
}

func tyPanicMessage(t *testing.T, f func()) string {
	t.Helper()
	r := tyCatch(f)
	require.NotNil(t, r, "no panic")
	return fmt.Sprint(r)
}

func TestTypedBadInput(t *testing.T) {
	t.Parallel()
	nilCases := map[string]func(){
		"Func":     func() { Func[int, int](nil) },
		"FuncErr":  func() { FuncErr[int, int](nil) },
		"FuncCtx":  func() { FuncCtx[int, int](nil) },
		"Func2":    func() { Func2[int, int, int](nil) },
		"Func2Err": func() { Func2Err[int, int, int](nil) },
		"Func2Ctx": func() { Func2Ctx[int, int, int](nil) },
	}
	for name, f := range nilCases {
		msg := tyPanicMessage(t, f)
		assert.True(t, strings.HasPrefix(msg, "memo:"), "%s(nil): %q", name, msg)
	}
	id := func(x int) int { return x }
	optCases := map[string]Option{
		"WithMaxSize(0)":   WithMaxSize(0),
		"WithTTL(-1)":      WithTTL(-1),
		"WithErrorTTL(-1)": WithErrorTTL(-1),
		"WithKey(nil)":     WithKey(nil),
		"WithCache(nil)":   WithCache(nil),
		"nil Option":       nil,
	}
	for name, opt := range optCases {
		msg := tyPanicMessage(t, func() { Func(id, opt) })
		assert.True(t, strings.HasPrefix(msg, "memo:"), "%s: %q", name, msg)
		msg = tyPanicMessage(t, func() {
			FuncCtx(func(context.Context, int) (int, error) { return 0, nil }, opt)
		})
		assert.True(t, strings.HasPrefix(msg, "memo:"), "FuncCtx %s: %q", name, msg)
	}
}

// TestTypedNilInterfaceResult: a result of interface type may be nil, and
// a nil result is stored and returned like any other.
func TestTypedNilInterfaceResult(t *testing.T) {
	t.Parallel()
	var execs atomic.Int32
	f := Func(func(x int) error {
		execs.Add(1)
		if x == 0 {
			return nil
		}
		return errors.New("x")
	})
	g := Func2(func(a, b string) any {
		execs.Add(1)
		return nil
	})
	for range 2 {
		require.NotPanics(t, func() { assert.NoError(t, f(0)) })
		require.NotPanics(t, func() { assert.Nil(t, g("a", "b")) })
	}
	assert.EqualValues(t, 2, execs.Load(), "nil results are stored")
	assert.Error(t, f(1))

	// Coalesced callers get the nil result too.
	release := make(chan struct{})
	h := Func(func(int) fmt.Stringer { <-release; return nil })
	done := make(chan any, 2)
	for range 2 {
		go func() { done <- tyCatch(func() { assert.Nil(t, h(1)) }) }()
	}
	flAwaitInFlight(t, CacheOf(h), 1, 2)
	close(release)
	assert.Nil(t, flRecv(t, done))
	assert.Nil(t, flRecv(t, done))

	// A nil interface argument is a key of its own.
	k := Func(func(x any) string { return fmt.Sprintf("%T", x) })
	assert.Equal(t, "<nil>", k(nil))
	assert.Equal(t, "<nil>", k(nil))
	assert.Equal(t, "*int", k((*int)(nil)))
	assert.EqualValues(t, 1, CacheOf(k).Stats().Hits)
	assert.True(t, Invalidate(k, nil))
}

// The typed constructors reject a context where they would key it, at
// decoration, naming what to use instead.
//
// Guards the call-semantics bugs reported in issues 8 (items 1, 5, 6) and 9
// (items 1, 2).
func TestTypedRejectContextElsewhere(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		make func()
		use  string
	}{
		{"Func2, context second", func() { Func2(func(id int, ctx context.Context) int { return id }) }, "use Decorate"},
		{"Func, context only", func() { Func(func(ctx context.Context) int { return 0 }) }, "use Decorate"},
		{"FuncErr, context first", func() { FuncErr(func(ctx context.Context) (int, error) { return 0, nil }) }, "use Decorate"},
		{"Func2Err, context first", func() { Func2Err(func(ctx context.Context, id int) (int, error) { return id, nil }) }, "use FuncCtx"},
		{"Func2Err, context second", func() { Func2Err(func(id int, ctx context.Context) (int, error) { return id, nil }) }, "put the context first"},
		{"FuncCtx, a second context", func() {
			FuncCtx(func(ctx context.Context, c2 context.Context) (int, error) { return 0, nil })
		}, "use Decorate"},
		{"Func2Ctx, a later context", func() {
			Func2Ctx(func(ctx context.Context, id int, c2 context.Context) (int, error) { return id, nil })
		}, "use Decorate"},
	}
	for _, tc := range cases {
		msg := tyPanicMessage(t, tc.make)
		assert.True(t, strings.HasPrefix(msg, "memo: "), "%s: %q", tc.name, msg)
		assert.Contains(t, msg, "context.Context", tc.name)
		assert.Contains(t, msg, tc.use, tc.name)
	}
	assert.Equal(t,
		"memo: Func2 cannot memoize func(int, context.Context) int: its parameter 2 is a context.Context, which Func2 would make part of the key, so that no call would ever hit; use Decorate, which leaves a context.Context in any position out of the key",
		tyPanicMessage(t, func() { Func2(func(id int, ctx context.Context) int { return id }) }))
}

// A function whose only parameter is a context cannot go through FuncCtx
// (it needs an argument after the context): the panic of FuncErr says to
// use Decorate, and does not send the user to FuncCtx, as it did.
func TestContextOnlyFunctionAdvice(t *testing.T) {
	defer func() {
		msg := fmt.Sprint(recover())
		assert.Contains(t, msg, "use Decorate")
		assert.NotContains(t, msg, "FuncCtx")
	}()
	FuncErr(func(ctx context.Context) (int, error) { return 1, nil })
}
