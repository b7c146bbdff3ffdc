package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/infleet/infleet/handlers"
)

// sendWholeThenRead is a producer that writes the whole request, body included, before it
// reads a byte of the answer (Python's urllib, Java's HttpURLConnection): a server that closes
// while the body still arrives resets the connection under it. It fails the test on any write
// or read error, and returns the answer.
func sendWholeThenRead(t *testing.T, addr, head string, body []byte) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	// A fixed send buffer, as over a real network: on loopback the kernel would otherwise grow
	// it to megabytes at once and take the whole body whatever the server does.
	if err := conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatalf("write the head: %v", err)
	}
	if _, err := conn.Write(body); err != nil {
		t.Fatalf("write the body (%d bytes): %v; the server hung up before the body was in", len(body), err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// checkTooLarge checks that resp is the 413 problem of CONTRACT.md.
func checkTooLarge(t *testing.T, resp *http.Response) {
	t.Helper()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the problem: %v", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413: %s", resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p handlers.Problem
	if err := json.Unmarshal(data, &p); err != nil || p.Type != handlers.ProblemTypeBase+handlers.SlugBodyTooLarge {
		t.Fatalf("problem %s (%v), want type %s", data, err, handlers.SlugBodyTooLarge)
	}
	if !resp.Close {
		t.Error("the 413 answer keeps the connection open; want Connection: close")
	}
}

// TestOversizedBodySentWholeGets413 sends a 2 MiB job (the limit is the default 1 MiB) the way
// producers that write before they read do, and checks that they read the 413 problem instead of
// a connection reset: announced by Content-Length, and chunked with no length announced.
func TestOversizedBodySentWholeGets413(t *testing.T) {
	t.Parallel()
	h := startServe(t, "log: {level: warn}\n")
	addr := strings.TrimPrefix(h.base, "http://")
	job := `{"task":"summarize","input":{"text":"` + strings.Repeat("x", 2<<20) + `"}}`

	t.Run("content-length", func(t *testing.T) {
		head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(job))
		checkTooLarge(t, sendWholeThenRead(t, addr, head, []byte(job)))
	})
	t.Run("chunked", func(t *testing.T) {
		head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", addr)
		var body strings.Builder
		for rest := job; rest != ""; {
			n := min(len(rest), 32<<10)
			fmt.Fprintf(&body, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		body.WriteString("0\r\n\r\n")
		checkTooLarge(t, sendWholeThenRead(t, addr, head, []byte(body.String())))
	})
}

// vmRSS reads the resident set size of process pid from /proc, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// acceptedConns counts the TCP connections from peers (client ports) that process pid holds on
// its local port: the established sockets of /proc/<pid>/net/tcp{,6} that are among its file
// descriptors (not the ones still waiting in the listen queue). Other connections, such as a
// test's keep-alive client, are not counted however they come and go.
func acceptedConns(t *testing.T, pid, port int, peers map[int]bool) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := make(map[string]bool, len(fds))
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "01" || !inodes[f[9]] {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			_, hexPeer, _ := strings.Cut(f[2], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			peer, perr := strconv.ParseInt(hexPeer, 16, 32)
			if err == nil && perr == nil && int(p) == port && peers[int(peer)] {
				n++
			}
		}
	}
	return n
}

// raiseOpenFiles lifts this process's soft limit on open files to at least n, within the hard
// limit; the server child raises its own (Go does at start).
func raiseOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("the hard limit on open files is %d; this test needs %d", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// TestSlowBodiesDoNotExhaustMemory repeats the attack on `infleet serve` on the embedded
// default: 2,000 connections each announce a 1 MiB body (the limit) and send one byte. The
// server must hold them in little memory (RSS under 150 MB) and keep serving: a normal job
// submitted meanwhile is accepted and finishes promptly.
func TestSlowBodiesDoNotExhaustMemory(t *testing.T) {
	const (
		conns  = 2000
		maxRSS = 150 << 20
	)
	raiseOpenFiles(t, conns+1024)
	dir := t.TempDir()
	addr := freeAddr(t)
	// The read timeout is lifted above the test's length so that no slow body is answered 408
	// and closed while the last ones are still being accepted on a loaded machine.
	c := startRoleAt(t, binary(t), "serve", addr, filepath.Join(dir, "data"),
		writeConfig(t, "log: {level: warn}\nhttp: {read_timeout: 10m}\n"))
	pid := c.cmd.Process.Pid
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	before := vmRSS(t, pid)

	head := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", addr, 1<<20)
	held := make([]net.Conn, conns)
	t.Cleanup(func() {
		for _, conn := range held {
			if conn != nil {
				_ = conn.Close()
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	const dialers = 16
	for d := range dialers {
		wg.Go(func() {
			for i := d; i < conns; i += dialers {
				conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				held[i] = conn
				if _, err := io.WriteString(conn, head); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("open the slow connections: %v", err)
	}
	peers := make(map[int]bool, conns)
	for _, conn := range held {
		peers[conn.LocalAddr().(*net.TCPAddr).Port] = true
	}
	// Wait until the server holds every connection, watching its memory meanwhile.
	var peak int64
	deadline := time.Now().Add(60 * time.Second)
	for {
		rss, n := vmRSS(t, pid), acceptedConns(t, pid, port, peers)
		peak = max(peak, rss)
		if peak > maxRSS {
			t.Fatalf("RSS %d MB (from %d MB) with %d of %d slow connections accepted, want under %d MB",
				peak>>20, before>>20, n, conns, maxRSS>>20)
		}
		if n >= conns {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server accepted %d of %d slow connections in 60s (RSS %d MB)", n, conns, rss>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A normal job, while the slow bodies are held: accepted and finished within seconds.
	start := time.Now()
	code, _, data := c.api.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"hello"}}`,
		map[string]string{"Prefer": "wait=10"})
	if took := time.Since(start); code != http.StatusOK || took > 5*time.Second {
		t.Errorf("a normal job during the attack: %d after %s, want 200 (finished) within 5s: %s", code, took, data)
	}

	// The peak over a second more, with every slow body still held.
	for range 10 {
		peak = max(peak, vmRSS(t, pid))
		time.Sleep(100 * time.Millisecond)
	}
	if n := acceptedConns(t, pid, port, peers); n < conns {
		t.Errorf("the server holds %d connections, fewer than the %d slow ones: it dropped some", n, conns)
	}
	t.Logf("RSS %d MB before, %d MB peak with %d slow bodies held", before>>20, peak>>20, conns)
	if peak > maxRSS {
		t.Errorf("RSS %d MB with %d slow bodies held, want under %d MB", peak>>20, conns, maxRSS>>20)
	}
}

// TestServeClosesSlowAndIdleConnections checks that the server serve runs applies the http
// section's timeouts: a head that never ends and an idle keep-alive connection are closed,
// and a body that does not arrive in time is answered 408.
func TestServeClosesSlowAndIdleConnections(t *testing.T) {
	t.Parallel()
	h := startServe(t, "log: {level: error}\nhttp: {read_timeout: 1s, idle_timeout: 500ms}\n")
	addr := strings.TrimPrefix(h.base, "http://")
	dial := func(t *testing.T, raw string) (net.Conn, *bufio.Reader) {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		return conn, bufio.NewReader(conn)
	}
	closed := func(t *testing.T, rd *bufio.Reader, start time.Time, after time.Duration) {
		t.Helper()
		if _, err := io.ReadAll(rd); err != nil {
			t.Fatalf("want the server to close the connection, got %v", err)
		}
		if took := time.Since(start); took < after {
			t.Fatalf("closed after %s, before the %s timeout", took, after)
		}
	}

	t.Run("head that never ends", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		_, rd := dial(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
		closed(t, rd, start, time.Second)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		_, rd := dial(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
		}
		closed(t, rd, time.Now(), 500*time.Millisecond)
	})
	t.Run("body that does not arrive", func(t *testing.T) {
		t.Parallel()
		_, rd := dial(t, fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"task\"", addr))
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		var p handlers.Problem
		_ = json.Unmarshal(data, &p)
		if resp.StatusCode != http.StatusRequestTimeout || p.Type != handlers.ProblemTypeBase+handlers.SlugRequestTimeout || !resp.Close {
			t.Fatalf("slow body: %d close %v %s; want the 408 problem and Connection: close", resp.StatusCode, resp.Close, data)
		}
	})
}
