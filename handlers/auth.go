package handlers

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// HeaderAPIKey carries an API key.
const HeaderAPIKey = "X-Api-Key"

// wwwAuthenticate is the challenge sent with every 401: either scheme is accepted.
const wwwAuthenticate = `Bearer realm="infleet", ApiKey realm="infleet" header="x-api-key"`

// Limit is what a principal may use: a request rate with a burst, and a job quota per period.
// Principals with the same Key share one bucket and one counter across the fleet.
type Limit struct {
	// Key names the bucket and counter (e.g. "key:3f2a…" or "jwt:acme").
	Key string
	// Rate is requests per second; zero is unlimited.
	Rate float64
	// Burst is how many requests may come at once above Rate.
	Burst int
	// Quota is how many jobs may be created per QuotaPeriod; zero is unlimited.
	Quota int64
	// QuotaPeriod is pipeline.QuotaPeriodDay or pipeline.QuotaPeriodMonth.
	QuotaPeriod string
}

// Principal is who a request acts for, as authentication found it. A Principal is a value;
// its slices are shared and must not be modified.
type Principal struct {
	// ID names the credential in logs without revealing it ("key:<sha256 prefix>", "jwt:<sub>").
	ID string
	// Tenant owns the jobs the principal creates.
	Tenant string
	// Operator principals see every tenant's jobs and may use the operator routes.
	Operator bool
	// Tasks and Models the principal may submit; "*" allows any, an empty list none.
	Tasks  []string
	Models []string
	// Limit is the principal's rate and quota.
	Limit Limit
}

// AllowsTask reports whether p may submit task.
func (p Principal) AllowsTask(task string) bool { return allows(p.Tasks, task) }

// AllowsModel reports whether p may ask for model by name.
func (p Principal) AllowsModel(model string) bool { return allows(p.Models, model) }

func allows(list []string, name string) bool {
	return slices.Contains(list, "*") || slices.Contains(list, name)
}

type principalKey struct{}

// ContextWithPrincipal returns ctx carrying p. Authenticate sets it; GuardJobs and
// RequireOperator read it.
func ContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the request's principal, and false on an open API.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// ErrNoCredentials is returned by a Verifier when the request carries no credential of its kind.
var ErrNoCredentials = errors.New("no credentials")

// Verifier finds the principal of a request's credentials. Implementations are safe for
// concurrent use. Errors other than ErrNoCredentials mean the credential is bad: their text is
// shown to the client, so it never contains the credential.
type Verifier interface {
	Verify(r *http.Request) (Principal, error)
}

// AuthConfig configures Authenticate.
type AuthConfig struct {
	// Verifiers are tried in order; the first that finds a credential decides. Required.
	Verifiers []Verifier
	// Limits enforces rates and quotas across the fleet; nil enforces none.
	Limits pipeline.LimitStore
	// Logger receives refusals (never credentials); the zero logger logs nothing.
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// openPaths are answered without credentials: probes and metrics scrapers carry none.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Authenticate returns middleware that authenticates every request but GET /healthz, /readyz
// and /metrics, enforces the principal's rate, and puts the principal (ContextWithPrincipal)
// and the tenant whose jobs it may see (ContextWithTenant: its own, or every tenant's for an
// operator) in the request context. Refusals are problems: 401 with WWW-Authenticate, 429 with
// Retry-After and RateLimit headers, 503 when the limit store cannot be reached (it fails
// closed). Allowed requests get RateLimit-Limit, RateLimit-Remaining and RateLimit-Policy.
func Authenticate(cfg AuthConfig) func(http.Handler) http.Handler {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Logger
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if openPaths[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			p, err := verify(cfg.Verifiers, r)
			if err != nil {
				detail := "send an API key in the x-api-key header or a bearer token in Authorization"
				if !errors.Is(err, ErrNoCredentials) {
					detail = "the credentials were refused: " + err.Error()
				}
				log.Info().Str("request_id", RequestIDFromContext(r.Context())).Str("reason", err.Error()).
					Msg("request not authenticated")
				challenge := wwwAuthenticate
				if !errors.Is(err, ErrNoCredentials) && hasBearer(r) {
					// RFC 6750 section 3.1: say the token itself is the problem.
					challenge = `Bearer realm="infleet", error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
				writeProblem(w, r, newProblem(http.StatusUnauthorized, SlugUnauthorized, detail))
				return
			}
			if cfg.Limits != nil && p.Limit.Rate > 0 {
				if !takeRate(w, r, cfg.Limits, p, now(), log) {
					return
				}
			}
			ctx := ContextWithPrincipal(r.Context(), p)
			tenant := p.Tenant
			if p.Operator {
				tenant = ""
			}
			next.ServeHTTP(w, r.WithContext(ContextWithTenant(ctx, tenant)))
		})
	}
}

// hasBearer reports whether r carries an Authorization header of the Bearer scheme.
func hasBearer(r *http.Request) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	return strings.EqualFold(scheme, "Bearer")
}

func verify(vs []Verifier, r *http.Request) (Principal, error) {
	for _, v := range vs {
		p, err := v.Verify(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrNoCredentials
}

// takeRate takes one request from p's bucket, writing the RateLimit headers, and answers 429
// (or 503) itself when it returns false.
func takeRate(w http.ResponseWriter, r *http.Request, store pipeline.LimitStore, p Principal, now time.Time, log zerolog.Logger) bool {
	lim := p.Limit
	d, err := store.Take(r.Context(), "rate:"+lim.Key, lim.Rate, lim.Burst, 1, now)
	if err != nil {
		log.Error().Err(err).Str("request_id", RequestIDFromContext(r.Context())).Str("principal", p.ID).
			Msg("rate limit store unreachable; refusing the request")
		writeProblem(w, r, newProblem(http.StatusServiceUnavailable, SlugUnavailable,
			"the rate limit cannot be checked right now; retry after the Retry-After delay"))
		return false
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(lim.Burst))
	h.Set("RateLimit-Policy", strconv.Itoa(lim.Burst)+";w="+strconv.Itoa(max(1, int(math.Ceil(float64(lim.Burst)/lim.Rate)))))
	if d.Allowed {
		h.Set("RateLimit-Remaining", strconv.Itoa(max(0, d.Remaining)))
		return true
	}
	secs := ceilSeconds(d.RetryAfter)
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.Itoa(secs))
	log.Info().Str("request_id", RequestIDFromContext(r.Context())).Str("principal", p.ID).Str("tenant", p.Tenant).
		Msg("rate limited")
	prob := newProblem(http.StatusTooManyRequests, SlugRateLimited,
		"more than "+strconv.FormatFloat(lim.Rate, 'f', -1, 64)+" requests per second (burst "+strconv.Itoa(lim.Burst)+
			"); retry after the Retry-After delay")
	prob.RetryAfter = secs
	writeProblem(w, r, prob)
	return false
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// RequireOperator returns middleware answering 403 to every principal but an operator. On an
// open API (no principal) it lets the request through. Wrap operator routes (dead letters,
// redrive, replay) in it, inside Authenticate.
func RequireOperator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := PrincipalFromContext(r.Context()); ok && !p.Operator {
			writeProblem(w, r, newProblem(http.StatusForbidden, SlugForbidden,
				"this route is for operators; use a key or token with the operator role"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ProblemError is an error that is answered with its Problem. GuardJobs returns them from
// Submit; the API writes them as they are.
type ProblemError struct {
	Problem Problem
}

func (e *ProblemError) Error() string { return e.Problem.Detail }

// problemOf returns the Problem of a ProblemError in err's chain.
func problemOf(err error) (Problem, bool) {
	var pe *ProblemError
	if errors.As(err, &pe) {
		return pe.Problem, true
	}
	return Problem{}, false
}
