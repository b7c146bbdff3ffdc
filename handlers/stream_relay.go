package handlers

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// StreamRelayPrefix is the internal route a process serves the answers of the streaming jobs
// running in it on: GET StreamRelayPrefix+"{id}?offset=N".
const StreamRelayPrefix = "/internal/v1/streams/"

// DefaultRelayPoll is how often a relay looks for the process streaming a job that has not
// begun streaming yet, or whose stream ended before the job did.
const DefaultRelayPoll = 50 * time.Millisecond

// WithStreamRelay serves GET StreamRelayPrefix+"{id}" from feed and everything else from next.
// The route answers the text of job id's answer streaming in this process, from byte ?offset=
// on, as server-sent "delta" events ({"text": "..."}) flushed one by one; the body ends when
// the attempt streaming it here ends. A request must carry "Authorization: Bearer KEY" (key is
// compared in constant time); others get a 401 problem. An empty key serves next alone.
func WithStreamRelay(next http.Handler, feed pipeline.DeltaFeed, key string) http.Handler {
	if key == "" || feed == nil {
		return next
	}
	want := []byte("Bearer " + key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutPrefix(r.URL.Path, StreamRelayPrefix)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case r.Method != http.MethodGet:
			w.Header().Set("Allow", http.MethodGet)
			writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, SlugMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+"; allowed: GET"))
			return
		case subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1:
			writeProblem(w, r, newProblem(http.StatusUnauthorized, SlugUnauthorized, "the stream relay needs Authorization: Bearer with streaming.relay_key, the same on every process"))
			return
		case id == "" || strings.Contains(id, "/"):
			writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound, "no job id in "+r.URL.Path))
			return
		}
		offset, ok := streamOffset(r)
		if !ok {
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidQuery, "fix the query parameters listed in errors",
				FieldProblem{Field: "offset", Message: "must be a whole number of bytes, 0 or more"}))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		_ = rc.SetWriteDeadline(time.Time{}) // as long as the job streams
		var buf []byte
		for text := range feed.Follow(r.Context(), id, offset) {
			offset += len(text)
			data, _ := json.Marshal(map[string]string{"text": text})
			buf = append(append(append(append(buf[:0], "event: delta\nid: "...), strconv.Itoa(offset)...), "\ndata: "...), data...)
			buf = append(buf, "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
}

// LocateFunc says where job id's answer streams from now: the StreamFrom of its record (""
// while no attempt streams it) and whether the job has ended.
type LocateFunc func(ctx context.Context, id string) (from string, ended bool, err error)

// StreamRelayConfig configures NewStreamRelay. Key and Locate are required.
type StreamRelayConfig struct {
	// Key is streaming.relay_key.
	Key string
	// Locate finds the process streaming a job.
	Locate LocateFunc
	// Self is this process's own StreamFrom and Local its feed: jobs streaming here are read
	// from Local without a request. Default none.
	Self  string
	Local pipeline.DeltaFeed
	// Client makes the relay requests. Default: a client of its own without a timeout.
	Client *http.Client
	// Poll is how often a job is located again while it has no stream. Default DefaultRelayPoll.
	Poll   time.Duration
	Logger zerolog.Logger
}

// streamRelay is a pipeline.DeltaFeed that follows a job's answer wherever it streams.
type streamRelay struct {
	cfg StreamRelayConfig
	// where shares the reads of a job's record among its waiting clients.
	where *locator
}

// NewStreamRelay returns a pipeline.DeltaFeed for the API of any process: it finds the process
// streaming a job from the job's record and relays the job's text from that process's
// WithStreamRelay route (or from Local, when it is this one), from the offset asked for and
// without repeats: a relay that breaks resumes at the offset it reached. It follows the job
// until the job ends or ctx does; the stored result is the rest. The clients following one job
// share its record's reads: at most one per Poll while any of them waits for the stream to
// start (or start again), none while they all relay it. Safe for concurrent use.
func NewStreamRelay(cfg StreamRelayConfig) (pipeline.DeltaFeed, error) {
	if cfg.Key == "" || cfg.Locate == nil {
		return nil, errors.New("stream relay: needs streaming.relay_key and a job store to locate streams in")
	}
	cfg.Poll = cmp.Or(max(cfg.Poll, 0), DefaultRelayPoll)
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	return &streamRelay{cfg: cfg, where: newLocator(cfg.Locate, cfg.Poll)}, nil
}

// Follow implements pipeline.DeltaFeed.
func (s *streamRelay) Follow(ctx context.Context, jobID string, offset int) <-chan string {
	out := make(chan string, 1)
	go func() {
		defer close(out)
		send := func(text string) bool {
			select {
			case out <- text:
				offset += len(text)
				return true
			case <-ctx.Done():
				return false
			}
		}
		w := s.where.join(jobID)
		defer s.where.leave(jobID, w)
		for fresh := false; ; fresh = true {
			loc, ok := s.where.next(ctx, w, fresh)
			if !ok {
				return
			}
			from, ended, err := loc.from, loc.ended, loc.err
			switch {
			case ended:
				return
			case err != nil:
				s.cfg.Logger.Warn().Err(err).Str("job_id", jobID).Msg("stream relay: locate the job's stream")
			case from != "" && from == s.cfg.Self && s.cfg.Local != nil:
				for text := range s.cfg.Local.Follow(ctx, jobID, offset) {
					if !send(text) {
						return
					}
				}
			case from != "":
				if err := s.relay(ctx, from, jobID, offset, send); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Debug().Err(err).Str("job_id", jobID).Str("stream_from", from).Msg("stream relay: relay broke; locating the stream again")
				}
			}
		}
	}()
	return out
}

// relay copies job id's text from offset on from the process at from, until its stream ends.
func (s *streamRelay) relay(ctx context.Context, from, id string, offset int, send func(string) bool) error {
	u := strings.TrimRight(from, "/") + StreamRelayPrefix + url.PathEscape(id) + "?offset=" + strconv.Itoa(offset)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("stream relay " + u + ": " + resp.Status + " (check that every process has the same streaming.relay_key)")
	}
	var bad error
	err = ReadEvents(resp.Body, func(ev Event) bool {
		if ev.Event != "delta" {
			return true
		}
		var d struct {
			Text string `json:"text"`
		}
		if bad = json.Unmarshal([]byte(ev.Data), &d); bad != nil {
			return false
		}
		return send(d.Text)
	})
	return cmp.Or(bad, err)
}
