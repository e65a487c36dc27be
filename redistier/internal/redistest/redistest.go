// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and drives the faults the tests need (kill, stop,
// restart): one server ([Start]) or a Redis Cluster of three masters
// ([StartCluster]).
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary returns the redis-server to run: $REDIS_SERVER, else the one in
// PATH, else /usr/bin/redis-server if present; "" when there is none.
func Binary() string {
	if b := os.Getenv("REDIS_SERVER"); b != "" {
		return b
	}
	if b, err := exec.LookPath("redis-server"); err == nil {
		return b
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

// Server is one redis-server process, or the front of a [Cluster] (see
// [Cluster.Front]): what the shared tests talk to.
type Server struct {
	Addr string
	Port int
	// BusPort is the cluster bus port of a cluster node; 0 otherwise.
	BusPort int
	dir     string
	args    []string
	cmd     *exec.Cmd
	exit    chan struct{} // closed when the current process has been reaped
	cluster *Cluster      // set on a cluster's front: Client and Do go to the cluster
}

// Start runs redis-server in dir (no persistence, DEBUG enabled) with extra
// arguments, on a free port, and waits for its first PONG.
func Start(dir string, extra ...string) (*Server, error) {
	return start(dir, false, extra)
}

// start is Start; a cluster node (node) gets a second free port for its
// cluster bus and a cluster config file of its own in dir.
func start(dir string, node bool, extra []string) (*Server, error) {
	var lastErr error
	for range 5 { // a port taken between the probe and the server's bind: retry
		n := 1
		if node {
			n = 2 // and the cluster bus
		}
		ports, err := freePorts(n)
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(ports[0]), Port: ports[0], dir: dir, args: extra}
		if node {
			s.BusPort = ports[1]
			s.args = append([]string{
				"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.BusPort),
				"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(s.Port)+".conf"),
				// Other nodes mark a dead node failed after 1 s; the
				// slots of the live ones keep serving meanwhile.
				"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no",
			}, extra...)
		}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (s *Server) start() error {
	bin := Binary()
	if bin == "" {
		return errors.New("redistest: no redis-server (install the redis-server package or set REDIS_SERVER)")
	}
	args := append([]string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--enable-debug-command", "yes", "--protected-mode", "no",
		"--logfile", filepath.Join(s.dir, "redis-"+strconv.Itoa(s.Port)+".log"),
	}, s.args...)
	s.cmd = exec.Command(bin, args...)
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	s.exit = exit
	cmd := s.cmd
	go func() { _ = cmd.Wait(); close(exit) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exit:
			return errors.New("redistest: redis-server exited at start (port taken?)")
		default:
		}
		if Ping(s.Addr) == nil {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = s.cmd.Process.Kill()
	<-exit
	return errors.New("redistest: redis-server did not answer PING within 5s")
}

// Ping sends one PING to addr with a raw connection.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redistest: PING answered %q", line)
	}
	return nil
}

// Cluster returns the cluster s is the front of; nil for a server.
func (s *Server) Cluster() *Cluster { return s.cluster }

// pid returns the server's process id.
func (s *Server) pid() int {
	if s.cluster != nil {
		panic("redistest: a cluster's front is no process: kill, stop or restart one of its Nodes")
	}
	return s.cmd.Process.Pid
}

// Kill sends SIGKILL and waits until the port refuses connections.
func (s *Server) Kill() {
	_ = syscall.Kill(s.pid(), syscall.SIGKILL)
	<-s.exit
}

// Stop sends SIGSTOP: the server keeps its connections and answers nothing.
func (s *Server) Stop() { _ = syscall.Kill(s.pid(), syscall.SIGSTOP) }

// Cont sends SIGCONT.
func (s *Server) Cont() { _ = syscall.Kill(s.pid(), syscall.SIGCONT) }

// Restart starts the server again on the same port, empty, after Kill.
func (s *Server) Restart() error {
	var err error
	for range 50 { // the port may linger briefly
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close kills the server (continuing it first, if stopped); a cluster's
// front closes the cluster.
func (s *Server) Close() {
	if s.cluster != nil {
		s.cluster.Close()
		return
	}
	s.Cont()
	_ = syscall.Kill(s.pid(), syscall.SIGKILL)
	<-s.exit
}

// Client returns a client for the server with the settings the tier
// needs: context deadlines honoured, no retries, short timeouts. On a
// cluster's front it is a cluster client on every node whose Keys lists
// the keys of every master (use [Cluster.Client] for a
// *redis.ClusterClient itself).
func (s *Server) Client() redis.UniversalClient {
	if s.cluster != nil {
		return clusterClient{s.cluster.Client()}
	}
	return redis.NewClient(&redis.Options{
		Addr:                  s.Addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		PoolTimeout:           time.Second,
	})
}

// Do runs one command on a fresh client (for fault injection). On a
// cluster's front it runs on every node (FLUSHALL, CONFIG SET, CLIENT
// KILL reach the whole cluster).
func (s *Server) Do(args ...any) error {
	if s.cluster != nil {
		return s.cluster.Do(args...)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}
