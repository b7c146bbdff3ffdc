package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// harness holds what every scenario shares. Scenarios run one at a time.
type harness struct {
	opts     options
	bin      string // absolute path of the infleet binary
	http     *http.Client
	body     []byte
	tmp      string
	machine  machine
	split    bool                // the binary has `ingress` and `worker`
	profiles map[string][]string // scenario -> CPU profile paths of its children
	// peersBin is the peer programs' binary once built; peersErr why it could not be.
	peersBin string
	peersErr error
	// trashed counts the data directories discard moved into the trash (under mu).
	trashed int

	out   io.Writer
	mu    sync.Mutex // serialises progress lines; guards trashed
	start time.Time
}

func newHarness(opts options, stderr io.Writer) (*harness, error) {
	bin, err := filepath.Abs(opts.bin)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("no infleet binary at %s (run `make build`, or pass -bin PATH)", bin)
	}
	if opts.profileDir, err = outputDir(opts.profileDir); err != nil {
		return nil, fmt.Errorf("profile directory: %w", err)
	}
	if opts.traceDir, err = outputDir(opts.traceDir); err != nil {
		return nil, fmt.Errorf("trace directory: %w", err)
	}
	tmp, spread, err := workDir(opts.spread)
	if err != nil {
		return nil, err
	}
	h := &harness{
		opts:     opts,
		bin:      bin,
		http:     newHTTPClient(),
		body:     jobBody(),
		tmp:      tmp,
		machine:  describeMachine(bin),
		split:    hasCommands(bin, "ingress", "worker"),
		profiles: map[string][]string{},
		out:      stderr,
		start:    time.Now(),
	}
	if !h.split {
		h.progress("note: %s has no `ingress`/`worker` commands; backlog scenarios fall back to `serve`", bin)
	}
	h.progress("working directory %s", tmp)
	if spread != nil {
		h.progress("note: data directories not spread over the disk (%v); files deleted in the minutes before the run may slow its creates", spread)
	}
	if opts.dropCaches {
		syncDisks()
		if what, err := dropCaches(tmp); err != nil {
			h.progress("note: cached blocks not dropped (%v); files deleted in the minutes before the run may slow its creates", err)
		} else {
			h.progress("dropped %s, so that files deleted before the run do not slow its creates", what)
		}
	}
	if h.machine.busy > 0.15 {
		h.progress("warning: the CPUs were %.0f%% busy with other work before the run; every figure will be lower than on an idle machine", h.machine.busy*100)
	}
	return h, nil
}

// outputDir makes directory dir (for the children's recordings) and returns its absolute path;
// "" stays "".
func outputDir(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o755)
	}
	return abs, err
}

// close removes the working directory with the temporary directory around it (workDir)
// unless -keep was given.
func (h *harness) close() {
	h.http.CloseIdleConnections()
	if h.opts.keep {
		h.progress("kept data directories, configs and child logs in %s", h.tmp)
		return
	}
	if err := os.RemoveAll(filepath.Dir(h.tmp)); err != nil {
		h.progress("could not remove %s: %v", filepath.Dir(h.tmp), err)
	}
}

// workDir creates the harness's working directory: a directory with a random name inside a
// new temporary directory that is marked as the top of a directory hierarchy (FS_TOPDIR_FL,
// `chattr +T`), so that ext4 places it, and with it every data directory of the run, in a
// block group of its own (the Orlov allocator spreads the children of such a directory over
// the disk, the random name choosing where its search starts) instead of in the block group
// of the temporary directory, where builds and tests create and delete files all day.
//
// On ext4 without a journal (these VMs' disks) every create walks past each inode of its
// block group freed in the last 60 s (360 s while the inode's table block is dirty;
// fs/ext4/ialloc.c, find_inode_bit and recently_deleted): in a burn-down started minutes
// after a test run had deleted files in the temporary directory's group, that walk was 28 %
// of the worker's CPU (perf), a cost of what ran before and not of the system measured.
// Dropping the cached blocks (-drop-caches) does not prevent it: each create reads its
// inode's table block back, and with it the deleted inodes beside it.
//
// With mark false (-spread=false) the directory is not marked. spread is why the marking
// failed (a file system without the flag): the run goes on without it.
func workDir(mark bool) (dir string, spread, err error) {
	top, err := os.MkdirTemp("", "infleet-bench-*")
	if err != nil {
		return "", nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	if mark {
		spread = markTopDir(top)
	}
	dir, err = os.MkdirTemp(top, "run-*")
	if err != nil {
		_ = os.RemoveAll(top)
		return "", nil, fmt.Errorf("create a temporary directory: %w", err)
	}
	return dir, spread, nil
}

// quietBusy is the share of the machine's CPUs below which settle counts it as quiet, and
// quietWait how long settle waits for that at the most.
const (
	quietBusy = 0.25
	quietWait = 10 * time.Second
)

// settle flushes dirty pages left by earlier scenarios (their data directories, other work on
// the machine) so that their write-back does not stall the next measurement, then waits up to
// quietWait for the CPUs to be quiet (under quietBusy busy over 250 ms): a peer's server that
// is still checkpointing or vacuuming after its run, or a child still exiting, would otherwise
// be charged to the next measurement. It goes on after quietWait either way (the machine may
// be busy with other work) and says so.
func (h *harness) settle() {
	start := time.Now()
	syncDisks()
	if d := time.Since(start); d > 100*time.Millisecond {
		h.progress("  flushing earlier writes to disk took %s", d.Round(time.Millisecond))
	}
	start = time.Now()
	busy := cpuBusy(250 * time.Millisecond)
	for busy >= quietBusy && time.Since(start) < quietWait {
		busy = cpuBusy(250 * time.Millisecond)
	}
	switch d := time.Since(start); {
	case busy >= quietBusy:
		h.progress("  CPUs still %.0f%% busy after %s; measuring anyway", busy*100, d.Round(time.Millisecond))
	case d > 300*time.Millisecond:
		h.progress("  waited %s for quiet CPUs (%.0f%% busy)", d.Round(time.Millisecond), busy*100)
	}
}

// cleanScenario moves a finished scenario's data directories out of the way (into the
// harness's trash, removed when the harness exits) unless -keep was given. They are not
// removed now: on ext4 without a journal (these VMs' disks), for 60 s after a file is deleted
// (360 s while its inode table block is dirty) the kernel skips its inode when allocating new
// ones and checks every such inode on every create (fs/ext4/ialloc.c, recently_deleted), so
// deleting the 20,000 result files of one run would make the next run's result writes
// several times dearer, a cost of the harness and not of the system measured. Deletions made
// before the harness started (an earlier run's trash) are what -drop-caches is for.
func (h *harness) cleanScenario(name string) {
	if h.opts.keep {
		return
	}
	for _, dir := range []string{filepath.Join(h.tmp, name), filepath.Join(h.tmp, name+"-0ms"), filepath.Join(h.tmp, name+"-100ms"),
		filepath.Join(h.tmp, name+"-0ms-retention"), filepath.Join(h.tmp, name+"-0ms-fsync")} {
		h.discard(dir)
	}
}

// discard moves dir, when it exists, into the harness's trash, removed when the harness exits
// (see cleanScenario for why not now); with -keep it stays where it is.
func (h *harness) discard(dir string) {
	if h.opts.keep {
		return
	}
	if _, err := os.Stat(dir); err != nil {
		return
	}
	trash := filepath.Join(h.tmp, ".trash")
	if err := os.MkdirAll(trash, 0o755); err != nil {
		h.progress("could not create %s: %v", trash, err)
		return
	}
	h.mu.Lock()
	h.trashed++
	n := h.trashed
	h.mu.Unlock()
	if err := os.Rename(dir, filepath.Join(trash, fmt.Sprintf("%d-%s", n, filepath.Base(dir)))); err != nil {
		h.progress("could not move %s out of the way: %v", dir, err)
	}
}

// progress prints one line on stderr, stamped with the time since the run began.
func (h *harness) progress(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, "[%6.1fs] %s\n", time.Since(h.start).Seconds(), fmt.Sprintf(format, args...))
}

// every calls fn every interval until the returned stop is called; stop waits for fn.
func (h *harness) every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// dir returns a fresh data directory for one run of a scenario.
func (h *harness) dir(name string) string {
	return filepath.Join(h.tmp, name, "data")
}

// stopChild stops p and reports a bad exit on stderr: the figures already measured stand.
func (h *harness) stopChild(p *proc) {
	if err := p.stop(); err != nil {
		h.progress("warning: %v", err)
		return
	}
	h.progress("stopped infleet %s (pid %d)", p.role, p.pid())
}

func (h *harness) runScenario(ctx context.Context, name string) ([]row, error) {
	switch name {
	case "throughput":
		return h.throughput(ctx)
	case "concurrency":
		return h.concurrency(ctx)
	case "ingress":
		return h.ingress(ctx)
	case "memory":
		return h.memory(ctx)
	case "burndown":
		return h.burndown(ctx)
	case "fleet":
		return h.fleet(ctx)
	case "batching":
		return h.batching(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// profileTop prints the top of each CPU profile a scenario's children wrote, or says how to
// get one.
func (h *harness) profileTop(name string) {
	if h.opts.profileDir == "" {
		h.progress("%s missed a target: rerun with -profile DIR -scenario %s for a CPU profile of infleet", name, name)
		return
	}
	for _, path := range h.profiles[name] {
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			h.progress("no CPU profile at %s (is INFLEET_CPUPROFILE supported by this binary?)", path)
			continue
		}
		// Flat time alone mostly says "syscall"; the cumulative view says whose.
		for _, view := range [][]string{{"-top", "-nodecount=15"}, {"-top", "-cum", "-nodecount=40"}} {
			args := append([]string{"tool", "pprof"}, view...)
			out, err := exec.Command("go", append(args, h.bin, path)...).CombinedOutput()
			if err != nil {
				h.progress("go tool pprof %s: %v\n%s", path, err, out)
				break
			}
			h.progress("CPU profile %s (go tool pprof %s):\n%s", path, strings.Join(view, " "), strings.TrimRight(string(out), "\n"))
		}
	}
}

// jobTimeout bounds waiting for n jobs to finish: generous, so that only a stall trips it.
func jobTimeout(n int) time.Duration {
	return 2*time.Minute + time.Duration(n)*10*time.Millisecond
}
