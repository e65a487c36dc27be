package redistier

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/memokit/memo"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commandCounter counts, once armed, the pipelines a client sends that
// read values (connection set-up pipelines are left out), the GETs in them,
// and the scripts it runs (a lease's acquire is a script).
type commandCounter struct {
	armed                   atomic.Bool
	pipelines, gets, script atomic.Int64
}

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.armed.Load() && strings.HasPrefix(strings.ToLower(cmd.Name()), "eval") {
			h.script.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.Load() {
			reads := false
			for _, c := range cmds {
				switch strings.ToLower(c.Name()) {
				case "get":
					h.gets.Add(1)
					reads = true
				case "eval", "evalsha":
					h.script.Add(1)
				}
			}
			if reads {
				h.pipelines.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestBatchReadsWarmKeysTogether: a replica whose batch call misses keys
// another replica has filled reads them all in one pipeline (one round
// trip per node: memo.TierPeeker), takes no lease and does not call fn.
func TestBatchReadsWarmKeysTogether(t *testing.T) {
	flushAll(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
	defer cancel()
	keys := make([]int, 20)
	for i := range keys {
		keys[i] = i
	}
	load := func(calls *atomic.Int64) func(context.Context, []int) (map[int]string, error) {
		return func(_ context.Context, ks []int) (map[int]string, error) {
			calls.Add(1)
			m := make(map[int]string, len(ks))
			for _, k := range ks {
				m[k] = "v" + string(rune('a'+k))
			}
			return m, nil
		}
	}

	var callsA atomic.Int64
	tierA, err := New(srv.Client(), WithBudget(5*time.Second))
	require.NoError(t, err)
	defer tierA.Close()
	fa := memo.Batch(load(&callsA), memo.WithName(t.Name()), memo.WithTier(tierA))
	got, err := fa(ctx, keys)
	require.NoError(t, err)
	require.Len(t, got, len(keys))
	require.LessOrEqual(t, callsA.Load(), int64(len(keys)), "replica A computed each cold key once")

	var callsB atomic.Int64
	client := srv.Client()
	counter := &commandCounter{}
	client.AddHook(counter)
	tierB, err := New(client, WithBudget(5*time.Second))
	require.NoError(t, err)
	defer tierB.Close()
	fb := memo.Batch(load(&callsB), memo.WithName(t.Name()), memo.WithTier(tierB))
	counter.armed.Store(true)
	got2, err := fb(ctx, keys)
	counter.armed.Store(false)
	require.NoError(t, err)
	assert.Equal(t, got, got2, "replica B reads replica A's values")
	assert.Zero(t, callsB.Load(), "replica B never runs fn")
	assert.Equal(t, int64(len(keys)), counter.gets.Load(), "each key read once")
	maxPipelines := int64(1)
	if os.Getenv("MEMO_REDIS_CLUSTER") == "1" {
		maxPipelines = 3 // one per master
	}
	assert.LessOrEqual(t, counter.pipelines.Load(), maxPipelines, "the keys read in one pipeline per node")
	assert.Zero(t, counter.script.Load(), "no lease taken")
}
