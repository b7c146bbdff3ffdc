package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// dial opens a connection to b's server and writes raw, the start of a request.
func (b *testBundle) dial(t *testing.T, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", b.server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// postHead is the head of a POST /v1/jobs announcing a JSON body of n bytes, plus extra
// header lines.
func postHead(n int, extra ...string) string {
	h := fmt.Sprintf("POST /v1/jobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", n)
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + "\r\n"
}

// readAnswer reads one answer from rd within waitTimeout.
func readAnswer(t *testing.T, conn net.Conn, rd *bufio.Reader) *http.Response {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestBodyBufferGrowsWithWhatArrived(t *testing.T) {
	t.Parallel()
	a := newAPI(APIConfig{Jobs: newMemJobs(), MaxBodyBytes: 1 << 20})
	for _, tc := range []struct {
		name    string
		arrived int
		maxCap  int
	}{
		{"one byte of an announced megabyte", 1, firstBodyBuffer},
		{"ten kilobytes", 10 << 10, 16 << 10},
		{"the whole megabyte", 1 << 20, 1<<20 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(strings.Repeat("x", tc.arrived)))
			r.ContentLength = 1 << 20 // announced, whatever arrives
			body, err := a.newBody(r.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := a.readBody(httptest.NewRecorder(), r, body); err != nil {
				t.Fatal(err)
			}
			if len(body.Bytes()) != tc.arrived || cap(body.buf) > tc.maxCap || body.charged != int64(cap(body.buf)) {
				t.Fatalf("%d bytes read into a buffer of %d charged %d; want %d in at most %d, all charged",
					len(body.Bytes()), cap(body.buf), body.charged, tc.arrived, tc.maxCap)
			}
			a.releaseBody(body)
			if !a.bodies.TryAcquire(a.cfg.MaxInflightBodyBytes) {
				t.Fatal("the budget did not get the body's bytes back")
			}
			a.bodies.Release(a.cfg.MaxInflightBodyBytes)
		})
	}
}

func TestBodyBudgetRefusesWithRetryAfter(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) {
		c.MaxInflightBodyBytes = 2 * firstBodyBuffer
		c.InflightBodyWait = 50 * time.Millisecond
	})
	// Two bodies that announce the limit and send a byte hold the whole budget.
	var slow []net.Conn
	for range 2 {
		conn, _ := b.dial(t, postHead(testMaxBody)+"{")
		slow = append(slow, conn)
	}
	waitFor(t, "a body refused for want of room", func() bool {
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob)
		if resp.StatusCode != http.StatusServiceUnavailable {
			resp.Body.Close()
			return false
		}
		readProblem(t, resp, http.StatusServiceUnavailable, SlugUnavailable)
		if resp.Header.Get("Retry-After") != "1" || !resp.Close {
			t.Errorf("Retry-After %q, close %v; want 1 and Connection: close", resp.Header.Get("Retry-After"), resp.Close)
		}
		return true
	})
	for _, c := range slow {
		_ = c.Close()
	}
	waitFor(t, "room once the slow bodies are gone", func() bool {
		resp := b.do(t, http.MethodPost, "/v1/jobs", validJob)
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	})
}

func TestSlowBodyGets408(t *testing.T) {
	t.Parallel()
	b := setupOn(t, func(s *http.Server) { s.ReadTimeout = 300 * time.Millisecond })
	conn, rd := b.dial(t, postHead(len(validJob))+validJob[:10])
	resp := readAnswer(t, conn, rd)
	readProblem(t, resp, http.StatusRequestTimeout, SlugRequestTimeout)
	if !resp.Close {
		t.Error("a 408 mid-body keeps the connection; want Connection: close")
	}
}

// TestPreferWaitOutlastsServerTimeouts waits for a job longer than the server's read and write
// timeouts: the route moves its deadlines, so the wait is neither cancelled nor cut.
func TestPreferWaitOutlastsServerTimeouts(t *testing.T) {
	t.Parallel()
	const read, write = 200 * time.Millisecond, 400 * time.Millisecond
	b := setupOn(t, func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = read, write },
		func(c *APIConfig) { c.WriteTimeout = write })
	b.jobs.afterSubmit = func(id string) {
		time.Sleep(3 * write)
		b.jobs.complete(id, "late")
	}
	resp := b.do(t, http.MethodPost, "/v1/jobs", validJob, "Prefer: wait=10")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 with the finished job: %s", resp.StatusCode, readAll(t, resp))
	}
	var rec messages.JobRecord
	decodeInto(t, resp, &rec)
	if rec.Status != messages.StatusCompleted {
		t.Fatalf("record %+v", rec)
	}
}

// TestEventsOutlastServerTimeouts follows a job whose stream lasts longer than the server's
// read and write timeouts, with heartbeats between events, to its terminal event.
func TestEventsOutlastServerTimeouts(t *testing.T) {
	t.Parallel()
	const read, write = 200 * time.Millisecond, 300 * time.Millisecond
	b := setupOn(t, func(s *http.Server) { s.ReadTimeout, s.WriteTimeout = read, write },
		func(c *APIConfig) { c.WriteTimeout, c.Heartbeat = write, 100*time.Millisecond })
	id := b.submit(t)
	resp := b.do(t, http.MethodGet, "/v1/jobs/"+id+"/events", "")
	done := time.AfterFunc(4*write, func() { b.jobs.complete(id, "late") })
	defer done.Stop()
	events, heartbeats := readEvents(t, resp, nil)
	if len(events) == 0 || events[len(events)-1].rec.Status != messages.StatusCompleted {
		t.Fatalf("the stream ended before the job: %+v", events)
	}
	if heartbeats < 3 {
		t.Errorf("%d heartbeats in %s, want several", heartbeats, 4*write)
	}
}

// TestRefusedBodyNotWaitedFor refuses bodies that the client will not send or that are too
// large to drain: the connection closes right after the 413, with no lingering.
func TestRefusedBodyNotWaitedFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, head string }{
		{"client waits for 100 Continue", postHead(2*testMaxBody, "Expect: 100-continue")},
		{"announced beyond the drain bound", postHead((lingerFactor + 1) * testMaxBody)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			conn, rd := b.dial(t, tc.head)
			resp := readAnswer(t, conn, rd)
			readProblem(t, resp, http.StatusRequestEntityTooLarge, SlugBodyTooLarge)
			_ = conn.SetReadDeadline(time.Now().Add(lingerTime / 2))
			if _, err := rd.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the 413: %v, want the connection closed at once (EOF)", err)
			}
		})
	}
}

// TestRefusedBodyIsDrained sends a body over the limit the way producers that write before
// they read do, over a send buffer as small as a real network's: they read the 413 instead of
// a connection reset.
func TestRefusedBodyIsDrained(t *testing.T) {
	t.Parallel()
	const limit = 256 << 10
	b := setup(t, func(c *APIConfig) { c.MaxBodyBytes = limit })
	body := `{"task":"t","input":{"text":"` + strings.Repeat("x", 3*limit) + `"}}`
	conn, rd := b.dial(t, postHead(len(body)))
	if err := conn.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatalf("write the body: %v; the server hung up before it was in", err)
	}
	resp := readAnswer(t, conn, rd)
	readProblem(t, resp, http.StatusRequestEntityTooLarge, SlugBodyTooLarge)
	if !resp.Close {
		t.Error("want Connection: close")
	}
}

func TestBodyReadErrors(t *testing.T) {
	t.Parallel()
	// A timeout is told apart from other failures by os.ErrDeadlineExceeded, which net/http
	// passes on from the connection.
	var ne net.Error
	if err := fmt.Errorf("read: %w", os.ErrDeadlineExceeded); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatal("os.ErrDeadlineExceeded is not a net timeout")
	}
	// A caller that leaves while its body waits for room is not refused with a 503.
	a := newAPI(APIConfig{Jobs: newMemJobs(), MaxBodyBytes: testMaxBody, MaxInflightBodyBytes: 1})
	if !a.bodies.TryAcquire(a.cfg.MaxInflightBodyBytes) {
		t.Fatal("budget not free")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.newBody(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("newBody of a gone caller: %v, want context.Canceled", err)
	}
}
