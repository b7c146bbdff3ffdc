package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline/intake"
)

// benchBody is a typical small job.
const benchBody = `{"task":"summarize","input":{"text":"The quick brown fox jumps over the lazy dog. ` +
	`It was the best of times, it was the worst of times."},"model":"fast","priority":"normal",` +
	`"params":{"max_tokens":256,"temperature":0.2},"metadata":{"customer":"c-42","source":"bench"}}`

// discardWriter is a ResponseWriter that keeps nothing, so benchmarks measure the handler.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

func benchRequest(h http.Handler, b *testing.B) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/v1/jobs", strings.NewReader(benchBody))
			r.Header.Set("Content-Type", "application/json")
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, r)
			if w.code != http.StatusAccepted {
				b.Fatalf("status %d", w.code)
			}
		}
	})
}

// benchJobs is an in-memory Jobs that accepts every job and keeps none, so that the benchmark
// measures the API and not a growing store.
type benchJobs struct{ *memJobs }

var benchSeq atomic.Int64

func (benchJobs) Submit(_ context.Context, job messages.Job, opt intake.SubmitOptions) (messages.JobRecord, bool, error) {
	now := time.Now()
	return messages.JobRecord{
		JobID: "job-" + strconv.FormatInt(benchSeq.Add(1), 10), Status: messages.StatusQueued,
		Task: job.Task, Priority: job.Priority.OrNormal(), CreatedAt: now, UpdatedAt: now, Tenant: opt.Tenant,
	}, true, nil
}

// BenchmarkPostJob is POST /v1/jobs through the whole API (middleware, validation, an
// in-memory Jobs). Compare with BenchmarkBareHandler for the cost of the API itself.
func BenchmarkPostJob(b *testing.B) {
	h, err := NewAPI(APIConfig{Jobs: benchJobs{}})
	if err != nil {
		b.Fatal(err)
	}
	benchRequest(h, b)
}

// BenchmarkBareHandler decodes the same body into messages.Job and answers 202: the floor any
// handler pays.
func BenchmarkBareHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var job messages.Job
		if err := json.NewDecoder(r.Body).Decode(&job); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"job_id":"x","status":"QUEUED","status_url":"/v1/jobs/x"}`))
	})
	benchRequest(h, b)
}

// BenchmarkDecodeBatch decodes a batch of 100 typical jobs as POST /v1/jobs:batch does
// (decodeBatch) and by the generic path alone (decodeBatchGeneric), per batch.
func BenchmarkDecodeBatch(b *testing.B) {
	body := []byte(`{"jobs":[` + strings.TrimSuffix(strings.Repeat(benchBody+",", 100), ",") + `]}`)
	r := httptest.NewRequest(http.MethodPost, "/v1/jobs:batch", nil)
	for name, decode := range map[string]func(http.ResponseWriter, *http.Request, []byte, string) ([]batchItem, []messages.Job, bool){
		"decoder": decodeBatch, "generic": decodeBatchGeneric,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			w := &discardWriter{h: http.Header{}}
			for b.Loop() {
				if _, _, ok := decode(w, r, body, "key"); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
