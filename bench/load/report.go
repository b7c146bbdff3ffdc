package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Verdicts of a row.
const (
	verdictMet      = "met"
	verdictMissed   = "MISSED"
	verdictMeasured = "measured"
	verdictError    = "ERROR"
)

// row is one line of the results table.
type row struct {
	Scenario string
	Measure  string
	Result   string
	Target   string
	Verdict  string
	Setup    string
}

// judge returns verdictMet or verdictMissed.
func judge(ok bool) string {
	if ok {
		return verdictMet
	}
	return verdictMissed
}

// machine describes where the run happened.
type machine struct {
	cpus       int
	gomaxprocs int
	cpuModel   string
	memTotal   string
	osArch     string
	harnessGo  string
	infleetGo  string
	date       string
	loadAvg    string  // /proc/loadavg's 1, 5 and 15 minute averages at the start
	busy       float64 // share of all CPUs busy over one second before the run, -1 unknown
}

func describeMachine(bin string) machine {
	m := machine{
		cpus:       runtime.NumCPU(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		cpuModel:   procField("/proc/cpuinfo", "model name"),
		memTotal:   procField("/proc/meminfo", "MemTotal"),
		osArch:     runtime.GOOS + "/" + runtime.GOARCH,
		harnessGo:  runtime.Version(),
		infleetGo:  "unknown",
		date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.loadAvg = strings.Join(f[:3], " ")
		}
	}
	m.busy = cpuBusy(time.Second)
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		m.infleetGo = bi.GoVersion
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(m.memTotal, " kB"), 10, 64); err == nil {
		m.memTotal = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file, or "unknown".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// procCPU is the CPU time (user and system) process pid has used so far, from
// /proc/<pid>/stat; -1 when it cannot tell.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start with the state (field 3), so utime and stime (14 and 15) are the 12th and 13th.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return -1
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return -1
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// platform Go supports.
const clockTicks = 100

// cpuBusy measures the share of all CPUs that were not idle over d, from /proc/stat; -1 when
// it cannot tell. Other work on the machine lowers every figure of the run.
func cpuBusy(d time.Duration) float64 {
	read := func() (idle, total float64, ok bool) {
		b, err := os.ReadFile("/proc/stat")
		if err != nil {
			return 0, 0, false
		}
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) < 5 || f[0] != "cpu" {
			return 0, 0, false
		}
		for i, v := range f[1:] {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, 0, false
			}
			total += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		return idle, total, true
	}
	i0, t0, ok0 := read()
	time.Sleep(d)
	i1, t1, ok1 := read()
	if !ok0 || !ok1 || t1 <= t0 {
		return -1
	}
	return 1 - (i1-i0)/(t1-t0)
}

// report collects rows and writes them as markdown.
type report struct {
	m    machine
	rows []row
}

func newReport(m machine) *report { return &report{m: m} }

func (r *report) add(rows ...row) { r.rows = append(r.rows, rows...) }

// write prints the table; each distinct setup is printed once, as a numbered note below it.
func (r *report) write(w io.Writer) {
	m := r.m
	fmt.Fprintf(w, "\n### infleet load results (bench/load)\n\n")
	fmt.Fprintf(w, "Machine: nproc %d (GOMAXPROCS %d), %s, %s, %s; infleet built with %s, harness %s; %s",
		m.cpus, m.gomaxprocs, m.cpuModel, m.memTotal, m.osArch, m.infleetGo, m.harnessGo, m.date)
	if m.loadAvg != "" {
		fmt.Fprintf(w, "; load average before the run %s", m.loadAvg)
	}
	if m.busy >= 0 {
		fmt.Fprintf(w, ", CPUs %.0f%% busy with other work in the second before it", m.busy*100)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintf(w, "infleet runs as a child process on the embedded default (NATS JetStream, SQLite, result files,\n"+
		"sim model); the harness's HTTP clients run on the same machine and share its CPUs, as do the\n"+
		"peers (bench/peers) and their servers, measured in the same run.\n\n")
	fmt.Fprintln(w, "| Scenario | Measure | Result | Target | | Setup |")
	fmt.Fprintln(w, "|---|---|---:|---|---|---|")
	var notes []string
	for _, x := range r.rows {
		ref := ""
		if x.Setup != "" {
			i := slices.Index(notes, x.Setup)
			if i < 0 {
				notes = append(notes, x.Setup)
				i = len(notes) - 1
			}
			ref = fmt.Sprintf("[%d]", i+1)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", x.Scenario, x.Measure, x.Result, x.Target, x.Verdict, ref)
	}
	fmt.Fprintln(w)
	for i, n := range notes {
		fmt.Fprintf(w, "%d. %s\n", i+1, n)
	}
	fmt.Fprintln(w)
}

// thousands formats n rounded to an integer with comma separators.
func thousands(f float64) string {
	n := int64(math.Round(f))
	s := strconv.FormatInt(max(n, -n), 10)
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// mib formats bytes as MiB with one decimal.
func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// ms formats d in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
