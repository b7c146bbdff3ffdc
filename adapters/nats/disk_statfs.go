//go:build linux || darwin || freebsd

package nats

import "syscall"

// freeBytes returns the bytes free for unprivileged writers on the file system holding dir,
// and whether it could tell.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
