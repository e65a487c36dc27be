package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server get SIGKILL when the test process that
// started it dies (a fuzz worker is killed, not stopped), so that no
// redis-server outlives its test binary.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
