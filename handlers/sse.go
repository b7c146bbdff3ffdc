package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
)

// Outcomes of a streamed answer, as a "stream_end" event names them.
const (
	// StreamComplete: the deltas joined are the stored result's text.
	StreamComplete = "complete"
	// StreamBlocked: an output guardrail blocked the answer; the deltas sent are not a result.
	StreamBlocked = "blocked"
	// StreamReplaced: the stored result's text differs from the deltas sent (a guardrail
	// anonymized it, or a retry elsewhere answered anew); the result is the answer.
	StreamReplaced = "replaced"
	// StreamFailed and StreamCancelled: the job ended without a result.
	StreamFailed    = "failed"
	StreamCancelled = "cancelled"
)

// streamEnd is the data of a "stream_end" event.
type streamEnd struct {
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// eventWriter writes the events of one stream, each flushed at once with a write deadline of
// its own.
type eventWriter struct {
	a   *api
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

// send writes one event; it returns false when the caller left.
func (e *eventWriter) send(event, id string, data any) bool {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err) // records, deltas and ends are always JSON
	}
	// encoding/json never emits raw newlines, so data is one line.
	e.buf = append(e.buf[:0], "event: "...)
	e.buf = append(e.buf, event...)
	e.buf = append(e.buf, "\nid: "...)
	e.buf = append(e.buf, id...)
	e.buf = append(e.buf, "\ndata: "...)
	e.buf = append(e.buf, b...)
	e.buf = append(e.buf, "\n\n"...)
	return e.write(e.buf)
}

func (e *eventWriter) write(b []byte) bool {
	e.a.streamDeadline(e.rc)
	if _, err := e.w.Write(b); err != nil {
		return false // the caller left; Watch ends with ctx.
	}
	return e.rc.Flush() == nil
}

// streamEvents is GET /v1/jobs/{id}/events: Server-Sent Events of the job's record, one
// "status" event now and one per change, each flushed at once, with a comment line every
// Heartbeat while idle. For a job that asked for streaming, "delta" events carry its answer
// as it arrives and a "stream_end" event precedes the terminal status (see streamJob). The
// stream ends after the terminal status, or when the caller leaves.
func (a *api) streamEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	offset, ok := streamOffset(r)
	if !ok {
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors",
			FieldProblem{Field: "offset", Message: "must be a whole number of bytes, 0 or more (or send Last-Event-ID as the stream gave it)"}))
		return
	}
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
	ew := &eventWriter{a: a, w: w, rc: rc}

	heartbeat := time.NewTicker(a.cfg.Heartbeat)
	defer heartbeat.Stop()
	var js *jobStream // set once the first record says the job streams
	for n := 1; ; {
		var deltas <-chan string
		if js != nil {
			deltas = js.deltas
		}
		select {
		case rec, ok := <-updates:
			if !ok {
				return
			}
			if js == nil && n == 1 && a.cfg.Deltas != nil && wantsStream(rec) {
				fctx, cancel := context.WithCancel(ctx)
				defer cancel()
				js = &jobStream{start: offset, offset: offset, deltas: a.cfg.Deltas.Follow(fctx, id, offset)}
			}
			if js != nil && rec.Status.Terminal() && !js.finish(ctx, ew, rec) {
				return
			}
			evID := strconv.Itoa(n)
			if js != nil {
				evID = strconv.Itoa(js.offset)
			}
			n++
			if !ew.send("status", evID, rec) || rec.Status.Terminal() {
				return
			}
		case text, ok := <-deltas:
			if !ok {
				js.deltas = nil
				continue
			}
			if !js.send(ew, text) {
				return
			}
		case <-heartbeat.C:
			if !ew.write([]byte(": heartbeat\n\n")) {
				return
			}
		}
	}
}

// jobStream is the answer text one event stream has sent: from start to offset.
type jobStream struct {
	start, offset int
	sent          strings.Builder
	deltas        <-chan string
}

// send writes one "delta" event, its id the offset after it.
func (js *jobStream) send(ew *eventWriter, text string) bool {
	js.offset += len(text)
	js.sent.WriteString(text)
	return ew.send("delta", strconv.Itoa(js.offset), map[string]string{"text": text})
}

// finish ends a streaming job's answer before its terminal status rec: it sends the deltas
// already waiting, then the rest of the stored result (all of it to a client that came after
// the job ended, or the tail that another process streamed but this one has not relayed yet),
// and a "stream_end" event saying whether the deltas are the result.
func (js *jobStream) finish(ctx context.Context, ew *eventWriter, rec messages.JobRecord) bool {
	for drained := false; !drained && js.deltas != nil; {
		select {
		case text, ok := <-js.deltas:
			if !ok {
				drained = true
				break
			}
			if !js.send(ew, text) {
				return false
			}
		default:
			drained = true
		}
	}
	end := streamEnd{Outcome: StreamComplete}
	switch rec.Status {
	case messages.StatusCompleted:
		text, err := ew.a.resultText(ctx, rec)
		switch {
		case err != nil:
			end = streamEnd{Outcome: StreamReplaced, Detail: "the stored result could not be read to check the streamed text against it; read GET /v1/jobs/" + rec.JobID + "/result"}
		case len(text) >= js.offset && text[js.start:js.offset] == js.sent.String():
			if rest := text[js.offset:]; rest != "" && !js.send(ew, rest) {
				return false
			}
		case js.start > len(text):
			end = streamEnd{Outcome: StreamReplaced, Detail: "the offset asked for is past the end of the stored answer; read GET /v1/jobs/" + rec.JobID + "/result"}
		default:
			end = streamEnd{Outcome: StreamReplaced, Detail: "the stored answer differs from the streamed text (an output guardrail changed it, or the job was answered anew); the result is GET /v1/jobs/" + rec.JobID + "/result"}
		}
	case messages.StatusCancelled:
		end = streamEnd{Outcome: StreamCancelled, Detail: "the job was cancelled; the streamed text is not a result"}
	default:
		end = streamEnd{Outcome: StreamFailed, Detail: "the job failed; the streamed text is not a result"}
		if rec.Error != nil {
			end.Detail = "the job failed (" + rec.Error.Code + "): " + rec.Error.Message + "; the streamed text is not a result"
			if rec.Error.Code == messages.ErrCodeGuardrailBlocked {
				end = streamEnd{Outcome: StreamBlocked, Detail: "an output guardrail blocked the answer after it was streamed: " + rec.Error.Message + "; discard the streamed text"}
			}
		}
	}
	return ew.send("stream_end", strconv.Itoa(js.offset), end)
}

// resultText reads the output text of a completed job's stored result.
func (a *api) resultText(ctx context.Context, rec messages.JobRecord) (string, error) {
	body, err := a.cfg.Jobs.Result(ctx, rec.JobID, rec.Tenant)
	if err != nil {
		return "", err
	}
	defer body.Close()
	var res messages.Result
	if err := json.NewDecoder(body).Decode(&res); err != nil {
		return "", err
	}
	return res.Output.Text, nil
}

// wantsStream reports whether the job of rec was submitted with "stream": true.
func wantsStream(rec messages.JobRecord) bool {
	if len(rec.Spec) == 0 {
		return false
	}
	var spec struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(rec.Spec, &spec) == nil && spec.Stream
}

// streamOffset reads where a streaming job's deltas resume: ?offset=N, else the
// Last-Event-ID header a reconnecting client sends, else 0. A Last-Event-ID that is not an
// offset (a status event's counter of a job that does not stream) counts as 0.
func streamOffset(r *http.Request) (int, bool) {
	if q := r.URL.Query().Get("offset"); q != "" {
		n, err := strconv.Atoi(q)
		return n, err == nil && n >= 0
	}
	if n, err := strconv.Atoi(r.Header.Get("Last-Event-ID")); err == nil && n >= 0 {
		return n, true
	}
	return 0, true
}
