//go:build !linux

package file

import "os"

// putLinked is the Linux fast path of Put (an unnamed file linked into place); elsewhere every
// Put writes a temporary file and renames it.
func putLinked(*os.File, string, []byte, bool) error { return errNotLinked }

// statAt is the Linux fast path of Exists; elsewhere Exists goes through the root.
func statAt(*os.File, string) (bool, error) { return false, errNotLinked }
