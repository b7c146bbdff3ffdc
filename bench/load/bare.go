package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/infleet/infleet/messages"
)

// bareBodyLimit matches infleet's default request size limit.
const bareBodyLimit = 1 << 20

// bareHandler is the ingress baseline: the least a POST /v1/jobs handler in Go can do. It
// decodes the body into messages.Job, makes a job id and answers 202 with the same JSON shape
// and Location header as infleet, and nothing else: no validation, no store, no queue.
func bareHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var job messages.Job
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, bareBodyLimit)).Decode(&job); err != nil {
			http.Error(w, "invalid body: "+err.Error(), http.StatusBadRequest)
			return
		}
		id, err := uuid.NewV7()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		job.JobID = id.String()
		path := messages.JobPath(job.JobID)
		b, _ := json.Marshal(struct {
			JobID     string          `json:"job_id"`
			Status    messages.Status `json:"status"`
			StatusURL string          `json:"status_url"`
		}{job.JobID, messages.StatusQueued, path})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Location", path)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(b)
	})
	return mux
}

// bareServer runs bareHandler on a loopback port of this process.
type bareServer struct {
	base string
	srv  *http.Server
	done chan error
}

func startBare() (*bareServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the baseline handler: %w", err)
	}
	b := &bareServer{
		base: "http://" + ln.Addr().String(),
		srv:  &http.Server{Handler: bareHandler(), ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { b.done <- b.srv.Serve(ln) }()
	return b, nil
}

func (b *bareServer) close() {
	_ = b.srv.Close()
	<-b.done // always http.ErrServerClosed or a listener error already seen as failed requests
}
