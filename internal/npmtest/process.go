package npmtest

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Process is a program started by Start. It is stopped (with its children) when the test ends.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// Write collects the program's output; it is what Output returns.
func (p *Process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns what the program has printed so far (stdout and stderr interleaved).
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Exited reports whether the program has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start runs path with args in its own process group and kills the group when t ends. It fails t
// when the program cannot be started.
func Start(t testing.TB, path string, args ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	setProcessGroup(p.cmd)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		killProcessGroup(p.cmd)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", path)
		}
	})
	return p
}

// WaitOutput waits until the program has printed want, and reports true then; it reports
// false when the program exits first, and fails t when timeout passes. A server that says
// where it listens is waited for this way, so that a port taken by another process in the
// meantime (the program then exits) is noticed instead of that process being tested.
func (p *Process) WaitOutput(t testing.TB, want string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.Output(), want) {
			return true
		}
		if p.Exited() {
			return strings.Contains(p.Output(), want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %s:\n%s", p.cmd.Path, want, timeout, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitHTTP polls url with GET until it answers (any status) or timeout passes, failing t with the
// program's output then, or at once when p has exited.
func (p *Process) WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited before answering %s:\n%s", p.cmd.Path, url, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s within %s (%v):\n%s", p.cmd.Path, url, timeout, err, p.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
