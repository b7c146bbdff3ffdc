package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// startCPUProfile writes a CPU profile to path until the returned stop is called; an empty path
// does nothing. It backs INFLEET_CPUPROFILE, used by the load harness to say where time goes.
func startCPUProfile(path string) (stop func(), err error) {
	return startRecording(path, "cpu profile", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

// writeAllocProfile writes the process's allocation profile (every allocation since start, as
// `go tool pprof -sample_index=alloc_space` reads it) to path; an empty path does nothing. It
// backs INFLEET_MEMPROFILE, written when the process stops.
func writeAllocProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create allocation profile %s: %w", path, err)
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write allocation profile: %w", err)
	}
	return f.Close()
}

// startTrace writes an execution trace (`go tool trace`) to path until the returned stop is
// called; an empty path does nothing. It backs INFLEET_TRACE, for finding where a request
// waits (go tool trace -pprof=sched shows the time goroutines spent ready but not running).
func startTrace(path string) (stop func(), err error) {
	return startRecording(path, "execution trace", trace.Start, trace.Stop)
}

// startRecording creates path and starts what (start) writing to it; the returned stop stops
// it (stop) and closes the file. An empty path does nothing.
func startRecording(path, what string, start func(io.Writer) error, stop func()) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s %s: %w", what, path, err)
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	return func() { stop(); f.Close() }, nil
}
