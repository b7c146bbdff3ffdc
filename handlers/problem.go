package handlers

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strconv"
)

// ProblemTypeBase prefixes every problem type URI; the slug after it names the kind of problem.
const ProblemTypeBase = "https://infleet.dev/problems/"

// Problem slugs, one per kind of failure a client can see. They are part of the API: clients may
// switch on them, so existing slugs never change meaning.
const (
	SlugInvalidBody          = "invalid-body"
	SlugInvalidJSON          = "invalid-json"
	SlugInvalidQuery         = "invalid-query"
	SlugUnsupportedMediaType = "unsupported-media-type"
	SlugBodyTooLarge         = "body-too-large"
	SlugNotFound             = "not-found"
	SlugMethodNotAllowed     = "method-not-allowed"
	SlugConflict             = "conflict"
	SlugUnauthorized         = "unauthorized"
	SlugForbidden            = "forbidden"
	SlugRateLimited          = "rate-limited"
	SlugUnavailable          = "unavailable"
	SlugNotImplemented       = "not-implemented"
	SlugInternal             = "internal"
	SlugRequestTimeout       = "request-timeout"
)

// retryAfterSeconds is the Retry-After value sent with 429 and 503 problems when the caller
// gives none.
const retryAfterSeconds = 5

// FieldProblem is one problem with one field of a request: Field names it (a JSON field path, a
// query parameter or a header) and Message says what is wrong and how to fix it.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document, the body of every error answer of the API. Errors
// lists every field problem found, so that a client can fix them all in one go.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
	// RetryAfter, in seconds, is sent as the Retry-After header (429 and 503 only); zero means
	// the default of 5 seconds.
	RetryAfter int `json:"-"`
}

// newProblem returns the problem of kind slug with the standard title of status.
func newProblem(status int, slug, detail string, errs ...FieldProblem) Problem {
	return Problem{
		Type:   ProblemTypeBase + slug,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Errors: errs,
	}
}

var (
	headerProblemJSON = []string{"application/problem+json"}
	headerNoStore     = []string{"no-store"}
)

// writeProblem writes p as application/problem+json with p.Status, filling Instance with the
// request path when empty and Retry-After for 429 and 503.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	if p.Type == "" {
		p.Type = ProblemTypeBase + SlugInternal
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	h := w.Header()
	h["Content-Type"] = headerProblemJSON
	h["Cache-Control"] = headerNoStore
	h.Del("Content-Length")
	if p.Status == http.StatusTooManyRequests || p.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(cmp.Or(p.RetryAfter, retryAfterSeconds)))
	}
	body, err := json.Marshal(p)
	if err != nil {
		// A Problem holds only strings and ints: this cannot happen.
		body = []byte(`{"type":"` + ProblemTypeBase + SlugInternal + `","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
