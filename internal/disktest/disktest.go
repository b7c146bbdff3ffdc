// Package disktest gives tests a real full disk: a small tmpfs mounted for one test, and a
// filler file that takes every free byte of it. Mounting needs root (CI runs as root); tests
// that ask for a tmpfs are skipped otherwise.
package disktest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of the given size ("2m", "16m") on a new directory and returns it; the
// file system is unmounted at cleanup, after the cleanups registered later (so stores opened on
// it close first). It skips the test where tmpfs cannot be mounted for want of privilege.
func Mount(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := mount(dir, size); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mount tmpfs: %v", err)
		}
		t.Fatalf("mount tmpfs of %s on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unmount(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file in dir until its file system has no space left and returns the file's
// path; removing the file gives the space back.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("create filler: %v", err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{0xa5}, 64<<10)
	for len(chunk) > 0 {
		_, err := f.Write(chunk)
		switch {
		case err == nil:
		case errors.Is(err, syscall.ENOSPC):
			// Take what is left in smaller pieces, down to a byte.
			chunk = chunk[:len(chunk)/2]
		default:
			t.Fatalf("fill %s: %v", dir, err)
		}
	}
	return path
}

// Free reports the bytes free for unprivileged writers on the file system holding dir.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
