//go:build !linux

package file

import "os"

// putLinked is the Linux fast path of Put (an unnamed file linked into place); elsewhere every
// Put writes a temporary file and renames it.
func putLinked(*os.File, string, []byte, bool) error { return errNotLinked }
