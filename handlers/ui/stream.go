package ui

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// streamHeartbeat is how often an idle job stream gets a comment line, so proxies keep it open.
const streamHeartbeat = 15 * time.Second

// jobsStream is the live job list: Server-Sent Events of the first page's rows under the
// page's filters, a "rows" event whenever they change. It reads GET /v1/jobs every
// StreamInterval, so it sees the changes every process of the fleet makes, and costs the
// job path nothing. It ends with a "problem" event when the session it was opened with ends
// (expiry, or logout through this process).
func (c *console) jobsStream(w http.ResponseWriter, r *http.Request) {
	q := filterOf(r).query()
	q.Set("limit", strconv.Itoa(jobPageSize))
	path := "/v1/jobs?" + q.Encode()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()

	tick := time.NewTicker(c.cfg.StreamInterval)
	defer tick.Stop()
	var last []byte
	idle := time.Now()
	sess := sessionFrom(r.Context())
	for {
		if !c.sessions.alive(sess) {
			c.send(w, rc, "problem", []byte("the session ended; log in again"))
			return
		}
		ans := c.call(r, http.MethodGet, path, nil)
		var list jobList
		if ans.ok() && ans.decode(&list) == nil {
			var rows bytes.Buffer
			if err := c.pages.set["jobs"].ExecuteTemplate(&rows, "rows", list.Jobs); err != nil {
				c.log.Error().Err(err).Msg("console job stream failed")
				return
			}
			if !bytes.Equal(rows.Bytes(), last) {
				last = rows.Bytes()
				if !c.send(w, rc, "rows", last) {
					return
				}
				idle = time.Now()
			}
		} else if !c.send(w, rc, "problem", []byte(ans.problem())) {
			return
		}
		if time.Since(idle) >= streamHeartbeat {
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil || rc.Flush() != nil {
				return
			}
			idle = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// send writes one event, each line of data as a data line, and flushes it.
func (c *console) send(w http.ResponseWriter, rc *http.ResponseController, event string, data []byte) bool {
	_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return false
	}
	return rc.Flush() == nil
}
