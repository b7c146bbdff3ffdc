package main

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
)

// TestConsoleSessionAcrossTheFleet serves the console from two processes that share
// console.session_key, as behind a load balancer without sticky routing: an operator logged in
// on one uses the console on the other and acts there with the CSRF token of the first one's
// page; the word of the action follows to the first. A process with another key, a changed
// cookie, and a process without a key refuse the session; no log line holds a secret.
func TestConsoleSessionAcrossTheFleet(t *testing.T) {
	t.Parallel()
	const (
		fleetKey = "c2Vzc2lvbi1rZXktb2YtdGhlLWZsZWV0LTMyLWJ5dGVzISE=" // 35 bytes
		otherKey = "YW5vdGhlci1zZXNzaW9uLWtleS0zMi1ieXRlcyBsb25nIQ=="
		operator = "k_fleet_ops_secret_01"
	)
	fleet := func(key string) string {
		yaml := `
models: [{name: slow, provider: sim, latency: 30s}]
workers: {concurrency: 2, max_attempts: 1, shutdown_timeout: 1s}
auth:
  api_keys:
    - {key: "k_fleet_client", tenant: acme}
    - {key: "` + operator + `", tenant: ops, role: operator}
`
		if key != "" {
			yaml += "console: {session_key: \"" + key + "\"}\n"
		}
		return yaml
	}
	a, logsA := startLogged(t, fleet(fleetKey))
	b, logsB := startLogged(t, fleet(fleetKey))
	c, _ := startLogged(t, fleet(otherKey))
	d, logsD := startLogged(t, fleet(""))

	// One cookie jar for every process, as a browser that reaches them through one address.
	onA := newBrowser(t, a.base)
	on := func(h *apiHarness) *browser { return &browser{t: t, base: h.base, client: onA.client} }
	onB := on(b)
	onA.login(operator)

	code, _, data := b.do(http.MethodPost, "/v1/jobs", `{"task":"summarize","input":{"text":"slow"}}`, map[string]string{"X-Api-Key": "k_fleet_client"})
	if code != http.StatusAccepted {
		t.Fatalf("submit to the second process: %d %s", code, data)
	}
	slow := b.submitted(data)
	b.eventually(15*time.Second, func() bool {
		_, _, data := b.do(http.MethodGet, "/v1/jobs/"+slow, "", map[string]string{"X-Api-Key": "k_fleet_client"})
		return strings.Contains(string(data), `"status":"`+string(messages.StatusProcessing)+`"`)
	})
	resp, page := onB.get("/ui/jobs/" + slow)
	checkPage(t, "/ui/jobs/"+slow+" on the second process", resp, page)
	_, pageA := onA.get("/ui/")
	tokenA := onA.csrf(pageA)
	if onB.csrf(page) != tokenA {
		t.Fatal("the second process shows another CSRF token than the first")
	}
	if resp, _ := onB.post("/ui/jobs/"+slow+"/cancel", url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cancel on the second process with a forged token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := onB.post("/ui/jobs/"+slow+"/cancel", url.Values{"csrf": {tokenA}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("cancel on the second process with the first one's token: %d", resp.StatusCode)
	}
	b.eventually(15*time.Second, func() bool {
		_, _, data := b.do(http.MethodGet, "/v1/jobs/"+slow, "", map[string]string{"X-Api-Key": "k_fleet_client"})
		return strings.Contains(string(data), `"status":"`+string(messages.StatusCancelled)+`"`)
	})
	if _, body := onA.get("/ui/"); !strings.Contains(body, "Job cancelled.") {
		t.Fatalf("the first process does not carry the second one's word of the cancel:\n%s", body)
	}
	if !strings.Contains(logsB.String(), `"action":"cancel","actor":"key:`) {
		t.Errorf("no audit line of the cancel on the second process:\n%s", logsB.String())
	}

	// Another key, no key, a changed cookie: back to the login page.
	for name, h := range map[string]*apiHarness{"another key": c, "no key": d} {
		if resp, _ := on(h).get("/ui/jobs"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Fatalf("GET /ui/jobs on the process with %s: %d to %q", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := on(h).post("/ui/logout", url.Values{"csrf": {tokenA}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST on the process with %s: %d, want 401", name, resp.StatusCode)
		}
	}
	u, _ := url.Parse(b.base + "/ui/")
	var sealed string
	for _, ck := range onA.client.Jar.Cookies(u) {
		if ck.Name == "infleet_console" {
			sealed = ck.Value
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	if err != nil || len(raw) < 64 {
		t.Fatalf("session cookie %q: %v", sealed, err)
	}
	raw[len(raw)/2] ^= 0x20
	req, _ := http.NewRequest(http.MethodGet, b.base+"/ui/jobs", nil)
	req.AddCookie(&http.Cookie{Name: "infleet_console", Value: "v1." + base64.RawURLEncoding.EncodeToString(raw)})
	resp, err = (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("a changed cookie: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Logout ends the session in the browser; the processes with the key warned of nothing.
	if resp, _ := onB.post("/ui/logout", url.Values{"csrf": {tokenA}}); resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("logout on the second process: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := onA.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /ui/ on the first process after logout: %d", resp.StatusCode)
	}
	if !strings.Contains(logsD.String(), `"setting":"console.session_key"`) || !strings.Contains(logsD.String(), "sticky routing") {
		t.Errorf("the process without a session key did not warn:\n%s", logsD.String())
	}
	for _, logs := range []string{logsA.String(), logsB.String()} {
		if strings.Contains(logs, "sticky routing") {
			t.Errorf("a process with a session key warned of sticky routing:\n%s", logs)
		}
		for _, secret := range []string{operator, fleetKey, sealed} {
			if strings.Contains(logs, secret) {
				t.Fatalf("a log line holds a secret (%.8s…):\n%s", secret, logs)
			}
		}
	}
}
