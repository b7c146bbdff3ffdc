// Package ui is infleet's operator console: server-rendered pages at /ui/ over the HTTP API.
//
// Every figure and every action goes through a route of the API (the handler in Config.API,
// with its authentication, limits and audit log), called in-process with the operator's
// credential: the console shows nothing a script could not get from the routes in
// GET /openapi.json. The pages are html/template, embedded with the few static files they use
// (htmx and uPlot, vendored with their licences, and the console's own JS and CSS). Responses
// carry a Content-Security-Policy without inline scripts or styles.
//
// With auth on, the console asks for an operator's API key or bearer token, checks it against
// an operator route, and keeps it in the session: an HttpOnly, SameSite=Strict cookie (Secure
// over TLS) sealed with AES-256-GCM under Config.SessionKey, holding the credential, the CSRF
// token and the expiry. Every process holding the same key serves the session, so a fleet
// behind a load balancer needs no sticky routing; nothing about a session is kept server-side
// but the list of sessions logged out through this process. Every state change is a POST
// carrying the session's CSRF token.
package ui

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/handlers"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultStreamInterval is how often the live job list reads the first page again.
const DefaultStreamInterval = time.Second

// Config configures the console. Only API is required.
type Config struct {
	// API is the HTTP API the console reads and acts through, with its middleware
	// (authentication, limits): what handlers.NewAPI returns. Required.
	API http.Handler
	// Auth says whether the API asks for credentials. When false the console is open like
	// the API and says so in a banner.
	Auth bool
	// SessionKey seals the sessions' cookies (at least MinSessionKeyBytes of secret key
	// material). Every process that serves the same operators must hold the same key for a
	// session made by one to open in another. Default: a random key of this process
	// (RandomSessionKey), so its sessions open nowhere else.
	SessionKey []byte
	// SessionTTL is how long a session lasts without use. Default 1h.
	SessionTTL time.Duration
	// SessionMaxAge is how long a session lasts after login however much it is used.
	// Default 12h.
	SessionMaxAge time.Duration
	// StreamInterval is how often the live job list reads the first page again. Default 1s.
	StreamInterval time.Duration
	// Logger receives the access log of the pages; the zero logger logs nothing.
	Logger zerolog.Logger
}

// console serves the pages. Safe for concurrent use.
type console struct {
	cfg      Config
	log      zerolog.Logger
	mux      *http.ServeMux
	pages    *pages
	sessions *sessions
}

// New returns the console's handler for every path under /ui/.
func New(cfg Config) (http.Handler, error) {
	if cfg.API == nil {
		return nil, errMissingAPI
	}
	cfg.SessionTTL = cmp.Or(max(cfg.SessionTTL, 0), DefaultSessionTTL)
	cfg.SessionMaxAge = cmp.Or(max(cfg.SessionMaxAge, 0), DefaultSessionMaxAge)
	if cfg.SessionKey == nil {
		cfg.SessionKey = RandomSessionKey()
	}
	sess, err := newSessions(cfg.SessionKey, cfg.SessionTTL, cfg.SessionMaxAge)
	if err != nil {
		return nil, err
	}
	cfg.StreamInterval = cmp.Or(max(cfg.StreamInterval, 0), DefaultStreamInterval)
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: p, sessions: sess}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	c.mux.Handle("GET /ui/static/", cacheStatic(files))
	c.mux.HandleFunc("GET /ui", RedirectToConsole)
	c.mux.HandleFunc("GET /ui/login", c.loginPage)
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.routes()

	var h http.Handler = c.mux
	h = securityHeaders(h)
	h = handlers.Recover(c.log)(h)
	h = handlers.AccessLog(c.log, nil)(h)
	h = handlers.RequestID(h)
	return h, nil
}

// RedirectToConsole answers GET / with a redirect to /ui/.
func RedirectToConsole(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/ui/", http.StatusFound)
}

type consoleError string

func (e consoleError) Error() string { return string(e) }

const errMissingAPI = consoleError("ui: no API handler configured (pass what handlers.NewAPI returns as Config.API)")

// csp is the Content-Security-Policy of every answer: scripts, styles and data from this
// origin only, no inline script or style, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// credential is what the console sends the API for an operator: an API key or a bearer token.
type credential struct {
	apiKey, bearer string
}

func (c credential) set(h http.Header) {
	switch {
	case c.apiKey != "":
		h.Set("X-Api-Key", c.apiKey)
	case c.bearer != "":
		h.Set("Authorization", "Bearer "+c.bearer)
	}
}

// credentialOf reads what the login form was given: a JWT (three dot-separated parts) is a
// bearer token, anything else an API key. A leading "Bearer " is dropped.
func credentialOf(s string) credential {
	s = strings.TrimSpace(s)
	if t, ok := strings.CutPrefix(s, "Bearer "); ok {
		return credential{bearer: strings.TrimSpace(t)}
	}
	if strings.Count(s, ".") == 2 && !strings.ContainsAny(s, " \t") {
		return credential{bearer: s}
	}
	return credential{apiKey: s}
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// page wraps a page or action: it finds the session (starting one on an open console, or
// sending to the login page), and checks the CSRF token of every POST.
func (c *console) page(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.sessions.get(w, r)
		if sess == nil && !c.cfg.Auth {
			sess = c.sessions.start(w, r, credential{}, true)
		}
		if sess == nil || !sess.Authed {
			if r.Header.Get("HX-Request") == "true" {
				// A page's periodic refresh after the session ended: the whole page goes to
				// the login form, instead of a fragment of it being swapped in.
				w.Header().Set("HX-Redirect", "/ui/login")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/ui/api/") && !strings.HasSuffix(r.URL.Path, "/stream") {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "log in to the console first (GET /ui/login)", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !validCSRF(r, sess) {
			http.Error(w, "the form is stale or did not come from this console (CSRF token missing or wrong); reload the page and try again", http.StatusForbidden)
			return
		}
		next := r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
		w.Header().Set("Cache-Control", "no-store")
		h(w, next)
	})
}

func validCSRF(r *http.Request, sess *session) bool {
	got := r.PostFormValue("csrf")
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// apiAnswer is what an API route answered.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// ok reports a 2xx answer.
func (a apiAnswer) ok() bool { return a.status >= 200 && a.status < 300 }

// decode reads the answer's JSON into v.
func (a apiAnswer) decode(v any) error { return json.Unmarshal(a.body, v) }

// problem returns the answer's problem detail, or its status text.
func (a apiAnswer) problem() string {
	var p struct {
		Detail string `json:"detail"`
		Errors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(a.body, &p) == nil && p.Detail != "" {
		msg := p.Detail
		for _, e := range p.Errors {
			msg += "; " + strings.TrimSpace(e.Field+" "+e.Message)
		}
		return msg
	}
	return http.StatusText(a.status)
}

// call runs one API route in-process with the session's credential, as the request's client.
func (c *console) call(r *http.Request, method, path string, body any) apiAnswer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{status: http.StatusInternalServerError}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return apiAnswer{status: http.StatusBadRequest, body: []byte(`{"detail":"bad path"}`)}
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if sess := sessionFrom(r.Context()); sess != nil {
		sess.cred().set(req.Header)
	}
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return apiAnswer{status: rec.status, header: rec.header, body: rec.body.Bytes()}
}

// recorder keeps an in-process API answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}

// loginPage shows the login form; an open console has none and goes to the overview.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Auth {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	sess := c.sessions.get(w, r)
	if sess == nil {
		sess = c.sessions.start(w, r, credential{}, false)
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, "login", sess, map[string]any{"Error": r.URL.Query().Get("error")})
}

// login checks the credential against an operator route and logs the session in.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Auth {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	sess := c.sessions.get(w, r)
	if sess == nil || !validCSRF(r, sess) {
		http.Redirect(w, r, "/ui/login?error="+queryEscape("the login form was stale; try again"), http.StatusSeeOther)
		return
	}
	cred := credentialOf(r.PostFormValue("credential"))
	if len(cred.apiKey)+len(cred.bearer) > MaxCredentialBytes || !c.sessions.fits(cred) {
		c.audit(r, "console_login", "").Bool("granted", false).Msg("operator action")
		http.Redirect(w, r, "/ui/login?error="+queryEscape("this credential is too long for a console session (at most 2048 characters)"), http.StatusSeeOther)
		return
	}
	probe := r.WithContext(context.WithValue(r.Context(), sessionKey{}, &session{APIKey: cred.apiKey, Bearer: cred.bearer}))
	ans := c.call(probe, http.MethodGet, "/v1/stats?window=1m", nil)
	switch {
	case ans.ok():
	case ans.status == http.StatusForbidden:
		c.audit(r, "console_login", "").Bool("granted", false).Msg("operator action")
		http.Redirect(w, r, "/ui/login?error="+queryEscape("this credential is not an operator's: use a key or token with the operator role"), http.StatusSeeOther)
		return
	default:
		c.audit(r, "console_login", "").Bool("granted", false).Int("status", ans.status).Msg("operator action")
		http.Redirect(w, r, "/ui/login?error="+queryEscape("not accepted: "+ans.problem()), http.StatusSeeOther)
		return
	}
	// A new session (id and CSRF token) on login, so that one seen before login is worth
	// nothing after.
	c.sessions.end(w, r, sess)
	c.sessions.start(w, r, cred, true)
	c.audit(r, "console_login", "").Bool("granted", true).Msg("operator action")
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// audit starts an audit line of a console action that has no API route of its own (login,
// logout); actions on jobs are audited by their API routes.
func (c *console) audit(r *http.Request, action, actor string) *zerolog.Event {
	return c.log.Info().Bool("audit", true).Str("action", action).Str("actor", cmp.Or(actor, "console")).
		Str("request_id", handlers.RequestIDFromContext(r.Context()))
}
