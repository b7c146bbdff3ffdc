package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter reads the CPU time a run has used so far: this process's (the peer's workers and
// its client) and its server's (PostgreSQL's or Redis's processes, when they run on this
// machine), so that a run can report what a job cost beside how fast jobs went.
type cpuMeter struct {
	// server returns the processes of the peer's server, nil when they are not known (the
	// server runs elsewhere, or /proc cannot be read).
	server func() []int
}

// cpuSample is one reading of a cpuMeter.
type cpuSample struct {
	self time.Duration
	// server is each server process's CPU time by its pid; nil when unknown.
	server map[int]time.Duration
}

// sample reads the CPU used so far. A nil meter reads only this process.
func (m *cpuMeter) sample() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if m == nil || m.server == nil {
		return s
	}
	pids := m.server()
	if len(pids) == 0 {
		return s
	}
	s.server = make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if d, ok := procCPU(pid); ok {
			s.server[pid] = d
		}
	}
	return s
}

// serverSince is the CPU the server's processes used from a to b: each process b found,
// less what it had used at a (nothing when it started since); -1 when either is unknown.
// A process that exited between the two is not counted.
func serverSince(a, b cpuSample) time.Duration {
	if a.server == nil || b.server == nil {
		return -1
	}
	var used time.Duration
	for pid, d := range b.server {
		used += d - a.server[pid]
	}
	return used
}

// procCPU is the CPU time (user and system) process pid has used so far, from
// /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, bool) {
	f, ok := procStat(pid)
	if !ok || len(f) < 13 {
		return 0, false
	}
	var ticks int64
	for _, v := range f[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, true
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// platform Go supports.
const clockTicks = 100

// procStat returns the fields of /proc/<pid>/stat after the command name: f[0] is the state
// (field 3), f[1] the parent's pid (field 4).
func procStat(pid int) ([]string, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	// The command name (field 2) may hold spaces and parentheses; it ends at the last ") ".
	i := strings.LastIndex(string(b), ") ")
	if i < 0 {
		return nil, false
	}
	return strings.Fields(string(b[i+2:])), true
}

// parentOf is the parent of process pid, 0 when unknown.
func parentOf(pid int) int {
	f, ok := procStat(pid)
	if !ok || len(f) < 2 {
		return 0
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0
	}
	return ppid
}

// named reports whether process pid of this machine runs the program called name (its
// /proc/<pid>/comm): a pid a server reports is only this machine's when the name matches.
func named(pid int, name string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(b)) == name
}

// localProcess returns pid alone when it is a process of this machine called name, nil
// otherwise.
func localProcess(pid int, name string) []int {
	if pid <= 0 || !named(pid, name) {
		return nil
	}
	return []int{pid}
}

// processTree returns root and its children (PostgreSQL's postmaster and the backends and
// workers it forked), nil when root is not a process of this machine called name.
func processTree(root int, name string) []int {
	if root <= 0 || !named(root, name) {
		return nil
	}
	pids := []int{root}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		if parentOf(pid) == root {
			pids = append(pids, pid)
		}
	}
	return pids
}
