package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// setParentDeath makes the kernel kill the child when the harness dies, even by SIGKILL.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// syncDisks asks the kernel to write back every dirty page.
func syncDisks() { syscall.Sync() }

// fsTopDirFlag is FS_TOPDIR_FL of linux/fs.h, which golang.org/x/sys/unix does not define.
const fsTopDirFlag = 0x00020000

// markTopDir sets FS_TOPDIR_FL on directory dir (see workDir), or returns why it could not.
func markTopDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsTopDirFlag))
	}
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: %w", dir, err)
	}
	return nil
}

// dropCaches asks the kernel to forget the clean cached blocks of the block device that holds
// dir: its inode tables and bitmaps, the device's own page cache (the files' data stays
// cached). Where the device cannot be opened (a container), it drops the whole clean page
// cache instead (/proc/sys/vm/drop_caches). It reports which it did, or why neither: dir on
// no block device (tmpfs, where there is nothing to drop), or not root.
//
// On ext4 without a journal (these VMs' disks) an inode freed less than 60 s ago, or 360 s
// while its inode table block is dirty, is skipped by every create as long as that block is
// cached (fs/ext4/ialloc.c, recently_deleted; the block is only looked up, never read), so
// a run that starts within minutes of other deletions (an earlier run's, a build's) pays a
// scan of the deleted inodes on each new result file: a cost of what ran before it.
func dropCaches(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "", err
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	if major == 0 {
		return "", fmt.Errorf("%s is on no block device", dir)
	}
	name, err := deviceName(major, minor)
	if err != nil {
		name = fmt.Sprintf("device %d:%d", major, minor)
	} else {
		var f *os.File
		if f, err = os.Open(name); err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			_ = f.Close()
			if err == nil {
				return "the cached blocks of " + name, nil
			}
		}
	}
	if werr := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); werr != nil {
		return "", fmt.Errorf("%v; %v", err, werr)
	}
	return "the page cache (" + name + " could not be opened)", nil
}

// deviceName is the /dev path of block device major:minor.
func deviceName(major, minor uint32) (string, error) {
	uevent, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", major, minor))
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(uevent), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return "/dev/" + v, nil
		}
	}
	return "", fmt.Errorf("no DEVNAME for device %d:%d", major, minor)
}
