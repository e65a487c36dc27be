package memo

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"testing"

	"github.com/memokit/memo/internal/keys"
	"github.com/mitchellh/hashstructure/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kQuery is a typical struct argument.
type kQuery struct {
	Name string
	N    int
	Tags []string
}

var benchQuery = kQuery{Name: "users", N: 42, Tags: []string{"active", "admin", "eu"}}

// keyBench is a compiled encoder with prepared arguments: building a key is
// what a decorated call does before its cache lookup.
type keyBench struct {
	w    *wrapped
	args []reflect.Value
}

func newKeyBench(tb testing.TB, fn any, args ...any) keyBench {
	tb.Helper()
	cfg, err := newConfig(nil, true)
	require.NoError(tb, err)
	fv := reflect.ValueOf(fn)
	kb := keyBench{w: newWrapped(fv, cfg)}
	for i, a := range args {
		v := reflect.New(fv.Type().In(i)).Elem()
		v.Set(reflect.ValueOf(a))
		kb.args = append(kb.args, v)
	}
	return kb
}

// build builds one key and returns its length.
func (kb keyBench) build() int {
	s := keys.GetState()
	kb.w.encode(s, kb.args)
	n := len(s.Buf)
	keys.PutState(s)
	return n
}

var benchSink int

func benchKey(b *testing.B, kb keyBench) {
	b.ReportAllocs()
	for b.Loop() {
		benchSink += kb.build()
	}
}

func BenchmarkKeyInt(b *testing.B) {
	benchKey(b, newKeyBench(b, func(int) int { return 0 }, 42))
}

func BenchmarkKeyContextString(b *testing.B) {
	benchKey(b, newKeyBench(b, func(context.Context, string) (string, error) { return "", nil },
		context.Background(), "user:1234"))
}

func BenchmarkKeyStruct(b *testing.B) {
	benchKey(b, newKeyBench(b, func(kQuery) int { return 0 }, benchQuery))
}

func BenchmarkKeyMap8(b *testing.B) {
	m := make(map[string]int, 8)
	for i := range 8 {
		m[fmt.Sprint("key", i)] = i
	}
	benchKey(b, newKeyBench(b, func(map[string]int) int { return 0 }, m))
}

// BenchmarkHashstructureStruct hashes the value BenchmarkKeyStruct keys,
// for comparison with the library the user first asked for.
func BenchmarkHashstructureStruct(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		h, err := hashstructure.Hash(benchQuery, hashstructure.FormatV2, nil)
		if err != nil {
			b.Fatal(err)
		}
		benchSink += int(h)
	}
}

// raceEnabled reports whether the test binary was built with -race, under
// which sync.Pool drops items on purpose and allocation counts mean
// nothing.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestKeyAllocs checks that building a key for scalar arguments does not
// allocate.
func TestKeyAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	cases := map[string]keyBench{
		"int":            newKeyBench(t, func(int) int { return 0 }, 42),
		"context,string": newKeyBench(t, func(context.Context, string) (string, error) { return "", nil }, context.Background(), "user:1234"),
		"struct":         newKeyBench(t, func(kQuery) int { return 0 }, benchQuery),
	}
	for name, kb := range cases {
		kb.build() // warm the pool and the encoders
		allocs := testing.AllocsPerRun(1000, func() { benchSink += kb.build() })
		assert.Zero(t, allocs, name)
	}
}
