package tests

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd's process get SIGKILL when the test binary
// dies, as on a test's timeout, which skips the cleanups that stop it:
// a host process left behind would hold its ports and CPU into the next
// package's tests.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
