package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/infleet/infleet/handlers"
	"github.com/infleet/infleet/messages"
)

// streamReconnects bounds how many times streamAnswer reconnects an event stream that broke.
const streamReconnects = 5

// errStreamBroke is an event stream that ended before the job did.
var errStreamBroke = errors.New("the event stream ended before the job did")

// streamAnswer follows job id's event stream and writes its answer's text to stdout as it
// arrives, reconnecting from the last offset it printed when the stream breaks, so nothing is
// printed twice. It returns 0 when the job completed with the streamed text as its result,
// and 1 otherwise, saying why on stderr.
func streamAnswer(ctx context.Context, c *apiClient, id string, stdout, stderr io.Writer) int {
	offset := 0
	var end struct{ Outcome, Detail string }
	var last messages.JobRecord
	for attempt := 0; ; attempt++ {
		err := followStream(ctx, c, id, &offset, func(ev handlers.Event) error {
			switch ev.Event {
			case "delta":
				var d struct {
					Text string `json:"text"`
				}
				if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
					return fmt.Errorf("a delta event is not JSON: %w", err)
				}
				if _, err := io.WriteString(stdout, d.Text); err != nil {
					return err
				}
				if f, ok := stdout.(interface{ Sync() error }); ok {
					_ = f.Sync()
				}
			case "stream_end":
				if err := json.Unmarshal([]byte(ev.Data), &end); err != nil {
					return fmt.Errorf("the stream_end event is not JSON: %w", err)
				}
			case "status":
				if err := json.Unmarshal([]byte(ev.Data), &last); err != nil {
					return fmt.Errorf("a status event is not JSON: %w", err)
				}
			}
			return nil
		})
		if err == nil {
			break
		}
		var problem *streamProblem
		if errors.As(err, &problem) {
			return reportHTTP(stdout, stderr, problem.status, problem.body)
		}
		if attempt >= streamReconnects || ctx.Err() != nil {
			fmt.Fprintf(stderr, "\ninfleet submit: %v (the job goes on: infleet status %s)\n", err, id)
			return 1
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	fmt.Fprintln(stdout)
	switch {
	case last.Status == messages.StatusCompleted && (end.Outcome == "" || end.Outcome == "complete"):
		return 0
	case end.Outcome != "":
		fmt.Fprintf(stderr, "infleet submit: job %s ended %s: %s\n", id, end.Outcome, end.Detail)
	default:
		fmt.Fprintf(stderr, "infleet submit: job %s ended %s\n", id, last.Status)
	}
	return 1
}

// streamProblem is an event stream refused with an error answer.
type streamProblem struct {
	status int
	body   []byte
}

func (p *streamProblem) Error() string { return "the API answered " + strconv.Itoa(p.status) }

// followStream reads job id's events from *offset on and hands each to fn, moving *offset
// with each delta's id. It returns nil once the job's terminal status came.
func followStream(ctx context.Context, c *apiClient, id string, offset *int, fn func(handlers.Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+messages.JobPath(id)+"/events", nil)
	if err != nil {
		return fmt.Errorf("bad --server: %w", err)
	}
	if c.key != "" {
		req.Header.Set("X-Api-Key", c.key)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.Itoa(*offset))
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the infleet API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &streamProblem{status: resp.StatusCode, body: body}
	}
	var ferr error
	done := false
	err = handlers.ReadEvents(resp.Body, func(ev handlers.Event) bool {
		if ferr = fn(ev); ferr != nil {
			return false
		}
		if ev.Event == "delta" {
			if n, err := strconv.Atoi(ev.ID); err == nil {
				*offset = n
			}
		}
		if ev.Event == "status" {
			var rec messages.JobRecord
			if json.Unmarshal([]byte(ev.Data), &rec) == nil && rec.Status.Terminal() {
				done = true
				return false
			}
		}
		return true
	})
	switch {
	case ferr != nil:
		return ferr
	case done:
		return nil
	case err != nil:
		return fmt.Errorf("event stream broke: %w", err)
	}
	return errStreamBroke
}
