package redistier

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/memokit/memo/redistier/internal/redistest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Cross-process tests: the test binary re-executed as child processes
// (MEMO_REDISTIER_CHILD=mode), each a replica with its own tier.
//
// Modes:
//   - stampede: prints "ready", waits for a line on stdin, then 16
//     goroutines call all 50 keys; prints "execs N hits H".
//   - hold: the function prints "running" and blocks; the parent kills
//     the process.

const (
	stampedeKeys       = 50
	stampedeGoroutines = 16
)

func runChild(mode string) int {
	addr, name := os.Getenv("MEMO_REDIS_ADDR"), os.Getenv("MEMO_NAME")
	rdb := childClient(addr)
	defer rdb.Close()
	lease := hangAfter // MEMO_LEASE_MS sets a short one for the holder that is killed
	if v := os.Getenv("MEMO_LEASE_MS"); v != "" {
		ms, _ := strconv.Atoi(v)
		lease = time.Duration(ms) * time.Millisecond
	}
	// A generous budget and wait unless MEMO_DEFAULT_BUDGET is set (the
	// burst test: a replica starting in a burst must share with the
	// default budget too, dialling included): 4 processes starting at once
	// under -race on 2 cores are slow to dial.
	opts := []Option{WithLease(lease), WithBudget(hangAfter), WithMaxWait(hangAfter)}
	if os.Getenv("MEMO_DEFAULT_BUDGET") != "" {
		opts = opts[:1]
	}
	tier, err := New(rdb, opts...)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer tier.Close()
	<-tier.Ready()
	var execs atomic.Int64
	switch mode {
	case "batch": // batch_test.go
		batchChild(tier, name)
	case "stampede":
		f := memo.Decorate(func(k int) string {
			execs.Add(1)
			time.Sleep(20 * time.Millisecond) // a slow source widens every race window
			return "v" + strconv.Itoa(k)
		}, memo.WithName(name), memo.WithTier(tier))
		fmt.Println("ready")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		var wg sync.WaitGroup
		bad := atomic.Int64{}
		for g := range stampedeGoroutines {
			wg.Go(func() {
				for i := range stampedeKeys {
					k := (i + g*7) % stampedeKeys
					if f(k) != "v"+strconv.Itoa(k) {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		st := tier.Stats()
		fmt.Printf("execs %d hits %d bad %d (local runs %d, errors %d, breaker opened %d, lease waits %d)\n",
			execs.Load(), st.Hits, bad.Load(), st.LocalRuns, st.Errors, st.BreakerOpened, st.LeaseWaits)
	case "hold":
		f := memo.Decorate(func(k int) string {
			fmt.Println("running")
			select {} // until SIGKILL
		}, memo.WithName(name), memo.WithTier(tier))
		f(1)
	}
	return 0
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startChild(t *testing.T, mode string, s *redistest.Server, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{
		"MEMO_REDISTIER_CHILD=" + mode, "MEMO_REDIS_ADDR=" + s.Addr, "MEMO_NAME=" + t.Name(),
	}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for range c.lines { // let the reader finish
		}
	})
	return c
}

// line returns the child's next line of output.
func (c *child) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		require.True(t, ok, "the child exited")
		return l
	case <-time.After(hangAfter):
		t.Fatal("hung waiting for a line from the child")
	}
	return ""
}

func TestCrossProcessStampedeRunsEachKeyOnce(t *testing.T) {
	stampede(t)
}

// TestCrossProcessBurstWithDefaultBudget guards replicas that start in a
// burst with the default 50 ms budget: dialling a cold pool under the
// budget counted as Redis failures and opened the breaker, and those
// replicas stopped sharing (4 processes x 16 goroutines on 50 cold keys
// under -race: 151-193 executions instead of 50). The pool is warmed
// before the tier is ready now, and waiting for the subscription does not
// count against the breaker.
func TestCrossProcessBurstWithDefaultBudget(t *testing.T) {
	stampede(t, "MEMO_DEFAULT_BUDGET=1")
}

// stampede runs 4 processes x 16 goroutines on 50 cold keys, each child
// started with env, and checks that each key ran once in all; then a late
// process gets every key from L2.
func stampede(t *testing.T, env ...string) {
	flushAll(t)
	const procs = 4
	children := make([]*child, procs)
	for i := range children {
		children[i] = startChild(t, "stampede", srv, env...)
	}
	for _, c := range children {
		require.Equal(t, "ready", c.line(t))
	}
	for _, c := range children { // go, all at once
		_, err := io.WriteString(c.stdin, "go\n")
		require.NoError(t, err)
	}
	total, hits, locals := 0, 0, 0
	for i, c := range children {
		var e, h, bad, local, errs, opened int
		l := c.line(t)
		_, err := fmt.Sscanf(l, "execs %d hits %d bad %d (local runs %d, errors %d, breaker opened %d", &e, &h, &bad, &local, &errs, &opened)
		require.NoError(t, err, l)
		assert.Zero(t, bad, "child %d returned a wrong value", i)
		assert.Zero(t, opened, "child %d opened its breaker: it stopped sharing", i)
		t.Logf("child %d: %d executions, %d L2 hits: %s", i, e, h, l)
		total += e
		hits += h
		locals += local
	}
	// A call whose Redis operation outran the budget (this process
	// stalled, on a loaded machine under -race) runs locally: that is the
	// tier failing open, and the only execution past one per key.
	assert.LessOrEqual(t, total, stampedeKeys+locals, "%d processes x %d goroutines on %d cold keys: one execution per key in all, but for local runs", procs, stampedeGoroutines, stampedeKeys)
	assert.GreaterOrEqual(t, total, stampedeKeys)

	// A process that starts later gets every key from L2, running nothing.
	late := startChild(t, "stampede", srv, env...)
	require.Equal(t, "ready", late.line(t))
	_, err := io.WriteString(late.stdin, "go\n")
	require.NoError(t, err)
	var e, h, bad, local int
	_, err = fmt.Sscanf(late.line(t), "execs %d hits %d bad %d (local runs %d", &e, &h, &bad, &local)
	require.NoError(t, err)
	// Keys the first processes ran locally were not written to Redis: the
	// late process runs them (once each), and any call of its own that
	// outran the budget.
	assert.LessOrEqual(t, e, local+locals, "no execution in the late process but for local runs")
	assert.Equal(t, stampedeKeys, e+h, "every other key an L2 hit")
	assert.Zero(t, bad)
}

func TestHolderKilledOthersTakeOver(t *testing.T) {
	flushAll(t)
	const lease = 500 * time.Millisecond
	holder := startChild(t, "hold", srv, "MEMO_LEASE_MS="+strconv.Itoa(int(lease.Milliseconds())))
	require.Equal(t, "running", holder.line(t), "the child holds the lease and runs")

	// No WithMaxWait: newTier's is longer than the test, so that the value
	// can only come from taking the dead holder's lease over (Fills).
	tier := newTier(t, srv, WithLease(lease))
	const fnTime = 10 * time.Millisecond
	// The child's signature: the same name and types share keys.
	f := memo.Decorate(func(k int) string {
		time.Sleep(fnTime)
		return "mine"
	}, memo.WithName(t.Name()), memo.WithTier(tier))
	done := make(chan string)
	go func() { done <- f(1) }()
	require.Eventually(t, func() bool { return tier.Stats().LeaseWaits == 1 }, hangAfter, time.Millisecond, "the parent waits on the child's lease")
	require.NoError(t, syscall.Kill(holder.cmd.Process.Pid, syscall.SIGKILL))
	killed := time.Now()
	v := <-done
	took := time.Since(killed)
	assert.Equal(t, "mine", v)
	t.Logf("holder SIGKILLed: the waiter had the value %v later (lease %v + function %v)", took, lease, fnTime)
	assert.Equal(t, uint64(1), tier.Stats().Fills, "the waiter took the lease over and filled (a wait given up fills nothing)")
	assert.True(t, strings.HasPrefix(tier.Stats().BreakerState, "closed"))
}
