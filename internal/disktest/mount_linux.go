package disktest

import (
	"errors"
	"syscall"
)

func mount(dir, size string) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size)
}

// unmount detaches the file system; a process that still holds a file open on it (a child the
// test killed but the kernel has not reaped) makes it busy, and it is then detached lazily.
func unmount(dir string) error {
	err := syscall.Unmount(dir, 0)
	if errors.Is(err, syscall.EBUSY) {
		err = syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	return err
}
