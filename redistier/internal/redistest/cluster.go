package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterSlots is the number of hash slots of a Redis Cluster.
const ClusterSlots = 16384

// Cluster is a Redis Cluster of three masters (no replicas), each a
// redis-server on loopback ports of its own. Node i serves the slots
// [i*16384/3, (i+1)*16384/3). Nodes are killed and restarted through
// [Cluster.Kill] and [Cluster.Restart]; a restarted node comes back empty
// with its slots (its cluster config file outlives it). Since the cluster
// runs with cluster-require-full-coverage no, the live nodes keep serving
// their slots while one is down.
type Cluster struct {
	Nodes []*Server
	dir   string
	front *Server
}

// StartCluster starts three cluster nodes in dir (each with the extra
// arguments), assigns the slots (CLUSTER ADDSLOTSRANGE), introduces the
// nodes (CLUSTER MEET) and waits until every node reports
// cluster_state:ok and knows the others.
func StartCluster(dir string, extra ...string) (*Cluster, error) {
	c := &Cluster{dir: dir}
	c.front = &Server{cluster: c}
	for range 3 {
		s, err := start(dir, true, extra)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	c.front.Addr, c.front.Port = c.Nodes[0].Addr, c.Nodes[0].Port
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, s := range c.Nodes {
		lo, hi := c.slots(i)
		if err := nodeDo(ctx, s.Addr, "CLUSTER", "ADDSLOTSRANGE", lo, hi); err != nil {
			c.Close()
			return nil, fmt.Errorf("redistest: CLUSTER ADDSLOTSRANGE on %s: %w", s.Addr, err)
		}
	}
	for _, s := range c.Nodes[1:] {
		if err := nodeDo(ctx, c.Nodes[0].Addr, "CLUSTER", "MEET", "127.0.0.1", s.Port, s.BusPort); err != nil {
			c.Close()
			return nil, fmt.Errorf("redistest: CLUSTER MEET %s: %w", s.Addr, err)
		}
	}
	if err := c.WaitOK(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// slots returns node i's first and last slot.
func (c *Cluster) slots(i int) (lo, hi int) {
	n := len(c.Nodes)
	return i * ClusterSlots / n, (i+1)*ClusterSlots/n - 1
}

// nodeDo runs one command on the node at addr.
func nodeDo(ctx context.Context, addr string, args ...any) error {
	_, err := nodeCmd(ctx, addr, args...)
	return err
}

func nodeCmd(ctx context.Context, addr string, args ...any) (any, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	return rdb.Do(ctx, args...).Result()
}

// WaitOK waits until every node answers, reports cluster_state:ok with
// all slots served, and knows every other node as connected and not
// failed, or ctx ends.
func (c *Cluster) WaitOK(ctx context.Context) error {
	var last string
	for {
		ok := true
		for _, s := range c.Nodes {
			info, err := nodeCmd(ctx, s.Addr, "CLUSTER", "INFO")
			if err != nil {
				ok, last = false, s.Addr+": "+err.Error()
				break
			}
			is, _ := info.(string)
			if !strings.Contains(is, "cluster_state:ok") || !strings.Contains(is, "cluster_slots_ok:"+strconv.Itoa(ClusterSlots)) ||
				!strings.Contains(is, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))) {
				ok, last = false, s.Addr+": "+is
				break
			}
			nodes, err := nodeCmd(ctx, s.Addr, "CLUSTER", "NODES")
			if err != nil {
				ok, last = false, s.Addr+": "+err.Error()
				break
			}
			ns, _ := nodes.(string)
			if strings.Contains(ns, "fail") || strings.Contains(ns, "disconnected") || strings.Contains(ns, "handshake") || strings.Contains(ns, "noaddr") {
				ok, last = false, s.Addr+": "+ns
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: the cluster is not ok: %s", last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Front returns a [Server] that stands for the whole cluster: its Client
// is a cluster client, its Do runs on every node, its Addr is the first
// node's (a seed), and its Close closes the cluster. It is no process:
// Kill, Stop, Cont and Restart panic on it.
func (c *Cluster) Front() *Server { return c.front }

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// ClusterOptions returns the options the tier needs (context deadlines
// honoured, no retries, short timeouts) for a cluster client seeded with
// addrs.
func ClusterOptions(addrs ...string) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:                 addrs,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           time.Second,
	}
}

// Client returns a cluster client on every node, with [ClusterOptions].
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(ClusterOptions(c.Addrs()...))
}

// clusterClient is a cluster client whose Keys asks every master (a
// ClusterClient's own asks one node, at random), which is what a test
// that lists keys means; every other method is the ClusterClient's.
type clusterClient struct{ *redis.ClusterClient }

// Keys returns the keys matching pattern on every master, sorted.
func (c clusterClient) Keys(ctx context.Context, pattern string) *redis.StringSliceCmd {
	var mu sync.Mutex
	var keys []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		k, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, k...)
		mu.Unlock()
		return err
	})
	slices.Sort(keys)
	return redis.NewStringSliceResult(keys, err)
}

// Do runs one command on every live node (FLUSHALL, CONFIG SET, CLIENT
// KILL): the errors of the nodes that failed, joined.
func (c *Cluster) Do(args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, s := range c.Nodes {
		if err := nodeDo(ctx, s.Addr, args...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Addr, err))
		}
	}
	return errors.Join(errs...)
}

// Slot returns the hash slot of key, as the cluster computes it.
func (c *Cluster) Slot(key string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	for _, s := range c.Nodes { // any live node answers
		var v any
		if v, err = nodeCmd(ctx, s.Addr, "CLUSTER", "KEYSLOT", key); err == nil {
			n, _ := v.(int64)
			return int(n), nil
		}
	}
	return 0, err
}

// Owner returns the index in Nodes of the node that serves key's slot.
func (c *Cluster) Owner(key string) (int, error) {
	slot, err := c.Slot(key)
	if err != nil {
		return 0, err
	}
	for i := range c.Nodes {
		if lo, hi := c.slots(i); slot >= lo && slot <= hi {
			return i, nil
		}
	}
	return 0, fmt.Errorf("redistest: slot %d of %q has no node", slot, key)
}

// Kill SIGKILLs node i.
func (c *Cluster) Kill(i int) { c.Nodes[i].Kill() }

// Restart starts node i again, on its ports, from its cluster config
// file (its identity and slots, no data), and waits until the cluster is
// ok again.
func (c *Cluster) Restart(i int) error {
	if err := c.Nodes[i].Restart(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.WaitOK(ctx)
}

// Close kills every node and removes their cluster config files.
func (c *Cluster) Close() {
	for _, s := range c.Nodes {
		s.Close()
		_ = os.Remove(filepath.Join(s.dir, "nodes-"+strconv.Itoa(s.Port)+".conf"))
	}
}

// Drain waits until every message published on any node before the call
// has reached every node. PUBLISH on a cluster reaches the subscribers of
// the other nodes over the cluster bus, later than those of its own node:
// a test that subscribes after Drain gets no message of an earlier test.
// (Each node's bus link delivers in order: a marker published on every
// node and received on every node comes after all that went before.)
func (c *Cluster) Drain(ctx context.Context) error {
	const channel = "redistest:drain"
	subs := make([]*redis.PubSub, len(c.Nodes))
	for i, s := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
		defer rdb.Close()
		subs[i] = rdb.Subscribe(ctx, channel)
		defer subs[i].Close()
		if _, err := subs[i].Receive(ctx); err != nil { // the subscription's confirmation
			return fmt.Errorf("redistest: drain: subscribing on %s: %w", s.Addr, err)
		}
	}
	marker := strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	for i, s := range c.Nodes {
		if err := nodeDo(ctx, s.Addr, "PUBLISH", channel, marker+strconv.Itoa(i)); err != nil {
			return fmt.Errorf("redistest: drain: publishing on %s: %w", s.Addr, err)
		}
	}
	for i, sub := range subs {
		seen := map[string]bool{}
		for len(seen) < len(c.Nodes) {
			m, err := sub.ReceiveMessage(ctx)
			if err != nil {
				return fmt.Errorf("redistest: drain: on %s: %w", c.Nodes[i].Addr, err)
			}
			if strings.HasPrefix(m.Payload, marker) {
				seen[m.Payload] = true
			}
		}
	}
	return nil
}
