// Package ebtest is a small in-process EventBridge for tests: an httptest.Server speaking the
// AWS JSON 1.1 protocol for PutEvents, DescribeEventBus, DescribeArchive, StartReplay and
// DescribeReplay, recording what it was sent and failing what a test tells it to. There is no
// EventBridge emulator to test against, so this stands in for one; it checks what a real bus
// would refuse (more than 10 entries, an entry over 256 KiB, unknown buses and archives).
package ebtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Account and Region are those of every ARN the server makes.
const (
	Account = "000000000000"
	Region  = "us-east-1"
)

// Entry is one PutEvents entry as the server received it.
type Entry struct {
	Source, DetailType, Detail, EventBusName string
	Resources                                []string
	Time                                     float64
}

// Step is one state a replay shows to DescribeReplay.
type Step struct {
	State  string
	Reason string
}

// Replay is a replay as StartReplay created it.
type Replay struct {
	Name, ArchiveARN, DestinationARN string
	From, To                         time.Time
	steps                            []Step
	polls                            int
}

// Server is a fake EventBridge. Its fields may be set before the first request; its methods are
// safe for concurrent use.
type Server struct {
	*httptest.Server
	// FailEntry decides the fate of each entry: a non-empty error code fails it. seen counts
	// earlier puts of an entry with the same Detail (0 the first time). Nil accepts all.
	FailEntry func(e Entry, seen int) (errorCode string)
	// Script is the states every new replay goes through, one per DescribeReplay, the last one
	// repeating. Default STARTING, RUNNING, COMPLETED.
	Script []Step

	mu       sync.Mutex
	calls    [][]Entry
	seen     map[string]int
	buses    map[string]bool
	archives map[string]string // name → source bus ARN
	replays  map[string]*Replay
	targets  []string
}

// New starts a Server with the default bus and closes it when the test ends.
func New(t testing.TB) *Server {
	s := &Server{seen: map[string]int{}, buses: map[string]bool{"default": true}, archives: map[string]string{}, replays: map[string]*Replay{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// BusARN is the ARN of the bus name.
func BusARN(name string) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:event-bus/%s", Region, Account, name)
}

// ArchiveARN is the ARN of the archive name.
func ArchiveARN(name string) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:archive/%s", Region, Account, name)
}

// AddBus creates a bus and returns its ARN.
func (s *Server) AddBus(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buses[name] = true
	return BusARN(name)
}

// AddArchive creates an archive of the bus named and returns its ARN.
func (s *Server) AddArchive(name, bus string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archives[name] = BusARN(bus)
	return ArchiveARN(name)
}

// Calls returns the entries of each PutEvents call, in the order they came.
func (s *Server) Calls() [][]Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]Entry, len(s.calls))
	for i, c := range s.calls {
		out[i] = append([]Entry(nil), c...)
	}
	return out
}

// Replay returns the replay of that name as started, or false.
func (s *Server) Replay(name string) (Replay, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.replays[name]
	if !ok {
		return Replay{}, false
	}
	return *r, true
}

// Targets lists the X-Amz-Target of every request, in order.
func (s *Server) Targets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.targets...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AWSEvents.")
	if r.Method != http.MethodPost || !ok || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "not an AWS JSON 1.1 AWSEvents request: "+target)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.targets = append(s.targets, target)
	s.mu.Unlock()
	var in map[string]json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	switch op {
	case "PutEvents":
		s.putEvents(w, in)
	case "DescribeEventBus":
		s.describeBus(w, in)
	case "DescribeArchive":
		s.describeArchive(w, in)
	case "StartReplay":
		s.startReplay(w, in)
	case "DescribeReplay":
		s.describeReplay(w, in)
	default:
		fail(w, http.StatusBadRequest, "UnknownOperationException", op+" is not served by ebtest")
	}
}

func (s *Server) putEvents(w http.ResponseWriter, in map[string]json.RawMessage) {
	var entries []Entry
	_ = json.Unmarshal(in["Entries"], &entries)
	if len(entries) == 0 || len(entries) > 10 {
		fail(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("PutEvents takes 1 to 10 entries, got %d", len(entries)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, entries)
	type result struct {
		EventID      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	for i, e := range entries {
		code, msg := "", ""
		bus := e.EventBusName
		if i := strings.LastIndex(bus, "/"); strings.HasPrefix(bus, "arn:") && i >= 0 {
			bus = bus[i+1:]
		}
		switch {
		case !s.buses[cmpStr(bus, "default")]:
			code, msg = "NotFound", "event bus "+bus+" does not exist"
		case len(e.Source)+len(e.DetailType)+len(e.Detail)+14 > 256<<10:
			code, msg = "EntryTooLarge", "entry is over 256 KiB"
		case !json.Valid([]byte(e.Detail)):
			code, msg = "MalformedDetail", "detail is not JSON"
		case s.FailEntry != nil:
			code = s.FailEntry(e, s.seen[e.Detail])
			msg = "failed by the test"
		}
		s.seen[e.Detail]++
		if code != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: code, ErrorMessage: msg})
			continue
		}
		out.Entries = append(out.Entries, result{EventID: fmt.Sprintf("ev-%d-%d", len(s.calls), i)})
	}
	reply(w, out)
}

func cmpStr(a, b string) string {
	if a == "" {
		return b
	}
	return a
}

func str(in map[string]json.RawMessage, k string) string {
	var v string
	_ = json.Unmarshal(in[k], &v)
	return v
}

func (s *Server) describeBus(w http.ResponseWriter, in map[string]json.RawMessage) {
	name := cmpStr(str(in, "Name"), "default")
	s.mu.Lock()
	ok := s.buses[name]
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Event bus "+name+" does not exist.")
		return
	}
	reply(w, map[string]string{"Name": name, "Arn": BusARN(name)})
}

func (s *Server) describeArchive(w http.ResponseWriter, in map[string]json.RawMessage) {
	name := str(in, "ArchiveName")
	s.mu.Lock()
	src, ok := s.archives[name]
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Archive "+name+" does not exist.")
		return
	}
	reply(w, map[string]any{"ArchiveName": name, "ArchiveArn": ArchiveARN(name), "EventSourceArn": src, "State": "ENABLED"})
}

func epoch(raw json.RawMessage) time.Time {
	var f float64
	_ = json.Unmarshal(raw, &f)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

func (s *Server) startReplay(w http.ResponseWriter, in map[string]json.RawMessage) {
	var dest struct{ Arn string }
	_ = json.Unmarshal(in["Destination"], &dest)
	r := &Replay{Name: str(in, "ReplayName"), ArchiveARN: str(in, "EventSourceArn"), DestinationARN: dest.Arn,
		From: epoch(in["EventStartTime"]), To: epoch(in["EventEndTime"])}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.replays[r.Name]; dup {
		fail(w, http.StatusBadRequest, "ResourceAlreadyExistsException", "Replay "+r.Name+" already exists.")
		return
	}
	found := false
	for name, src := range s.archives {
		if ArchiveARN(name) == r.ArchiveARN {
			found = true
			if src != r.DestinationARN {
				fail(w, http.StatusBadRequest, "ValidationException", "Parameter Destination.Arn is not valid. Reason: Cross event bus replay is not permitted.")
				return
			}
		}
	}
	if !found {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Archive "+r.ArchiveARN+" does not exist.")
		return
	}
	if !r.From.Before(r.To) {
		fail(w, http.StatusBadRequest, "ValidationException", "EventStartTime must be before EventEndTime.")
		return
	}
	r.steps = s.Script
	if len(r.steps) == 0 {
		r.steps = []Step{{State: "STARTING"}, {State: "RUNNING"}, {State: "COMPLETED"}}
	}
	s.replays[r.Name] = r
	reply(w, map[string]any{"ReplayArn": "arn:aws:events:" + Region + ":" + Account + ":replay/" + r.Name, "State": "STARTING",
		"ReplayStartTime": float64(time.Now().Unix())})
}

func (s *Server) describeReplay(w http.ResponseWriter, in map[string]json.RawMessage) {
	name := str(in, "ReplayName")
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.replays[name]
	if !ok {
		fail(w, http.StatusBadRequest, "ResourceNotFoundException", "Replay "+name+" does not exist.")
		return
	}
	step := r.steps[min(r.polls, len(r.steps)-1)]
	r.polls++
	out := map[string]any{"ReplayName": r.Name, "ReplayArn": "arn:aws:events:" + Region + ":" + Account + ":replay/" + r.Name,
		"State": step.State, "EventSourceArn": r.ArchiveARN, "Destination": map[string]string{"Arn": r.DestinationARN},
		"EventStartTime": float64(r.From.Unix()), "EventEndTime": float64(r.To.Unix())}
	if step.Reason != "" {
		out["StateReason"] = step.Reason
	}
	switch step.State {
	case "RUNNING":
		out["EventLastReplayedTime"] = float64(r.From.Add(r.To.Sub(r.From) / 2).Unix())
	case "COMPLETED":
		out["EventLastReplayedTime"] = float64(r.To.Unix())
		out["ReplayEndTime"] = float64(time.Now().Unix())
	}
	reply(w, out)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "ebtest")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "ebtest")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
