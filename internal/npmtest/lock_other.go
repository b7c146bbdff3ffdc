//go:build !unix

package npmtest

import "os/exec"

// lockFile is a no-op where flock is not available: concurrent installs may then race.
func lockFile(string) (func(), error) { return func() {}, nil }

// setProcessGroup does nothing here: only the program itself is stopped.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the program cmd started.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
