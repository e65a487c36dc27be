package stats

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHitRatio(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		hits, misses uint64
		want         float64
	}{
		{"no lookups", 0, 0, 0},
		{"all hits", 4, 0, 1},
		{"all misses", 0, 4, 0},
		{"half", 1, 1, 0.5},
		{"three quarters", 3, 1, 0.75},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, Stats{Hits: tt.hits, Misses: tt.misses}.HitRatio())
		})
	}
}

func TestAvgTime(t *testing.T) {
	t.Parallel()
	assert.Zero(t, Stats{}.AvgTime(), "no calls")
	assert.Zero(t, Stats{TotalTime: time.Second}.AvgTime(), "time without calls must not divide by zero")
	assert.Equal(t, 1200*time.Microsecond, Stats{TotalCalls: 2, TotalTime: 2400 * time.Microsecond}.AvgTime())
}

func TestMap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    Stats
		want map[string]any
	}{
		{
			name: "empty",
			s:    Stats{MaxSize: 128},
			want: map[string]any{
				"hits": 0, "misses": 0, "hit_miss_ratio": "0.0000",
				"avg_time": "0.0000 s", "max_time": "0.0000 s", "min_time": "0.0000 s",
				"total_calls": 0, "current_size": 0, "max_size": 128, "ttl_sec": "None",
			},
		},
		{
			name: "one hit one miss with ttl",
			s: Stats{
				Hits: 1, Misses: 1, Coalesced: 7, Evictions: 8, Expirations: 9, Failures: 1,
				TotalCalls: 2, TotalTime: 2400 * time.Microsecond,
				MinTime: 400 * time.Microsecond, MaxTime: 2 * time.Millisecond,
				CurrentSize: 1, MaxSize: 10, TTL: 60 * time.Second,
			},
			want: map[string]any{
				"hits": 1, "misses": 1, "hit_miss_ratio": "0.5000",
				"avg_time": "0.0012 s", "max_time": "0.0020 s", "min_time": "0.0004 s",
				"total_calls": 2, "current_size": 1, "max_size": 10, "ttl_sec": "60.0000",
			},
		},
		{
			name: "fractional ttl and ratio",
			s:    Stats{Hits: 2, Misses: 1, TTL: 1500 * time.Millisecond},
			want: map[string]any{
				"hits": 2, "misses": 1, "hit_miss_ratio": "0.6667",
				"avg_time": "0.0000 s", "max_time": "0.0000 s", "min_time": "0.0000 s",
				"total_calls": 0, "current_size": 0, "max_size": 0, "ttl_sec": "1.5000",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// assert.Equal on map[string]any compares dynamic types too, so
			// this also pins the integer keys to int and the rest to string.
			assert.Equal(t, tt.want, tt.s.Map())
		})
	}
}

func TestMapTypes(t *testing.T) {
	t.Parallel()
	m := Stats{Hits: 3, Misses: 2, TotalCalls: 1, CurrentSize: 4, MaxSize: 5}.Map()
	assert.Len(t, m, 10)
	for _, k := range []string{"hits", "misses", "total_calls", "current_size", "max_size"} {
		assert.IsType(t, int(0), m[k], k)
	}
	for _, k := range []string{"hit_miss_ratio", "avg_time", "max_time", "min_time", "ttl_sec"} {
		assert.IsType(t, "", m[k], k)
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	s := Stats{
		Hits: 3, Misses: 18, Coalesced: 1, Evictions: 2, Expirations: 0,
		TotalCalls: 1, Failures: 0,
		TotalTime: 1200 * time.Microsecond, MinTime: 1200 * time.Microsecond, MaxTime: 1200 * time.Microsecond,
		CurrentSize: 3, MaxSize: 100, TTL: time.Minute,
		Abandoned: 4, Uncacheable: 5, Led: 11, GetMisses: 2, // Misses == Led + Coalesced + Abandoned + GetMisses
		RefreshesStarted: 9, RefreshesSucceeded: 7, RefreshesFailed: 1, StaleServed: 6, Rejected: 8,
		AbandonedLeaders: 3, StaleRetries: 2,
		BatchCalls: 2, BatchCached: 5, BatchJoined: 1,
	}
	s.ExecTimes.Counts[bucketOf(1200*time.Microsecond)] = 1
	s.BatchKeys.Counts[sizeBucketOf(3)], s.BatchKeys.Sum = 2, 7
	want := "" +
		"hits                3\n" +
		"misses              18\n" +
		"led                 11\n" +
		"coalesced           1\n" +
		"abandoned           4\n" +
		"get misses          2\n" +
		"abandoned leaders   3\n" +
		"hit ratio           14.29%\n" +
		"evictions           2\n" +
		"expirations         0\n" +
		"uncacheable         5\n" +
		"calls               1\n" +
		"tier hits           0\n" +
		"failures            0\n" +
		"avg time            1.2ms\n" +
		"min time            1.2ms\n" +
		"max time            1.2ms\n" +
		"p50 time            1.2ms\n" +
		"p90 time            1.2ms\n" +
		"p99 time            1.2ms\n" +
		"refreshes started   9\n" +
		"refreshes succeeded 7\n" +
		"refreshes failed    1\n" +
		"stale served        6\n" +
		"stale retries       2\n" +
		"rejected            8\n" +
		"batch calls         2\n" +
		"batch keys/call     3.5\n" +
		"batch cached        5\n" +
		"batch joined        1\n" +
		"size                3/100\n" +
		"ttl                 1m0s"
	assert.Equal(t, want, s.String())
	assert.Equal(t, want, fmt.Sprint(s), "fmt uses String")

	zero := Stats{}.String()
	assert.Contains(t, zero, "hit ratio           0.00%\n")
	assert.Contains(t, zero, "avg time            0s\n")
	assert.Contains(t, zero, "p99 time            0s\n")
	assert.Contains(t, zero, "ttl                 none")
	assert.NotContains(t, zero, "batch", "no batch rows for a function that is not a batch function")
}

// TestStringShowsEveryCounter: a counter added to Stats without a row in
// String fails here.
func TestStringShowsEveryCounter(t *testing.T) {
	t.Parallel()
	var s Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[string]string{}
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Uint64 {
			n := uint64(1000 + 17*i)
			f.SetUint(n)
			want[v.Type().Field(i).Name] = fmt.Sprint(n)
		}
	}
	require.Len(t, want, 22, "the uint64 counters of Stats")
	out := s.String()
	for field, n := range want {
		assert.Regexp(t, `(?m) `+n+`$`, out, field)
	}
}

func TestPending(t *testing.T) {
	t.Parallel()
	var r Recorder
	for h := range uint64(10) {
		r.Miss(h)
	}
	assert.EqualValues(t, 10, r.Snapshot().Pending(), "no miss has ended")
	r.Led(3)
	r.Coalesced(2)
	r.Abandoned(2)
	r.Uncacheable(1) // a Set, or a call already counted as Led: not a term
	r.GetMissed(2)
	r.AbandonedLeader(1) // one of the Abandoned: not a term
	r.StaleRetried(1)    // an execution's, not a miss's: not a term
	s := r.Snapshot()
	assert.EqualValues(t, 3, s.Led)
	assert.EqualValues(t, 2, s.GetMisses)
	assert.EqualValues(t, 1, s.Pending())
	r.Led(1)
	assert.Zero(t, r.Snapshot().Pending(), "every miss accounted for")
	r.Execution(time.Millisecond, false) // UpdateProfiling: not a miss
	assert.Zero(t, r.Snapshot().Pending())
	r.Reset()
	assert.Equal(t, Stats{}, r.Snapshot())
}
