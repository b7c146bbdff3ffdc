package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writes, for a server's logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged is startServe with the server's info-level logs kept, for audit lines.
func startLogged(t *testing.T, yaml string) (*apiHarness, *lockedBuffer) {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	path := filepath.Join(dir, "infleet.yaml")
	full := fmt.Sprintf("addr: %q\ndata_dir: %q\n%s", addr, filepath.Join(dir, "data"), yaml)
	if err := os.WriteFile(path, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, configSource{}, zerolog.New(logs).Level(zerolog.InfoLevel), roles{ingress: true, workers: true})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	h := &apiHarness{base: "http://" + addr, dataDir: filepath.Join(dir, "data"), t: t}
	h.eventually(10*time.Second, func() bool {
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return h, logs
}

// browser is a cookie-keeping HTTP client of the console that does not follow redirects.
type browser struct {
	t      testing.TB
	base   string
	client *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs the browser in to the console with an operator's key.
func (b *browser) login(key string) {
	b.t.Helper()
	_, page := b.get("/ui/login")
	resp, _ := b.post("/ui/login", url.Values{"csrf": {b.csrf(page)}, "credential": {key}})
	if resp.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// csrf reads the CSRF token of a page's forms.
func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// inlineCode finds what a CSP without 'unsafe-inline' would refuse: script elements without a
// src, style elements and attributes, and event handler attributes.
var inlineCode = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<script>|<style[\s>]|\sstyle\s*=|\son[a-z]+\s*=`)

// checkPage wants a 200 HTML page with the console's security headers and nothing inline.
func checkPage(t *testing.T, path string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET %s: %d %s\n%s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "style-src 'self'") {
		t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
	}
	if m := inlineCode.FindString(body); m != "" {
		t.Fatalf("GET %s: inline code %q, which the CSP refuses", path, m)
	}
}

// TestConsoleOpenWithoutAuth serves the console without auth: / goes to /ui/, every page says
// the console is open, the embedded files are served, and actions still need the CSRF token.
func TestConsoleOpenWithoutAuth(t *testing.T) {
	t.Parallel()
	h := startServe(t, `
models: [{name: fast, provider: sim, latency: 1ms}]
log: {level: warn}
`)
	b := newBrowser(t, h.base)
	for _, path := range []string{"/", "/ui"} {
		if resp, _ := b.get(path); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
			t.Fatalf("GET %s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, body := b.get("/ui/no-such-page"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /ui/no-such-page: %d %s", resp.StatusCode, body)
	}
	if code, _, _ := h.do(http.MethodPost, "/", "", nil); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Fatalf("POST /: %d, want the API's problem", code)
	}
	id := h.submit(`{"task":"summarize","input":{"text":"open console"}}`)
	h.waitStatus(id, messages.StatusCompleted)
	for _, path := range []string{"/ui/", "/ui/jobs", "/ui/jobs/" + id, "/ui/dead-letters", "/ui/replays", "/ui/models"} {
		resp, body := b.get(path)
		checkPage(t, path, resp, body)
		if !strings.Contains(body, "This console is open") {
			t.Fatalf("GET %s: no banner saying the console is open", path)
		}
	}
	for path, ct := range map[string]string{
		"/ui/static/console.js":                      "text/javascript",
		"/ui/static/console.css":                     "text/css",
		"/ui/static/vendor/htmx-2.0.11.min.js":       "text/javascript",
		"/ui/static/vendor/uPlot-1.6.32.iife.min.js": "text/javascript",
		"/ui/static/vendor/uPlot-LICENSE":            "",
		"/ui/static/vendor/htmx-LICENSE":             "",
	} {
		resp, body := b.get(path)
		if resp.StatusCode != http.StatusOK || len(body) < 100 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
			t.Fatalf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if resp, _ := b.get("/ui/login"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /ui/login on an open console: %d, want a redirect to the overview", resp.StatusCode)
	}
	if resp, _ := b.post("/ui/replays", url.Values{"since": {"1h"}, "action": {"dry-run"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without the CSRF token: %d, want 403", resp.StatusCode)
	}
}

// TestConsoleLoginSessionAndActions logs in with auth on: a client key is turned away, an
// operator key gets a session cookie (HttpOnly, SameSite=Strict); the pages show the fleet's
// jobs; find goes by id and by idempotency key; cancel, redrive and a replay (dry run first)
// go through their API routes and their audit lines; a forged POST and a logged-out session
// are refused.
func TestConsoleLoginSessionAndActions(t *testing.T) {
	t.Parallel()
	h, logs := startLogged(t, `
models:
  - {name: fast, provider: sim, latency: 1ms}
  - {name: slow, provider: sim, latency: 30s}
  - {name: broken, provider: sim, latency: 1ms, fail_rate: 1}
routes: {default: fast, slowtask: slow, doomed: broken}
workers: {concurrency: 4, max_attempts: 1, shutdown_timeout: 1s}
auth:
  api_keys:
    - {key: "k_console_client", tenant: acme}
    - {key: "k_console_ops_01", tenant: ops, role: operator}
`)
	client := map[string]string{"X-Api-Key": "k_console_client"}
	submit := func(body string, extra ...string) string {
		t.Helper()
		hdr := map[string]string{"X-Api-Key": "k_console_client"}
		if len(extra) == 2 {
			hdr[extra[0]] = extra[1]
		}
		code, _, data := h.do(http.MethodPost, "/v1/jobs", body, hdr)
		if code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, data)
		}
		return h.submitted(data)
	}
	wait := func(id string, want messages.Status) {
		t.Helper()
		h.eventually(15*time.Second, func() bool {
			_, _, data := h.do(http.MethodGet, "/v1/jobs/"+id, "", client)
			return strings.Contains(string(data), `"status":"`+string(want)+`"`)
		})
	}
	done := submit(`{"task":"summarize","input":{"text":"done"}}`, "Idempotency-Key", "order-42")
	slow := submit(`{"task":"slowtask","input":{"text":"slow"}}`)
	doomed := submit(`{"task":"doomed","input":{"text":"doomed"}}`)
	wait(done, messages.StatusCompleted)
	wait(slow, messages.StatusProcessing)
	wait(doomed, messages.StatusFailed)

	b := newBrowser(t, h.base)
	if resp, _ := b.get("/ui/jobs"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("GET /ui/jobs before login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.get("/ui/login")
	checkPage(t, "/ui/login", resp, page)
	if strings.Contains(page, "This console is open") {
		t.Fatal("the login page says the console is open")
	}
	resp, _ = b.post("/ui/login", url.Values{"csrf": {b.csrf(page)}, "credential": {"k_console_client"}})
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=") || !strings.Contains(loc, "operator") {
		t.Fatalf("login with a client key: %d to %q", resp.StatusCode, loc)
	}
	_, page = b.get("/ui/login")
	resp, _ = b.post("/ui/login", url.Values{"csrf": {b.csrf(page)}, "credential": {"k_console_ops_01"}})
	cookie := resp.Header.Get("Set-Cookie")
	if resp.Header.Get("Location") != "/ui/" || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") ||
		strings.Contains(cookie, "Secure") {
		t.Fatalf("login with an operator key: %d to %q, cookie %q", resp.StatusCode, resp.Header.Get("Location"), cookie)
	}

	for path, want := range map[string]string{
		"/ui/":                   `id="fig-running">1<`,
		"/ui/jobs":               done,
		"/ui/jobs?status=FAILED": doomed,
		"/ui/jobs?priority=high": "No jobs match",
		"/ui/jobs/" + done:       "Copy as curl",
		"/ui/dead-letters":       "Redrive 1…",
		"/ui/dead-letters/confirm?reason=model_error&task=doomed": `<strong id="confirm-count">1</strong>`,
		"/ui/replays": "Dry run",
		"/ui/models":  `data-model="fast"`,
	} {
		resp, body := b.get(path)
		checkPage(t, path, resp, body)
		if !strings.Contains(body, want) {
			t.Fatalf("GET %s: %q not found in\n%s", path, want, body)
		}
	}
	if resp, _ := b.get("/ui/jobs?q=" + done); resp.Header.Get("Location") != "/ui/jobs/"+done {
		t.Fatalf("find by id: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.get("/ui/jobs?q=order-42&tenant=acme"); resp.Header.Get("Location") != "/ui/jobs/"+done {
		t.Fatalf("find by idempotency key: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.get("/ui/jobs?q=no-such-thing"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("find nothing: %d", resp.StatusCode)
	}

	// Actions.
	_, page = b.get("/ui/jobs/" + slow)
	token := b.csrf(page)
	if resp, _ := b.post("/ui/jobs/"+slow+"/cancel", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.post("/ui/jobs/"+slow+"/cancel", url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel with a forged CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := b.post("/ui/jobs/"+slow+"/cancel", url.Values{"csrf": {token}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel: %d", resp.StatusCode)
	}
	wait(slow, messages.StatusCancelled)
	if _, body := b.get("/ui/jobs/" + slow); !strings.Contains(body, "Job cancelled.") {
		t.Fatalf("no word of the cancel on the job page:\n%s", body)
	}
	if resp, _ := b.post("/ui/dead-letters/redrive", url.Values{"csrf": {token}, "reason": {"model_error"}, "task": {"doomed"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("redrive: %d", resp.StatusCode)
	}
	if _, body := b.get("/ui/dead-letters"); !strings.Contains(body, "Redriven 1 of 1 dead letter(s).") {
		t.Fatalf("no word of the redrive:\n%s", body)
	}
	wait(doomed, messages.StatusFailed) // the model still fails: it comes back as a new dead letter
	// The archive is written in the background: the dry run finds the job once it is there.
	h.eventually(10*time.Second, func() bool {
		_, body := b.post("/ui/replays", url.Values{"csrf": {token}, "since": {"1h"}, "task": {"summarize"}, "action": {"dry-run"}})
		if strings.Contains(body, `<strong id="dry-run-count">0</strong>`) && strings.Contains(body, `id="start"`) {
			t.Fatalf("a dry run of nothing offers to start:\n%s", body)
		}
		return strings.Contains(body, `<strong id="dry-run-count">1</strong>`) && strings.Contains(body, `id="start"`)
	})
	resp, _ = b.post("/ui/replays", url.Values{"csrf": {token}, "since": {"1h"}, "task": {"summarize"}, "action": {"start"}})
	replay := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(replay, "/ui/replays/") {
		t.Fatalf("start replay: %d to %q", resp.StatusCode, replay)
	}
	h.eventually(10*time.Second, func() bool {
		_, body := b.get(replay)
		return strings.Contains(body, `id="replay-done"`)
	})
	for _, action := range []string{`"action":"console_login","actor":"console","request_id":`, `"action":"cancel","actor":"key:`,
		`"action":"redrive","actor":"key:`, `"action":"replay","actor":"key:`} {
		if !strings.Contains(logs.String(), action) {
			t.Errorf("no audit line with %s in\n%s", action, logs.String())
		}
	}

	// The live job list streams the first page's rows, and ends when the session does.
	streamResp, err := b.client.Get(h.base + "/ui/jobs/stream?task=summarize")
	if err != nil {
		t.Fatal(err)
	}
	defer streamResp.Body.Close()
	events := bufio.NewReader(streamResp.Body)
	readEvent := func() (string, string) {
		t.Helper()
		var name, data string
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("the job stream ended: %v (after %q %q)", err, name, data)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && name != "":
				return name, data
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ") + "\n"
			}
		}
	}
	if name, data := readEvent(); name != "rows" || !strings.Contains(data, `data-job="`+done+`"`) || strings.Contains(data, doomed) {
		t.Fatalf("first event %s:\n%s", name, data)
	}

	// Logged out, the session is worth nothing.
	_, page = b.get("/ui/")
	if resp, _ := b.post("/ui/logout", url.Values{"csrf": {b.csrf(page)}}); resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /ui/ after logout: %d", resp.StatusCode)
	}
	for {
		name, data := readEvent()
		if name == "problem" && strings.Contains(data, "session ended") {
			break
		}
		if name != "rows" {
			t.Fatalf("job stream after logout: %s %s", name, data)
		}
	}
	if resp, _ := b.get("/ui/api/v1/stats"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ui/api/v1/stats after logout: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, h.base+"/ui/models", nil)
	req.Header.Set("HX-Request", "true")
	if resp, err := b.client.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/ui/login" {
		t.Fatalf("a page's refresh after logout: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestConsoleOnIngress serves the console from `infleet ingress` alone: the pages answer, and
// the models page, from a process that calls no model, shows the fleet's figures from the
// job store (none yet: no worker runs) with the configured limits.
func TestConsoleOnIngress(t *testing.T) {
	t.Parallel()
	h, _ := startRoles(t, t.TempDir(), "models: [{name: fast, provider: sim, latency: 1ms, rpm: 600}]\nlog: {level: warn}\n", roles{ingress: true})
	b := newBrowser(t, h.base)
	for path, want := range map[string]string{
		"/ui/":       `id="fig-queued">0<`,
		"/ui/models": "Figures of every process of the fleet",
		"/ui/jobs":   "No jobs match",
	} {
		resp, body := b.get(path)
		checkPage(t, path, resp, body)
		if !strings.Contains(body, want) {
			t.Fatalf("GET %s: %q not found in\n%s", path, want, body)
		}
	}
	if _, body := b.get("/ui/api/v1/models"); !strings.Contains(body, `"scope":"fleet"`) || !strings.Contains(body, `"rpm":600`) ||
		!strings.Contains(body, `"circuits":{"processes":0`) {
		t.Fatalf("GET /v1/models through the console: %s", body)
	}
	if resp, _ := b.get("/ui/api/v1/jobs/x/events"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an event stream through the pass-through: %d", resp.StatusCode)
	}
}

// TestConsoleLoginWithBearerToken logs in with a JWT from the identity provider: one with the
// operator scope opens the console, one without it is turned away, an expired one too.
func TestConsoleLoginWithBearerToken(t *testing.T) {
	t.Parallel()
	idp := newE2EJWKS(t)
	h := startServe(t, fmt.Sprintf(`
models: [{name: fast, provider: sim, latency: 1ms}]
auth:
  jwt: {issuer: "https://idp.test", jwks_url: %q, leeway: 1s}
log: {level: warn}
`, idp.server.URL))
	for _, tc := range []struct {
		name, token, want string
	}{
		{"client", idp.token(t, jwt.MapClaims{"tenant": "acme", "scope": "task:*"}), "error="},
		{"expired", idp.token(t, jwt.MapClaims{"tenant": "ops", "scope": "operator", "exp": time.Now().Add(-time.Hour).Unix()}), "error="},
		{"operator", "Bearer " + idp.token(t, jwt.MapClaims{"tenant": "ops", "scope": "operator"}), "/ui/"},
	} {
		b := newBrowser(t, h.base)
		_, page := b.get("/ui/login")
		resp, _ := b.post("/ui/login", url.Values{"csrf": {b.csrf(page)}, "credential": {tc.token}})
		if loc := resp.Header.Get("Location"); !strings.Contains(loc, tc.want) {
			t.Fatalf("%s token: login went to %q, want %q", tc.name, loc, tc.want)
		}
		if tc.name == "operator" {
			if resp, body := b.get("/ui/models"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-model="fast"`) {
				t.Fatalf("models page with a bearer token: %d", resp.StatusCode)
			}
		}
	}
}
