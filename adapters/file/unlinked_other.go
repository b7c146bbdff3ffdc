//go:build !unix

package file

import "os"

// unlinked reports whether f's file has no name left; where that cannot be told, false.
func unlinked(*os.File) bool { return false }
