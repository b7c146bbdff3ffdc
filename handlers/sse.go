package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/infleet/infleet/messages"
)

// streamEvents is GET /v1/jobs/{id}/events: Server-Sent Events of the job's record, one
// "status" event now and one per change, each flushed at once, with a comment line every
// Heartbeat while idle. The stream ends after the terminal status, or when the caller leaves.
func (a *api) streamEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	updates, err := a.cfg.Jobs.Watch(ctx, id, TenantFromContext(ctx))
	if err != nil {
		a.failed(w, r, err, notFoundDetail(id))
		return
	}
	rc := http.NewResponseController(w)
	// The stream lasts as long as its job, which the server's write timeout would cut: each
	// write gets a deadline of its own. Writers that cannot do that have no deadline to move.
	a.streamDeadline(rc)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		a.log.Warn().Err(err).Str("request_id", RequestIDFromContext(ctx)).Msg("event stream cannot flush")
	}

	heartbeat := time.NewTicker(a.cfg.Heartbeat)
	defer heartbeat.Stop()
	var buf []byte
	for n := 1; ; n++ {
		select {
		case rec, ok := <-updates:
			if !ok {
				return
			}
			buf = appendEvent(buf[:0], n, rec)
			a.streamDeadline(rc)
			if _, err := w.Write(buf); err != nil {
				return // the caller left; Watch ends with ctx.
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if rec.Status.Terminal() {
				return
			}
		case <-heartbeat.C:
			n--
			a.streamDeadline(rc)
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// appendEvent appends one SSE "status" event with id n carrying rec as JSON on one line
// (encoding/json never emits raw newlines).
func appendEvent(b []byte, n int, rec messages.JobRecord) []byte {
	b = append(b, "event: status\nid: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, "\ndata: "...)
	data, err := json.Marshal(rec)
	if err != nil {
		panic(err) // a JobRecord is always JSON
	}
	b = append(b, data...)
	return append(b, "\n\n"...)
}
