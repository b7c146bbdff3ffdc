package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/rs/zerolog"
)

// The router reports every handler error; a job handed back at shutdown is expected and must
// not show as an error, while every other handler error still does.
func TestWatermillLoggerLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := WatermillLogger(zerolog.New(&buf).Level(zerolog.DebugLevel))
	fields := watermill.LogFields{"handler_name": "jobs"}
	l.Error("Handler returned error", &RetryError{Reason: "shutting down", HandedBack: true}, fields)
	l.Error("Handler returned error", fmt.Errorf("wrapped: %w", &RetryError{Reason: "shutting down", HandedBack: true}), fields)
	l.Error("Handler returned error", &RetryError{Reason: "handler panic: boom"}, fields)
	l.Error("Handler returned error", errors.New("publish failed"), fields)
	l.Info("Starting handler", fields)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{`"level":"debug"`, `"level":"debug"`, `"level":"error"`, `"level":"error"`, `"level":"debug"`}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) || !strings.Contains(lines[i], `"handler_name":"jobs"`) {
			t.Errorf("line %d = %s, want %s", i, lines[i], w)
		}
	}
}
