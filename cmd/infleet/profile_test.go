package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The recordings behind INFLEET_CPUPROFILE and INFLEET_TRACE: nothing without a path, a file
// with something in it once stopped, and an error naming what and where when the file cannot
// be created.
func TestRecordings(t *testing.T) {
	for _, r := range []struct {
		what  string
		start func(string) (func(), error)
	}{{"cpu profile", startCPUProfile}, {"execution trace", startTrace}} {
		stop, err := r.start("")
		if err != nil {
			t.Fatalf("%s without a path: %v", r.what, err)
		}
		stop()
		path := filepath.Join(t.TempDir(), "out")
		stop, err = r.start(path)
		if err != nil {
			t.Fatalf("%s: %v", r.what, err)
		}
		for i := range 1000 {
			_ = strings.Repeat("x", i)
		}
		stop()
		if st, err := os.Stat(path); err != nil {
			t.Fatalf("%s: %v", r.what, err)
		} else if st.Size() == 0 {
			t.Fatalf("%s: %s is empty after stop", r.what, path)
		}
		missing := filepath.Join(t.TempDir(), "no-such-dir", "out")
		if _, err := r.start(missing); err == nil || !strings.Contains(err.Error(), "create "+r.what+" "+missing) {
			t.Fatalf("%s in a missing directory: %v", r.what, err)
		}
	}
}
