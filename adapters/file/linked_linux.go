//go:build linux

package file

import (
	"errors"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// linkedUnsupported is set once the file system (or kernel) has refused O_TMPFILE or the link
// that names such a file, so later Puts go straight to the temporary-file path.
var linkedUnsupported atomic.Bool

// emptyPathRefused is set once the kernel has refused to link a descriptor by AT_EMPTY_PATH
// (an unprivileged process before Linux 6.10), so later links go through /proc.
var emptyPathRefused atomic.Bool

var errEmptyPathRefused = errors.New("AT_EMPTY_PATH link refused")

// putLinked writes data to an unnamed file in dir (O_TMPFILE) and links it under name, so the
// object appears whole, in one directory operation: no temporary name, no rename. It returns
// errNotLinked when the kernel or file system cannot do it, and an error matching
// fs.ErrExist when name is taken (a replacement goes through a rename instead); on any error
// nothing is left behind.
func putLinked(dir *os.File, name string, data []byte, sync bool) error {
	if linkedUnsupported.Load() {
		return errNotLinked
	}
	dirfd := int(dir.Fd())
	fd, err := unix.Openat(dirfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, uint32(filePerm))
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			linkedUnsupported.Store(true)
			return errNotLinked
		}
		return &os.PathError{Op: "open unnamed file in", Path: dir.Name(), Err: err}
	}
	defer unix.Close(fd)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: dir.Name(), Err: err}
		}
		rest = rest[n:]
	}
	if sync {
		if err := unix.Fsync(fd); err != nil {
			return &os.PathError{Op: "sync", Path: dir.Name(), Err: err}
		}
	}
	// Linking an open file by its descriptor needs either AT_EMPTY_PATH (any user since Linux
	// 6.10, privileged before) or /proc (AT_SYMLINK_FOLLOW on /proc/self/fd/N, any user). The
	// first is one step, the second a walk through /proc: the first is tried until refused.
	err = errEmptyPathRefused
	if !emptyPathRefused.Load() {
		err = unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) {
			emptyPathRefused.Store(true)
			err = errEmptyPathRefused
		}
	}
	if err == errEmptyPathRefused {
		err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			linkedUnsupported.Store(true)
			return errNotLinked
		}
	}
	if err != nil {
		return &os.PathError{Op: "link", Path: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

// statAt reports whether name in dir is a regular file; nothing there is false, no error.
func statAt(dir *os.File, name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &os.PathError{Op: "stat", Path: dir.Name() + "/" + name, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG, nil
}
