package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/schemas"
)

var headerJSON = []string{"application/json"}

// writeJSON answers status with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = headerJSON
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write(newline)
}

var newline = []byte{'\n'}

// marshalJSON encodes v for an answer; it fails only for types that cannot be JSON, a
// programming error that the recover middleware turns into a 500.
func marshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// jsonMediaType reports whether a Content-Type header names JSON: application/json or
// application/*+json, with at most a utf-8 charset parameter.
func jsonMediaType(ct string) bool {
	mt, params, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	if len(mt) < len("application/") || !strings.EqualFold(mt[:len("application/")], "application/") {
		return false
	}
	sub := mt[len("application/"):]
	if !strings.EqualFold(sub, "json") && !(len(sub) > 5 && strings.EqualFold(sub[len(sub)-5:], "+json")) {
		return false
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "charset") {
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if !strings.EqualFold(v, "utf-8") && !strings.EqualFold(v, "utf8") {
				return false
			}
		}
	}
	return true
}

// Sizes of the buffers a request body is read into. A body starts in a pooled buffer of
// firstBodyBuffer bytes and grows, doubling, with what arrived, never with what
// Content-Length announced: a connection that announces a megabyte and sends a byte holds
// firstBodyBuffer bytes.
const firstBodyBuffer = 4 << 10

// bodyPool recycles first buffers; grown buffers are left to the collector.
var bodyPool = sync.Pool{New: func() any { return &requestBody{buf: make([]byte, 0, firstBodyBuffer)} }}

// requestBody is a request body read into memory. It holds its buffer's size in the API's
// body budget until api.releaseBody gives both back.
type requestBody struct {
	buf []byte
	// charged is what the buffer holds of the body budget.
	charged int64
}

// Bytes returns the body; it is valid until the body is released.
func (b *requestBody) Bytes() []byte { return b.buf }

// errBodyBudget says that the body budget had no room for a growing body within the wait.
var errBodyBudget = errors.New("no room for the request body within http.max_inflight_body_bytes")

// newBody returns an empty body in a first buffer, charged to the budget; errBodyBudget when
// no room is found within InflightBodyWait.
func (a *api) newBody(ctx context.Context) (*requestBody, error) {
	b := bodyPool.Get().(*requestBody)
	if err := a.charge(ctx, b, int64(cap(b.buf))); err != nil {
		bodyPool.Put(b)
		return nil, err
	}
	return b, nil
}

// growBody doubles b's buffer, to at most MaxBodyBytes+1 (room to see that a body is over the
// limit), charging the growth to the budget first.
func (a *api) growBody(ctx context.Context, b *requestBody) error {
	size := min(2*int64(cap(b.buf)), a.cfg.MaxBodyBytes+1)
	if size <= int64(cap(b.buf)) {
		// MaxBytesReader stops a body before it fills MaxBodyBytes+1 bytes: not reached.
		return &http.MaxBytesError{Limit: a.cfg.MaxBodyBytes}
	}
	if err := a.charge(ctx, b, size-int64(cap(b.buf))); err != nil {
		return err
	}
	grown := make([]byte, len(b.buf), size)
	copy(grown, b.buf)
	if cap(b.buf) == firstBodyBuffer {
		bodyPool.Put(&requestBody{buf: b.buf[:0]})
	}
	b.buf = grown
	return nil
}

// charge takes n bytes of the body budget for b, waiting at most InflightBodyWait for them.
func (a *api) charge(ctx context.Context, b *requestBody, n int64) error {
	if n <= 0 {
		return nil
	}
	if !a.bodies.TryAcquire(n) {
		wait, cancel := context.WithTimeout(ctx, a.cfg.InflightBodyWait)
		defer cancel()
		if err := a.bodies.Acquire(wait, n); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the caller left
			}
			return errBodyBudget
		}
	}
	b.charged += n
	return nil
}

// releaseBody gives b's bytes back to the budget, and a first buffer back to the pool. b must
// not be used after.
func (a *api) releaseBody(b *requestBody) {
	a.bodies.Release(b.charged)
	b.charged = 0
	if cap(b.buf) == firstBodyBuffer {
		b.buf = b.buf[:0]
		bodyPool.Put(b)
	}
}

// readJSONBody checks the content type and reads the whole body, within MaxBodyBytes and the
// body budget. On failure it has answered (415, 413, 408, 503 or 400) and returns nil. A
// non-nil body goes back with releaseBody.
func (a *api) readJSONBody(w http.ResponseWriter, r *http.Request) *requestBody {
	if ct := r.Header.Get("Content-Type"); !jsonMediaType(ct) {
		detail := "send the body as JSON with Content-Type: application/json"
		if ct != "" {
			detail = "Content-Type " + strconv.Quote(ct) + " is not JSON; " + detail
		}
		writeProblem(w, r, newProblem(http.StatusUnsupportedMediaType, SlugUnsupportedMediaType, detail))
		return nil
	}
	if r.ContentLength > a.cfg.MaxBodyBytes {
		a.refuseBody(w, r, a.tooLarge())
		return nil
	}
	body, err := a.newBody(r.Context())
	if err == nil {
		err = a.readBody(w, r, body)
		if err != nil {
			a.releaseBody(body)
		}
	}
	if err != nil {
		a.bodyFailed(w, r, err)
		return nil
	}
	if len(bytes.TrimSpace(body.buf)) == 0 {
		a.releaseBody(body)
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"the request body is empty; send a JSON document (see GET /openapi.json)"))
		return nil
	}
	return body
}

// readBody reads r's body into b until its end, growing b as the bytes arrive.
func (a *api) readBody(w http.ResponseWriter, r *http.Request, b *requestBody) error {
	src := http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
	for {
		if len(b.buf) == cap(b.buf) {
			if err := a.growBody(r.Context(), b); err != nil {
				return err
			}
		}
		n, err := src.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// bodyFailed answers a body that could not be read: too large (413), no room in the body
// budget (503), not in time (408), the caller gone (499, for the logs), or cut short (400).
func (a *api) bodyFailed(w http.ResponseWriter, r *http.Request, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		a.refuseBody(w, r, a.tooLarge())
		return
	}
	switch {
	case errors.Is(err, errBodyBudget):
		a.log.Warn().Str("request_id", RequestIDFromContext(r.Context())).Int64("max_inflight_body_bytes", a.cfg.MaxInflightBodyBytes).
			Msg("request body refused: the bodies being read hold the whole budget")
		p := newProblem(http.StatusServiceUnavailable, SlugUnavailable,
			"the server is reading as many request bodies as it can hold; send the request again after the Retry-After delay")
		p.RetryAfter = bodyBudgetRetryAfter
		a.refuseBody(w, r, p)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// An HTTP/1 connection mid-body cannot carry another request. (On HTTP/2 the header
		// would close every stream of the connection.)
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		writeProblem(w, r, newProblem(http.StatusRequestTimeout, SlugRequestTimeout,
			"the request body did not arrive within http.read_timeout; send it again, faster or smaller"))
	case r.Context().Err() != nil:
		w.WriteHeader(statusClientClosed)
	default:
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"the request body could not be read completely; send it again"))
	}
}

// bodyBudgetRetryAfter is the Retry-After, in seconds, of a body refused for want of room:
// bodies are held only while their request is handled, so room comes back quickly.
const bodyBudgetRetryAfter = 1

func (a *api) tooLarge() Problem {
	return newProblem(http.StatusRequestEntityTooLarge, SlugBodyTooLarge,
		"the request body is over the limit of "+strconv.FormatInt(a.cfg.MaxBodyBytes, 10)+
			" bytes; send a smaller job, or put a large input in S3 and give its s3_uri")
}

// decodeDoc parses body into a generic document for schema validation, numbers kept exact.
// On failure it has answered 400 with where the JSON went wrong and returns false.
func decodeDoc(w http.ResponseWriter, r *http.Request, body []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	if err == nil {
		// One JSON value only: anything but white space after it is a mistake.
		if _, terr := dec.Token(); terr != io.EOF {
			off := dec.InputOffset()
			writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidJSON,
				"the body holds more than one JSON value: unexpected data after "+position(body, off)))
			return nil, false
		}
		return doc, true
	}
	detail := "the body is not valid JSON"
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		detail += ": " + syn.Error() + " at " + position(body, syn.Offset-1)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		detail += ": it ends early, at " + position(body, int64(len(body)))
	default:
		detail += ": " + err.Error()
	}
	writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidJSON, detail))
	return nil, false
}

// position describes a byte offset of body as line and column (from 1) and the offset, for
// error messages.
func position(body []byte, off int64) string {
	off = min(max(off, 0), int64(len(body)))
	line := 1 + bytes.Count(body[:off], newline)
	col := off - int64(bytes.LastIndexByte(body[:off], '\n'))
	return "line " + strconv.Itoa(line) + ", column " + strconv.FormatInt(col, 10) +
		" (byte offset " + strconv.FormatInt(off, 10) + ")"
}

// fieldProblems converts schema errors, putting prefix (a field path such as "jobs[3]", or "")
// before each field.
func fieldProblems(dst []FieldProblem, prefix string, errs []schemas.FieldError) []FieldProblem {
	for _, e := range errs {
		dst = append(dst, FieldProblem{Field: joinField(prefix, e.Field), Message: e.Message})
	}
	return dst
}

// joinField joins field paths in the dotted style of schemas.FieldError ("jobs[3].task").
func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// failed answers an error of the pipeline: pipeline.ErrNotFound as 404 with notFound as the
// detail, ErrUnavailable and timeouts as 503 (saying so when the disk is full, with a longer
// Retry-After), a caller that went away with 499 (for the logs only), anything else as a 500
// that shows nothing of the error (it is logged).
func (a *api) failed(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	if p, ok := problemOf(err); ok {
		writeProblem(w, r, p)
		return
	}
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		writeProblem(w, r, newProblem(http.StatusNotFound, SlugNotFound, notFound))
		return
	case clientLeft(r):
		a.log.Debug().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Msg("client went away")
		w.WriteHeader(statusClientClosed)
		return
	case isPermanent(err):
		// The job store refuses this job for good (larger than its items hold).
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody, err.Error()))
		return
	case errors.Is(err, pipeline.ErrStorageFull):
		a.log.Error().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Msg("dependency unavailable: disk full")
		writeProblem(w, r, diskFullProblem())
		return
	case errors.Is(err, pipeline.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		a.log.Error().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Msg("dependency unavailable")
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, SlugUnavailable,
			"the queue or job store cannot be reached right now and nothing was recorded; retry after the Retry-After delay"))
		return
	}
	a.log.Error().Err(err).Str("request_id", RequestIDFromContext(r.Context())).
		Str("path", r.URL.Path).Msg("request failed")
	writeProblem(w, r, newProblem(http.StatusInternalServerError, SlugInternal,
		"the server failed while handling this request; retry later, and report the X-Request-Id header if it persists"))
}

// diskFullRetryAfterSeconds is the Retry-After of a 503 for a full disk: space comes back when
// an operator frees it, which takes longer than a dependency's blip.
const diskFullRetryAfterSeconds = 30

// diskFullProblem is the 503 answered while the server's disk is full.
func diskFullProblem() Problem {
	p := newProblem(http.StatusServiceUnavailable, SlugUnavailable,
		"the server's disk is full, so the job could not be stored and nothing was recorded; retry after the Retry-After delay "+
			"(the server takes jobs again by itself once space is freed)")
	p.RetryAfter = diskFullRetryAfterSeconds
	return p
}

// statusClientClosed is logged when the caller hung up before the answer (nginx's convention).
const statusClientClosed = 499

// clientLeft reports whether r's caller went away: its context was cancelled (net/http does so
// when the connection closes), as opposed to timed out. What fails after that is the
// consequence of the departure, not a dependency failure, and nobody reads the answer.
func clientLeft(r *http.Request) bool { return errors.Is(r.Context().Err(), context.Canceled) }

// isPermanent reports whether err is a refusal no retry can change (pipeline.PermanentError).
func isPermanent(err error) bool {
	_, ok := errors.AsType[*pipeline.PermanentError](err)
	return ok
}
