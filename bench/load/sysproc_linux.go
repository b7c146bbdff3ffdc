package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath makes the kernel kill the child when the harness dies, even by SIGKILL.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// syncDisks asks the kernel to write back every dirty page.
func syncDisks() { syscall.Sync() }
