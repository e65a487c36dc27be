package memo

import (
	"bytes"
	"encoding/hex"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memokit/memo/internal/keys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTierKeysTellOffsetsApart: time.Parse names every numeric offset "",
// so 10:00+01:00 and 11:00+02:00 (one instant, two wall times) had one
// tier key, and a tiered function returned "10:00 +01:00" for both, even
// within one process. The key holds the zone name and offset in effect.
func TestTierKeysTellOffsetsApart(t *testing.T) {
	ft := newFakeTier()
	wall := Decorate(func(tm time.Time) string { return tm.Format("15:04 -07:00") }, WithName("wall"), WithTier(ft))
	p1, err := time.Parse(time.RFC3339, "2026-03-01T10:00:00+01:00")
	require.NoError(t, err)
	p2, err := time.Parse(time.RFC3339, "2026-03-01T11:00:00+02:00")
	require.NoError(t, err)
	require.True(t, p1.Equal(p2))
	assert.Equal(t, "10:00 +01:00", wall(p1))
	k1 := ft.lastKey()
	assert.Equal(t, "11:00 +02:00", wall(p2))
	k2 := ft.lastKey()
	assert.NotEqual(t, k1.Digest, k2.Digest)

	// A named zone: the same instant in Paris and in a fixed zone named
	// like Paris's abbreviation differ; two instants across a DST change
	// keep their offsets.
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	cet := time.FixedZone("CET", 3600)
	at := time.Date(2026, 1, 10, 12, 0, 0, 0, paris)
	assert.Equal(t, "12:00 +01:00", wall(at))
	kp := ft.lastKey()
	assert.Equal(t, "12:00 +01:00", wall(at.In(cet)))
	assert.NotEqual(t, kp.Digest, ft.lastKey().Digest)
	assert.Contains(t, string(kp.Args), "Europe/Paris")
	summer := time.Date(2026, 7, 10, 12, 0, 0, 0, paris)
	assert.Equal(t, "12:00 +02:00", wall(summer))
	assert.Contains(t, string(ft.lastKey().Args), "CEST")
}

// orderID and userID are declared inside functions, with one name: reflect
// calls both "memo.ID".
func orderID(n int) any {
	type ID struct{ N int }
	return ID{n}
}

func userID(n int) any {
	type ID struct{ N int }
	return ID{n}
}

// TestFunctionLocalTypesStayLocal: two types declared inside functions
// with one name used to get one tier key, given to whichever type a
// process met first: replica B's describe(orderID(7)) returned replica A's
// describe(userID(7)). Such types are found in the program's type table
// (the same in every replica), their keys stay local (cached here, never
// shared), and it is logged once per type.
func TestFunctionLocalTypesStayLocal(t *testing.T) {
	require.Equal(t, reflect.TypeOf(orderID(7)).String(), reflect.TypeOf(userID(7)).String())
	require.NotEqual(t, reflect.TypeOf(orderID(7)), reflect.TypeOf(userID(7)))
	assert.True(t, keys.AmbiguousType(reflect.TypeOf(orderID(7))))
	assert.True(t, keys.AmbiguousType(reflect.TypeOf(userID(7))))
	assert.True(t, keys.AmbiguousType(reflect.TypeOf([]any{}).Elem()) == false)
	assert.True(t, keys.AmbiguousType(reflect.TypeOf(map[string][]any{"": {orderID(1)}}["x"])) == false)

	ft := newFakeTier()
	var logs safeLog
	execs := 0
	describe := func(k any) string {
		execs++
		if reflect.TypeOf(k) == reflect.TypeOf(userID(0)) {
			return "user 7: Alice"
		}
		return "order 7: 3 books"
	}
	a := Decorate(describe, WithName("describe"), WithTier(ft), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	b := Decorate(describe, WithName("describe"), WithTier(ft.replica()))
	assert.Equal(t, "user 7: Alice", a(userID(7)))
	assert.Equal(t, "order 7: 3 books", b(orderID(7)), "replica B got replica A's result")
	assert.Equal(t, "user 7: Alice", a(userID(7)))
	assert.Equal(t, "user 7: Alice", a(userID(7)))
	assert.Equal(t, "order 7: 3 books", a(orderID(7)))
	assert.Equal(t, 3, execs, "local keys still hit locally")
	assert.Zero(t, ft.loadCount(), "and never reach the tier")
	a([]any{userID(1)}) // inside a container too
	assert.Zero(t, ft.loadCount())
	assert.Equal(t, 2, strings.Count(logs.String(), "another type of the program has the same name"), "once per type: %s", logs.String())

	// A type declared inside a function whose name no other type has is
	// shared, as a package-level type is.
	type uniqueInStableTest struct{ N int }
	assert.False(t, keys.AmbiguousType(reflect.TypeFor[uniqueInStableTest]()))
	a(uniqueInStableTest{1})
	assert.Equal(t, 1, ft.loadCount())
}

// TestStableKeyChild is the child process of
// TestFunctionLocalTypesAcrossProcesses; it skips unless started by it.
func TestStableKeyChild(t *testing.T) {
	first := os.Getenv("MEMO_STABLE_CHILD")
	if first == "" {
		t.Skip("a child process of TestFunctionLocalTypesAcrossProcesses")
	}
	ft := newFakeTier()
	describe := Decorate(func(k any) string { return "" }, WithName("describe"), WithTier(ft))
	if first == "order" {
		describe(orderID(7))
	} else {
		describe(userID(7))
	}
	if ft.loadCount() == 0 {
		os.Stdout.WriteString("tierkey=local\n")
		return
	}
	k := ft.lastKey()
	os.Stdout.WriteString("tierkey=" + hex.EncodeToString(k.Digest[:]) + "\n")
}

type safeLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *safeLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *safeLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// BenchmarkProgramTypes measures the one-time read of the program's type
// table that ambiguousType does on first use.
func BenchmarkProgramTypes(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		keys.ProgramTypes()
	}
	b.ReportMetric(float64(len(keys.TypeNames)), "names")
}
