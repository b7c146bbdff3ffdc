package main

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The meter finds a server's process tree (a root and what it forked) by the root's name, and
// counts the CPU its processes used between two samples.
func TestCPUMeterReadsAProcessTree(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	name := strings.TrimSpace(string(b))
	child := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })

	if tree := processTree(self, name); !slices.Contains(tree, self) || !slices.Contains(tree, child.Process.Pid) {
		t.Fatalf("processTree(%d, %q) = %v, want it and its child %d", self, name, tree, child.Process.Pid)
	}
	if tree := processTree(self, "postgres"); tree != nil {
		t.Errorf("processTree under another program's name = %v, want nil", tree)
	}
	if got := localProcess(self, name); !slices.Equal(got, []int{self}) {
		t.Errorf("localProcess = %v, want [%d]", got, self)
	}
	if got := parentOf(child.Process.Pid); got != self {
		t.Errorf("parentOf(child) = %d, want %d", got, self)
	}

	m := &cpuMeter{server: func() []int { return processTree(self, name) }}
	a := m.sample()
	time.Sleep(time.Second) // the child counts to 300,000 meanwhile
	z := m.sample()
	if used := serverSince(a, z); used < 10*time.Millisecond {
		t.Errorf("the tree used %s over a second in which its child was busy", used)
	}
	if serverSince(cpuSample{}, z) != -1 || serverSince(a, (*cpuMeter)(nil).sample()) != -1 {
		t.Error("a sample without the server's processes is not unknown")
	}
	for deadline := time.Now().Add(time.Second); z.self <= a.self && time.Now().Before(deadline); {
		z = m.sample()
	}
	if z.self <= a.self {
		t.Errorf("this process's CPU did not grow: %s then %s", a.self, z.self)
	}
}
