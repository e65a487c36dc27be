package stats_test

import (
	"fmt"
	"time"

	"github.com/memokit/memo/stats"
)

func ExampleStats_Map() {
	var r stats.Recorder
	r.Miss(1)
	r.Execution(1200*time.Microsecond, false)
	r.Hit(1)

	s := r.Snapshot()
	s.CurrentSize, s.MaxSize, s.TTL = 1, 128, time.Minute
	m := s.Map()
	for _, k := range []string{"hits", "misses", "hit_miss_ratio", "avg_time", "min_time", "max_time", "total_calls", "current_size", "max_size", "ttl_sec"} {
		fmt.Printf("%s: %v\n", k, m[k])
	}
	// Output:
	// hits: 1
	// misses: 1
	// hit_miss_ratio: 0.5000
	// avg_time: 0.0012 s
	// min_time: 0.0012 s
	// max_time: 0.0012 s
	// total_calls: 1
	// current_size: 1
	// max_size: 128
	// ttl_sec: 60.0000
}

func ExampleStats_String() {
	var r stats.Recorder
	for h := range uint64(3) {
		r.Miss(h) // a miss that runs the function
		r.Execution(time.Duration(h+1)*time.Millisecond, h == 2)
		r.Led(1)
	}
	r.Miss(3) // a miss served by the execution another caller led
	r.Coalesced(1)
	r.Hit(0)

	s := r.Snapshot()
	s.CurrentSize, s.MaxSize = 3, 100
	fmt.Println(s)
	// Output:
	// hits                1
	// misses              4
	// led                 3
	// coalesced           1
	// abandoned           0
	// get misses          0
	// abandoned leaders   0
	// hit ratio           20.00%
	// evictions           0
	// expirations         0
	// uncacheable         0
	// calls               3
	// tier hits           0
	// failures            1
	// avg time            2ms
	// min time            1ms
	// max time            3ms
	// p50 time            1.536ms
	// p90 time            3ms
	// p99 time            3ms
	// refreshes started   0
	// refreshes succeeded 0
	// refreshes failed    0
	// stale served        0
	// stale retries       0
	// rejected            0
	// size                3/100
	// ttl                 none
}
