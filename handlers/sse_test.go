package handlers

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	event, id string
	rec       messages.JobRecord
}

// readEvents reads the stream until it ends, returning its events and how many heartbeat
// comments it held. stop, when set, ends reading early once it returns true.
func readEvents(t *testing.T, resp *http.Response, stop func([]sseEvent, int) bool) ([]sseEvent, int) {
	t.Helper()
	var events []sseEvent
	heartbeats := 0
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" {
				events = append(events, cur)
				cur = sseEvent{}
			}
		case strings.HasPrefix(line, ":"):
			heartbeats++
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.rec); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		default:
			t.Fatalf("unexpected line %q", line)
		}
		if stop != nil && stop(events, heartbeats) {
			return events, heartbeats
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return events, heartbeats
}

func TestEventsUntilTerminal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t)
	resp := b.do(t, http.MethodGet, "/v1/jobs/"+id+"/events", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The reader hands over each event as it arrives; each change waits for the previous event,
	// so no change is coalesced. The channel closes when the stream ends.
	seen := make(chan sseEvent, 8)
	go func() {
		defer close(seen)
		sent := 0
		readEvents(t, resp, func(events []sseEvent, _ int) bool {
			for ; sent < len(events); sent++ {
				seen <- events[sent]
			}
			return false
		})
	}()
	next := func() (sseEvent, bool) {
		select {
		case ev, ok := <-seen:
			return ev, ok
		case <-time.After(waitTimeout):
			t.Fatal("timed out waiting for an event")
		}
		return sseEvent{}, false
	}
	steps := []struct {
		want   messages.Status
		change func()
	}{
		{messages.StatusQueued, func() { b.jobs.set(id, messages.StatusProcessing) }},
		{messages.StatusProcessing, func() { b.jobs.complete(id, "x") }},
		{messages.StatusCompleted, func() {}},
	}
	for i, step := range steps {
		ev, ok := next()
		if !ok {
			t.Fatalf("stream ended before event %d", i+1)
		}
		if ev.event != "status" || ev.id != strconv.Itoa(i+1) || ev.rec.Status != step.want || ev.rec.JobID != id {
			t.Fatalf("event %d = %+v, want status %s", i+1, ev, step.want)
		}
		step.change()
	}
	if ev, ok := next(); ok {
		t.Fatalf("event after the terminal status: %+v", ev)
	}
}

func TestEventsOfEndedJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.submit(t)
	b.jobs.set(id, messages.StatusFailed)
	events, _ := readEvents(t, b.do(t, http.MethodGet, "/v1/jobs/"+id+"/events", ""), nil)
	if len(events) != 1 || events[0].rec.Status != messages.StatusFailed {
		t.Fatalf("events of an ended job: %+v", events)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *APIConfig) { c.Heartbeat = 10 * time.Millisecond })
	id := b.submit(t)
	resp := b.do(t, http.MethodGet, "/v1/jobs/"+id+"/events", "")
	events, beats := readEvents(t, resp, func(_ []sseEvent, beats int) bool { return beats >= 2 })
	if len(events) != 1 || beats < 2 {
		t.Fatalf("events %+v, heartbeats %d", events, beats)
	}
	// The caller leaving ends the stream and its Watch.
	resp.Body.Close()
}
