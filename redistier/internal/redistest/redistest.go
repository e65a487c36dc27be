// Package redistest starts real redis-server processes for tests, on free
// loopback ports, and drives the faults the tests need (kill, stop,
// restart).
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

// Server is one redis-server process.
type Server struct {
	Addr string
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
	exit chan struct{} // closed when the current process has been reaped
}

// Start runs redis-server in dir (no persistence, DEBUG enabled) with extra
// arguments, on a free port, and waits for its first PONG.
func Start(dir string, extra ...string) (*Server, error) {
	var lastErr error
	for range 5 { // a port taken between the probe and the server's bind: retry
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Port: port, dir: dir, args: extra}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
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

// pid returns the server's process id.
func (s *Server) pid() int { return s.cmd.Process.Pid }

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

// Close kills the server (continuing it first, if stopped).
func (s *Server) Close() {
	s.Cont()
	_ = syscall.Kill(s.pid(), syscall.SIGKILL)
	<-s.exit
}

// Client returns a client for the server with the settings the tier
// needs: context deadlines honoured, no retries, short timeouts.
func (s *Server) Client() *redis.Client {
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

// Do runs one command on a fresh client (for fault injection).
func (s *Server) Do(args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Do(ctx, args...).Err()
}
