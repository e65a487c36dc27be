package redistier

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/redistier/internal/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The staleness checker: three replica processes (this test binary
// re-executed, MEMO_REDISTIER_CHILD=checker) share one memoized function
// whose source is a version counter per key, in a file per key. Replica 0
// also runs the writer: it bumps a key's version in the source, then calls
// memo.InvalidateContext. Readers on every replica call the function on
// random keys. Every read and every invalidation goes to the parent over
// the child's stdout, stamped with the wall clock (one clock: the
// processes run on one machine). Meanwhile the parent injects faults into
// the redis-server: connection kills (CLIENT KILL), CLIENT PAUSE, a
// restart, evictions under allkeys-lru with a small maxmemory, and the
// loss of the generation key that an eviction causes.
//
// The check: a read that started more than the bound after an
// invalidation of its key returned without error must return that
// invalidation's version or a newer one; and on the writer's replica, so
// must a read after an invalidation that returned an error (the replica
// that failed to invalidate never serves the old value: issue 18). The
// checker reports the longest stale window it saw (from the first
// invalidation the read missed to the read's start), after acknowledged
// invalidations and after failed ones.
//
// Settings (environment):
//   - MEMO_CHECKER_OPS: the writer's number of invalidations (default
//     checkerDefaultOps: a few seconds).
//   - MEMO_CHECKER_DURATION: instead, how long the writer writes, a Go
//     duration (MEMO_CHECKER_DURATION=5m for the long run).
//   - MEMO_CHECKER_BOUND: the bound, a Go duration (default
//     checkerDefaultBound).
//   - MEMO_CHECKER_FAULTS: the faults to inject, a comma-separated subset
//     of checkerFaultKinds or "none" (default: all).

const (
	checkerDefaultOps = 800
	// checkerDefaultBound is the longest a replica may serve a value after
	// an invalidation of it returned: the time the invalidation's message
	// takes to reach the other replicas, with room for a loaded machine
	// under -race. A replica whose subscription broke flushes when it
	// resubscribes, within the same time. (The current code documents
	// WithMaxLocalAge, 30 s, only for a message lost without a visible
	// break, which these faults do not cause.)
	checkerDefaultBound = 500 * time.Millisecond
	checkerKeys         = 8
	checkerReaders      = 4 // goroutines per replica
	checkerReplicas     = 3
	checkerClearEvery   = 250 // the writer's Clear, every that many invalidations
)

// checkerOps returns the writer's number of invalidations.
func checkerOps(t *testing.T) int {
	if v := os.Getenv("MEMO_CHECKER_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "MEMO_CHECKER_OPS")
		return n
	}
	return checkerDefaultOps
}

// checkerFaultKinds are the faults the checker injects.
var checkerFaultKinds = []string{"kill-normal", "kill-pubsub", "pause-all", "pause-write", "evict-lru", "evict-gen", "restart"}

// checkerFaults returns the faults to inject: MEMO_CHECKER_FAULTS (a
// comma-separated subset of checkerFaultKinds, or "none"), else all.
func checkerFaults(t *testing.T) []string {
	v := os.Getenv("MEMO_CHECKER_FAULTS")
	if v == "" {
		return checkerFaultKinds
	}
	if v == "none" {
		return nil
	}
	kinds := strings.Split(v, ",")
	for _, k := range kinds {
		require.Contains(t, checkerFaultKinds, k, "MEMO_CHECKER_FAULTS")
	}
	return kinds
}

// checkerBound returns the bound.
func checkerBound(t *testing.T) time.Duration {
	if v := os.Getenv("MEMO_CHECKER_BOUND"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "MEMO_CHECKER_BOUND")
		return d
	}
	return checkerDefaultBound
}

// checkerSource is the source of the checked function: one file per key
// holding its version.
type checkerSource string

func (s checkerSource) path(k string) string { return filepath.Join(string(s), k) }

func (s checkerSource) read(k string) (int64, error) {
	b, err := os.ReadFile(s.path(k))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// write replaces k's version atomically (a rename).
func (s checkerSource) write(k string, v int64) error {
	tmp := s.path(k) + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(v, 10)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path(k))
}

func checkerKey(i int) string { return "k" + strconv.Itoa(i) }

// runCheckerChild is a replica of the checker: it prints "ready" once
// its tier is subscribed, starts on "go" from stdin, and stops on "stop"
// (or stdin's end), then prints "end" and exits. Lines:
//
//	r <key> <version> <start ns> <end ns>          a read
//	e <key> <start ns> <end ns> <error>            a read that failed
//	w <key> <version> <start ns> <end ns> ok|<err> an invalidation (replica 0)
//	c <start ns> <end ns>                          a Clear (replica 0)
//	done                                           the writer finished
func runCheckerChild(string) int {
	src := checkerSource(os.Getenv("MEMO_CHECKER_SRC"))
	writer := os.Getenv("MEMO_CHECKER_WRITER") == "true"
	ops, _ := strconv.Atoi(os.Getenv("MEMO_CHECKER_OPS"))
	rdb := childClient(os.Getenv("MEMO_REDIS_ADDR"))
	defer rdb.Close()
	tier, err := New(rdb, WithBudget(100*time.Millisecond), WithBreakerTimeout(200*time.Millisecond))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer tier.Close()
	<-tier.Ready()
	f := memo.FuncErr(src.read, memo.WithName(os.Getenv("MEMO_NAME")), memo.WithTier(tier))

	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	emit := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		mu.Unlock()
	}
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if l, _ := in.ReadString('\n'); l != "go\n" {
		return 1
	}
	stop := make(chan struct{})
	go func() {
		_, _ = in.ReadString('\n') // "stop", or the parent's end
		close(stop)
	}()
	var wg sync.WaitGroup
	for range checkerReaders {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := checkerKey(rand.IntN(checkerKeys))
				t0 := time.Now().UnixNano()
				v, err := f(k)
				t1 := time.Now().UnixNano()
				if err != nil {
					emit("e %s %d %d %q", k, t0, t1, err.Error())
				} else {
					emit("r %s %d %d %d", k, v, t0, t1)
				}
				time.Sleep(time.Duration(200+rand.IntN(600)) * time.Microsecond) // pacing
			}
		})
	}
	if writer {
		wg.Go(func() {
			versions := make([]int64, checkerKeys)
			var until time.Time // MEMO_CHECKER_DURATION: write until then, whatever ops
			if d, err := time.ParseDuration(os.Getenv("MEMO_CHECKER_DURATION")); err == nil && d > 0 {
				until, ops = time.Now().Add(d), math.MaxInt
			}
			for op := range ops {
				if !until.IsZero() && time.Now().After(until) {
					break
				}
				if op%checkerClearEvery == 0 {
					// A Clear moves the function to a new generation: the
					// generation key exists from then on, and its loss
					// (an eviction) is a fault the tier must survive.
					t0 := time.Now().UnixNano()
					memo.CacheOf(f).Clear()
					emit("c %d %d", t0, time.Now().UnixNano())
				}
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(checkerKeys)
				k := checkerKey(i)
				versions[i]++
				if err := src.write(k, versions[i]); err != nil {
					emit("fatal %q", err.Error())
					return
				}
				t0 := time.Now().UnixNano()
				_, err := memo.InvalidateContext(context.Background(), f, k)
				t1 := time.Now().UnixNano()
				res := "ok"
				if err != nil {
					res = strconv.Quote(err.Error())
				}
				emit("w %s %d %d %d %s", k, versions[i], t0, t1, res)
				time.Sleep(time.Duration(1+rand.IntN(5)) * time.Millisecond) // pacing
			}
			emit("done")
			mu.Lock()
			_ = out.Flush()
			mu.Unlock()
		})
	}
	wg.Wait()
	mu.Lock()
	_ = out.Flush()
	mu.Unlock()
	fmt.Println("end")
	return 0
}

// checkerRead is one read a replica reported.
type checkerRead struct {
	proc    int
	key     string
	version int64
	t0, t1  int64
}

// checkerInval is one invalidation the writer reported.
type checkerInval struct {
	key     string
	version int64
	t0, t1  int64
	ok      bool
	err     string
}

// checkerFault is one fault the parent injected.
type checkerFault struct {
	kind   string
	t0, t1 int64
}

// checkerChild is a running replica.
type checkerChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan struct{}
	done   chan struct{} // the writer finished (replica 0)
	ended  chan struct{} // stdout closed
	reads  []checkerRead
	errs   int
	clears int
	ws     []checkerInval
	bad    []string // lines that did not parse
}

func startCheckerChild(t *testing.T, proc int, s *redistest.Server, src checkerSource, ops int) *checkerChild {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"MEMO_REDISTIER_CHILD=checker", "MEMO_REDIS_ADDR="+s.Addr, "MEMO_NAME="+t.Name(),
		"MEMO_CHECKER_SRC="+string(src), "MEMO_CHECKER_OPS="+strconv.Itoa(ops),
		"MEMO_CHECKER_WRITER="+strconv.FormatBool(proc == 0))
	if s.Cluster() != nil {
		cmd.Env = append(cmd.Env, clusterEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &checkerChild{cmd: cmd, stdin: stdin, ready: make(chan struct{}), done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(c.ended)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			c.parse(proc, sc.Text())
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-c.ended
	})
	return c
}

// parse records one line of the child's output (on the reading
// goroutine; the test reads the records after ended).
func (c *checkerChild) parse(proc int, l string) {
	f := strings.Fields(l)
	num := func(i int) int64 {
		if i >= len(f) {
			return -1
		}
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	switch {
	case l == "ready":
		close(c.ready)
	case l == "done":
		close(c.done)
	case l == "end":
	case len(f) == 3 && f[0] == "c":
		c.clears++
	case len(f) == 5 && f[0] == "r":
		c.reads = append(c.reads, checkerRead{proc: proc, key: f[1], version: num(2), t0: num(3), t1: num(4)})
	case len(f) >= 4 && f[0] == "e":
		c.errs++
	case len(f) >= 6 && f[0] == "w":
		res := strings.Join(f[5:], " ")
		c.ws = append(c.ws, checkerInval{key: f[1], version: num(2), t0: num(3), t1: num(4), ok: res == "ok", err: res})
	default:
		c.bad = append(c.bad, l)
	}
}

// TestCheckerNoStaleReadPastBound runs the checker (see the top of this
// file). It guards every way an invalidation that returned can be lost or
// undone across replicas: a lost or evicted generation key (the
// invalidation deletes another generation's key), the local entry dropped
// before the Redis delete (a load in between puts the old value back), a
// broken subscription (messages lost), a restart, evictions.
func TestCheckerNoStaleReadPastBound(t *testing.T) {
	// A redis-server of its own (in the cluster variant of the suite, a
	// three-master cluster of its own), evicting any key under maxmemory.
	var s *redistest.Server
	nodes := []*redistest.Server{}
	if onCluster() {
		c := newCluster(t, "--maxmemory-policy", "allkeys-lru")
		s, nodes = c.Front(), c.Nodes
	} else {
		s = newServer(t, "--maxmemory-policy", "allkeys-lru")
		nodes = append(nodes, s)
	}
	ops, bound := checkerOps(t), checkerBound(t)
	if v := os.Getenv("MEMO_CHECKER_DURATION"); v != "" {
		_, err := time.ParseDuration(v)
		require.NoError(t, err, "MEMO_CHECKER_DURATION")
	}
	ctx := context.Background()
	setMaxmemory := func(n *redistest.Server) {
		// Small: what the tier stores plus about 1 MB, so that the junk
		// the eviction fault writes evicts the tier's keys too.
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		defer rdb.Close()
		info, err := rdb.InfoMap(ctx, "memory").Result()
		require.NoError(t, err)
		used, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
		require.NoError(t, err)
		require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used+1<<20, 10)).Err())
	}
	for _, n := range nodes {
		setMaxmemory(n)
	}

	src := checkerSource(t.TempDir())
	for i := range checkerKeys {
		require.NoError(t, src.write(checkerKey(i), 0))
	}
	children := make([]*checkerChild, checkerReplicas)
	for i := range children {
		children[i] = startCheckerChild(t, i, s, src, ops)
	}
	for i, c := range children {
		select {
		case <-c.ready:
		case <-c.ended:
			t.Fatalf("replica %d exited at start", i)
		case <-time.After(hangAfter):
			t.Fatalf("replica %d never got ready", i)
		}
	}
	start := time.Now()
	for _, c := range children {
		_, err := io.WriteString(c.stdin, "go\n")
		require.NoError(t, err)
	}

	// Faults, one every 250-750 ms (pacing), in a shuffled round, until
	// the writer is done.
	kinds := checkerFaults(t)
	var faults []checkerFault
	inject := func(kind string) {
		t0 := time.Now().UnixNano()
		switch kind {
		case "kill-normal":
			_ = s.Do("CLIENT", "KILL", "TYPE", "normal")
		case "kill-pubsub":
			_ = s.Do("CLIENT", "KILL", "TYPE", "pubsub")
		case "pause-all":
			_ = s.Do("CLIENT", "PAUSE", 300, "ALL")
		case "pause-write":
			_ = s.Do("CLIENT", "PAUSE", 300, "WRITE")
		case "evict-lru":
			// Junk over maxmemory: allkeys-lru evicts values, leases and
			// generation keys alike.
			junk := strings.Repeat("x", 4096)
			rdb := s.Client()
			p := rdb.Pipeline()
			for i := range 512 {
				p.Set(ctx, "junk:"+strconv.Itoa(rand.IntN(1<<20))+":"+strconv.Itoa(i), junk, time.Minute)
			}
			_, _ = p.Exec(ctx)
			_ = rdb.Close()
		case "evict-gen":
			// What an eviction of the generation key does, for certain.
			rdb := s.Client()
			for _, k := range keysOf(t, s.Client(), "memo:*:gen") {
				_ = rdb.Del(ctx, k).Err()
			}
			_ = rdb.Close()
		case "restart":
			n := rand.IntN(len(nodes)) // one master of a cluster
			nodes[n].Kill()
			time.Sleep(100 * time.Millisecond) // down for a while
			if c := s.Cluster(); c != nil {
				require.NoError(t, c.Restart(n))
			} else {
				require.NoError(t, s.Restart())
			}
			setMaxmemory(nodes[n])
		}
		faults = append(faults, checkerFault{kind: kind, t0: t0, t1: time.Now().UnixNano()})
	}
	round := slices.Clone(kinds)
	for writing := true; writing; {
		select {
		case <-children[0].done:
			writing = false
		case <-children[0].ended:
			writing = false
		case <-time.After(time.Duration(250+rand.IntN(500)) * time.Millisecond):
			if len(round) == 0 {
				round = slices.Clone(kinds)
			}
			if len(round) == 0 { // MEMO_CHECKER_FAULTS=none
				continue
			}
			i := rand.IntN(len(round))
			inject(round[i])
			round = slices.Delete(round, i, i+1)
		}
	}
	_ = s.Do("CLIENT", "UNPAUSE")
	// The readers go on past the bound after the last invalidation, so
	// that a value stale at the end is seen.
	time.Sleep(bound + 200*time.Millisecond)
	for _, c := range children {
		_, _ = io.WriteString(c.stdin, "stop\n")
	}
	for i, c := range children {
		select {
		case <-c.ended:
		case <-time.After(hangAfter):
			t.Fatalf("replica %d never ended", i)
		}
		require.NoError(t, c.cmd.Wait(), "replica %d", i)
		require.Empty(t, c.bad, "replica %d printed lines the checker does not know", i)
	}
	elapsed := time.Since(start)

	r := checkStaleness(children, bound)
	counts := map[string]int{}
	for _, f := range faults {
		counts[f.kind]++
	}
	t.Logf("checker: %d replicas, %d keys, %v: %d reads (%d failed), %d invalidations (%d returned an error), faults %v",
		checkerReplicas, checkerKeys, elapsed.Round(time.Millisecond), r.reads, r.readErrs, r.invals, r.failed, counts)
	t.Logf("checker: %d Clears; longest stale window after an acknowledged invalidation %v (per replica %v); after one that returned an error %v; bound %v",
		children[0].clears, time.Duration(r.longest).Round(time.Millisecond), durations(r.longestBy), time.Duration(r.longestFailed).Round(time.Millisecond), bound)
	if len(r.violations) == 0 {
		return
	}
	slices.SortFunc(r.violations, func(a, b checkerViolation) int { return cmp.Compare(b.window, a.window) })
	var b strings.Builder
	fmt.Fprintf(&b, "%d reads (on %d keys) returned a value older than an invalidation that returned more than %v before them (acknowledged, or failed on the writer's replica 0); longest %v. The worst:",
		len(r.violations), r.staleKeys(), bound, time.Duration(r.violations[0].window))
	for _, v := range r.violations[:min(8, len(r.violations))] {
		res := "ok"
		if !v.inval.ok {
			res = "error " + v.inval.err
		}
		fmt.Fprintf(&b, "\n  replica %d read %s=%d at +%v, %v after the invalidation of version %d returned (+%v, %s); last fault before: %s",
			v.read.proc, v.read.key, v.read.version, time.Duration(v.read.t0-start.UnixNano()).Round(time.Millisecond),
			time.Duration(v.window).Round(time.Millisecond), v.inval.version, time.Duration(v.inval.t1-start.UnixNano()).Round(time.Millisecond),
			res, lastFault(faults, v.inval.t1, start))
	}
	t.Error(b.String())
}

func durations(ns []int64) []time.Duration {
	d := make([]time.Duration, len(ns))
	for i, n := range ns {
		d[i] = time.Duration(n).Round(time.Millisecond)
	}
	return d
}

// lastFault names the last fault injected before ns, with its time since
// start.
func lastFault(faults []checkerFault, ns int64, start time.Time) string {
	last := "none"
	for _, f := range faults {
		if f.t0 <= ns {
			last = fmt.Sprintf("%s at +%v", f.kind, time.Duration(f.t0-start.UnixNano()).Round(time.Millisecond))
		}
	}
	return last
}

// checkerViolation is a read past the bound: it returned a version older
// than inval's, which was acknowledged window ns before the read started.
type checkerViolation struct {
	read   checkerRead
	inval  checkerInval
	window int64
}

type checkerResult struct {
	reads, readErrs, invals, failed int
	longest, longestFailed          int64
	longestBy                       []int64
	violations                      []checkerViolation
}

func (r *checkerResult) staleKeys() int {
	keys := map[string]bool{}
	for _, v := range r.violations {
		keys[v.read.key] = true
	}
	return len(keys)
}

// checkStaleness compares every read with the invalidations of its key.
// The writer bumps a key's version before it invalidates it, one
// invalidation at a time, so a key's invalidations are in the order of
// both their versions and their times. A read that started after the
// invalidation of version w returned, and returned a version below w, is
// stale; the window is from the first such invalidation's return to the
// read's start; past the bound it is a violation.
func checkStaleness(children []*checkerChild, bound time.Duration) *checkerResult {
	r := &checkerResult{longestBy: make([]int64, len(children))}
	acked := map[string][]checkerInval{}
	failed := map[string][]checkerInval{}
	for _, w := range children[0].ws {
		r.invals++
		if w.ok {
			acked[w.key] = append(acked[w.key], w)
		} else {
			r.failed++
			failed[w.key] = append(failed[w.key], w)
		}
	}
	// firstAbove returns the first invalidation in ws (in order) of a
	// version above v that returned before t0.
	firstAbove := func(ws []checkerInval, v, t0 int64) (checkerInval, bool) {
		i, _ := slices.BinarySearchFunc(ws, v, func(w checkerInval, v int64) int { return cmp.Compare(w.version, v+1) })
		if i < len(ws) && ws[i].t1 < t0 {
			return ws[i], true
		}
		return checkerInval{}, false
	}
	for _, c := range children {
		r.readErrs += c.errs
		for _, rd := range c.reads {
			r.reads++
			if w, ok := firstAbove(acked[rd.key], rd.version, rd.t0); ok {
				win := rd.t0 - w.t1
				r.longest = max(r.longest, win)
				r.longestBy[rd.proc] = max(r.longestBy[rd.proc], win)
				if win > bound.Nanoseconds() {
					r.violations = append(r.violations, checkerViolation{read: rd, inval: w, window: win})
				}
			}
			if w, ok := firstAbove(failed[rd.key], rd.version, rd.t0); ok {
				win := rd.t0 - w.t1
				r.longestFailed = max(r.longestFailed, win)
				if rd.proc == 0 && win > bound.Nanoseconds() {
					// The writer itself serves the value it failed to
					// invalidate: the rule is that it never does
					// (its failed invalidation is retried, and the key is
					// not served from the tier meanwhile).
					r.violations = append(r.violations, checkerViolation{read: rd, inval: w, window: win})
				}
			}
		}
	}
	return r
}
