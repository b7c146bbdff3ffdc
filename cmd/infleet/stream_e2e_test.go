package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/messages"
)

// streamed is what one GET /v1/jobs/{id}/events of a streaming job showed.
type streamed struct {
	deltas   []string
	ids      []string // of the delta events
	end      struct{ Outcome, Detail string }
	statuses []messages.Status
	// before counts the deltas that came before the stream_end event.
	before int
}

func (s streamed) text() string { return strings.Join(s.deltas, "") }

// followEvents reads the events of job id at base until the stream ends, with header set.
func followEvents(t *testing.T, base, id string, header map[string]string) streamed {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events of %s: %d", id, resp.StatusCode)
	}
	var out streamed
	err = handlers.ReadEvents(resp.Body, func(ev handlers.Event) bool {
		switch ev.Event {
		case "delta":
			var d struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatalf("delta %q: %v", ev.Data, err)
			}
			out.deltas, out.ids = append(out.deltas, d.Text), append(out.ids, ev.ID)
			if out.end.Outcome == "" {
				out.before++
			}
		case "stream_end":
			if err := json.Unmarshal([]byte(ev.Data), &out.end); err != nil {
				t.Fatalf("stream_end %q: %v", ev.Data, err)
			}
		case "status":
			var rec messages.JobRecord
			if err := json.Unmarshal([]byte(ev.Data), &rec); err != nil {
				t.Fatalf("status %q: %v", ev.Data, err)
			}
			out.statuses = append(out.statuses, rec.Status)
		}
		return true
	})
	if err != nil {
		t.Fatalf("events of %s: %v", id, err)
	}
	return out
}

func (h *apiHarness) resultText(id string) string {
	h.t.Helper()
	code, _, body := h.do(http.MethodGet, messages.ResultPath(id), "", nil)
	var res messages.Result
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil {
		h.t.Fatalf("result of %s: %d %s", id, code, body)
	}
	return res.Output.Text
}

const streamText = "write me a long answer about how the tides of the sea follow the moon as it goes around the earth"

// TestServeStreamsAnAnswerThroughADroppedStream runs streaming jobs through serve against
// `infleet fmsim`, which breaks every stream after 3 chunks: the worker resumes each break
// with the text so far as the assistant's prefix, the event stream's deltas join to the
// stored result exactly (which is what fmsim answers the question unstreamed), a client that
// reconnects with Last-Event-ID gets the rest and nothing twice, and an answer the output
// guardrail blocks after it was streamed ends with a stream_end that says so.
func TestServeStreamsAnAnswerThroughADroppedStream(t *testing.T) {
	t.Parallel()
	sim := startFmsim(t, "--drop-stream-after", "3", "--chunk-interval", "20ms")
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: m, provider: openai, base_url: %q, model_id: m}
routes: {default: m}
guardrails:
  output: {words: [zebra]}
workers: {concurrency: 4, max_attempts: 1, shutdown_timeout: 1s}
log: {level: error}
`, sim+"/v1"))

	id := h.submit(fmt.Sprintf(`{"task":"t","input":{"text":%q},"stream":true}`, streamText))
	got := followEvents(t, h.base, id, nil)
	want := fmsimAlone(t, sim, "", streamText)
	if last := got.statuses[len(got.statuses)-1]; last != messages.StatusCompleted || got.end.Outcome != "complete" {
		t.Fatalf("stream ended %q (%s) with status %s", got.end.Outcome, got.end.Detail, last)
	}
	if result := h.resultText(id); got.text() != result || result != want {
		t.Fatalf("streamed %q\nresult   %q\nunstreamed answer %q: want all three equal", got.text(), result, want)
	}
	if got.before < 3 {
		t.Errorf("%d deltas came while the job ran, want the answer in pieces as it arrived", got.before)
	}
	if st := fmsimStats(t, sim); st.DroppedStreams < 2 || st.ResumedStreams != st.DroppedStreams {
		t.Errorf("fmsim: %d streams, %d dropped, %d resumed; want every drop resumed", st.Streams, st.DroppedStreams, st.ResumedStreams)
	}
	for i, d := range got.deltas {
		// Each delta's id is the offset of the answer after it.
		if n, err := strconv.Atoi(got.ids[i]); err != nil || n != len(strings.Join(got.deltas[:i], ""))+len(d) {
			t.Fatalf("delta %d has id %q, want the offset after it", i, got.ids[i])
		}
	}

	// A client that reconnects after 10 bytes gets the rest, nothing twice.
	again := followEvents(t, h.base, id, map[string]string{"Last-Event-ID": "10"})
	if again.text() != want[10:] || again.end.Outcome != "complete" {
		t.Errorf("resumed at 10: %q (%s), want %q", again.text(), again.end.Outcome, want[10:])
	}

	// The output guardrail blocks an answer that was streamed: the stream says so.
	blocked := h.submit(`{"task":"t","input":{"text":"tell me about the zebra and its stripes in the long grass"},"stream":true}`)
	got = followEvents(t, h.base, blocked, nil)
	if got.end.Outcome != "blocked" || !strings.Contains(got.end.Detail, "guardrail") || got.statuses[len(got.statuses)-1] != messages.StatusFailed {
		t.Errorf("blocked answer: stream_end %+v, statuses %v", got.end, got.statuses)
	}
	if !strings.Contains(got.text(), "zebra") {
		t.Errorf("blocked answer streamed %q before the guardrail ran, want its text", got.text())
	}

	// A job that does not ask for streaming gets no deltas.
	plain := h.submit(fmt.Sprintf(`{"task":"t","input":{"text":%q}}`, streamText))
	h.waitStatus(plain, messages.StatusCompleted)
	if got := followEvents(t, h.base, plain, nil); len(got.deltas) != 0 || got.end.Outcome != "" {
		t.Errorf("a job without stream got deltas %q and end %+v", got.deltas, got.end)
	}
}

// followSome reads the first n delta events of job id's event stream and leaves; it returns
// their text and the id of the last one.
func followSome(t *testing.T, base, id string, n int) (string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	var last string
	seen := 0
	err = handlers.ReadEvents(resp.Body, func(ev handlers.Event) bool {
		if ev.Event == "delta" {
			var d struct{ Text string }
			_ = json.Unmarshal([]byte(ev.Data), &d)
			text.WriteString(d.Text)
			last = ev.ID
			seen++
		}
		return seen < n && ev.Event != "stream_end"
	})
	if err != nil || seen < n {
		t.Fatalf("events of %s: %d deltas, %v", id, seen, err)
	}
	return text.String(), last
}

// writes records each write to it, to see text printed as it arrives.
type writes struct {
	mu     sync.Mutex
	pieces []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pieces = append(w.pieces, string(p))
	return len(p), nil
}

// TestSubmitStreamPrintsTheAnswerAsItArrives runs `infleet submit --stream` against serve and
// `infleet fmsim`, which breaks every stream after 3 chunks: the command prints the answer in
// pieces as they come, exactly the stored result, and exits 0; a job whose streamed answer the
// output guardrail blocks exits 1 and says so.
func TestSubmitStreamPrintsTheAnswerAsItArrives(t *testing.T) {
	t.Parallel()
	sim := startFmsim(t, "--drop-stream-after", "3", "--chunk-interval", "20ms")
	h := startServe(t, fmt.Sprintf(`
models:
  - {name: m, provider: openai, base_url: %q, model_id: m}
routes: {default: m}
guardrails:
  output: {words: [zebra]}
workers: {concurrency: 4, max_attempts: 1, shutdown_timeout: 1s}
log: {level: error}
`, sim+"/v1"))
	var out writes
	var errOut strings.Builder
	if rc := run([]string{"submit", "--server", h.base, "--stream", "--task", "t", "--text", streamText}, &out, &errOut); rc != 0 {
		t.Fatalf("submit --stream: rc %d: %s", rc, errOut.String())
	}
	want := fmsimAlone(t, sim, "", streamText)
	if got := strings.Join(out.pieces, ""); got != want+"\n" {
		t.Fatalf("printed %q, want the answer %q and a newline", got, want)
	}
	if len(out.pieces) < 4 {
		t.Errorf("printed in %d pieces, want the answer as it arrived", len(out.pieces))
	}
	if !strings.Contains(errOut.String(), "accepted") {
		t.Errorf("stderr %q does not name the job", errOut.String())
	}

	out, errOut = writes{}, strings.Builder{}
	rc := run([]string{"submit", "--server", h.base, "--stream", "--task", "t", "--text", "a zebra crossed the road"}, &out, &errOut)
	if rc != 1 || !strings.Contains(errOut.String(), "blocked") {
		t.Errorf("blocked answer: rc %d, stderr %q; want 1 and the reason", rc, errOut.String())
	}
	if rc := run([]string{"submit", "--server", h.base, "--stream", "--wait", "5s", "--task", "t", "--text", "x"}, &out, &errOut); rc != 2 {
		t.Errorf("--stream with --wait: rc %d, want 2", rc)
	}
}
