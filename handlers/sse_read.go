package handlers

import (
	"bufio"
	"io"
	"strings"
)

// Event is one server-sent event as ReadEvents reads it.
type Event struct {
	// Event is the event's type ("message" when it names none), ID its id ("" for none) and
	// Data its data lines joined with newlines.
	Event, ID, Data string
}

// ReadEvents reads the server-sent events of r and hands each to fn until fn returns false,
// the stream ends (nil) or fails (its error). Comment lines are skipped. It reads lines of up
// to 16 MiB.
func ReadEvents(r io.Reader, fn func(Event) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 16<<20)
	var ev Event
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev.Event != "" || len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				if ev.Event == "" {
					ev.Event = "message"
				}
				if !fn(ev) {
					return nil
				}
			}
			ev, data = Event{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event = value
		case "id":
			ev.ID = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}
