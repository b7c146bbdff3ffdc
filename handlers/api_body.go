package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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

// bodyPool recycles request body buffers; bodies over maxPooledBody are left to the collector.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 64 << 10

func releaseBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		bodyPool.Put(b)
	}
}

// readJSONBody checks the content type and reads the whole body, within MaxBodyBytes. On failure
// it has answered (415, 413 or 400) and returns nil. A non-nil buffer goes back with releaseBody.
func (a *api) readJSONBody(w http.ResponseWriter, r *http.Request) *bytes.Buffer {
	if ct := r.Header.Get("Content-Type"); !jsonMediaType(ct) {
		detail := "send the body as JSON with Content-Type: application/json"
		if ct != "" {
			detail = "Content-Type " + strconv.Quote(ct) + " is not JSON; " + detail
		}
		writeProblem(w, r, newProblem(http.StatusUnsupportedMediaType, SlugUnsupportedMediaType, detail))
		return nil
	}
	if r.ContentLength > a.cfg.MaxBodyBytes {
		a.tooLarge(w, r)
		return nil
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		releaseBody(buf)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.tooLarge(w, r)
			return nil
		}
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"the request body could not be read completely; send it again"))
		return nil
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		releaseBody(buf)
		writeProblem(w, r, newProblem(http.StatusBadRequest, SlugInvalidBody,
			"the request body is empty; send a JSON document (see GET /openapi.json)"))
		return nil
	}
	return buf
}

func (a *api) tooLarge(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, SlugBodyTooLarge,
		"the request body is over the limit of "+strconv.FormatInt(a.cfg.MaxBodyBytes, 10)+
			" bytes; send a smaller job, or put a large input in S3 and give its s3_uri"))
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
	case r.Context().Err() != nil && errors.Is(err, r.Context().Err()):
		a.log.Debug().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Msg("client went away")
		w.WriteHeader(statusClientClosed)
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
