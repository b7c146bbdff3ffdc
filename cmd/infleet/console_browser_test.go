package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/infleet/infleet/messages"
)

// envChromium names the Chromium the browser tests drive; .ci/peers/with-chromium.sh (which
// `make test` runs the tests under) sets it, installing Debian's chromium when absent.
const envChromium = "INFLEET_TEST_CHROMIUM"

// envScreenshots, when set, is where the browser test writes its screenshots instead of a
// fresh temporary directory: `INFLEET_CONSOLE_SCREENSHOTS=$PWD/docs/console` refreshes the
// README's.
const envScreenshots = "INFLEET_CONSOLE_SCREENSHOTS"

// cspWatch is run in every page before its own scripts: it records what the
// Content-Security-Policy refuses, so that a page relying on inline code fails the test, and
// the page's uncaught script errors.
const cspWatch = `window.__csp = []; document.addEventListener("securitypolicyviolation",
  function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });
window.addEventListener("error", function (e) { window.__csp.push("script error: " + e.message); });`

// TestConsoleInABrowser drives the console in headless Chromium with auth on: it logs in,
// watches a submitted job go to COMPLETED on the live job list without a reload, opens the
// job's detail (its input masked), redrives a dead letter after the confirmation, starts a
// replay after a dry run, and moves through the console with the keyboard only. Every page
// must load without a CSP violation or a script error; a screenshot of each is written on
// every run.
func TestConsoleInABrowser(t *testing.T) {
	chrome := os.Getenv(envChromium)
	if chrome == "" {
		t.Skip(envChromium + " is not set (make test sets it through .ci/peers/with-chromium.sh)")
	}
	t.Parallel()
	h, _ := startLogged(t, `
models:
  - {name: fast, provider: sim, latency: 3s}
  - {name: broken, provider: sim, latency: 1ms, fail_rate: 1}
routes: {default: fast, doomed: broken}
workers: {concurrency: 4, max_attempts: 1}
guardrails: {input: {pii: {entities: [EMAIL], action: ANONYMIZE}}}
auth:
  api_keys:
    - {key: "k_browser_client", tenant: acme}
    - {key: "k_browser_ops_01", tenant: ops, role: operator}
`)
	submit := func(body string) string {
		t.Helper()
		code, _, data := h.do(http.MethodPost, "/v1/jobs", body, map[string]string{"X-Api-Key": "k_browser_client"})
		if code != http.StatusAccepted {
			t.Fatalf("submit: %d %s", code, data)
		}
		return h.submitted(data)
	}
	doomed := submit(`{"task":"doomed","input":{"text":"this one fails"}}`)
	shots := os.Getenv(envScreenshots)
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "infleet-console-screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	// clean fails the test when the page met a CSP violation or a script error.
	clean := func(what string) {
		t.Helper()
		if v := eval(`JSON.stringify(window.__csp || ["the CSP watch did not run"])`); v != "[]" {
			t.Fatalf("%s: %s", what, v)
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// navigate loads path and waits for the page's scripts to have run.
	navigate := func(path string, waitFor string) {
		t.Helper()
		run("open "+path, chromedp.Navigate(h.base+path), chromedp.WaitVisible(chromedp.CSS(waitFor)))
	}

	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch}); err != nil {
		t.Fatal(err)
	}
	// Log in.
	navigate("/ui/", "#credential")
	if loc := eval(`location.pathname`); loc != "/ui/login" {
		t.Fatalf("the console before login is at %s, want /ui/login", loc)
	}
	clean("login")
	shot("login")
	run("log in", chromedp.SendKeys(chromedp.ID("credential"), "k_browser_ops_01"), chromedp.Submit(chromedp.ID("credential")),
		chromedp.WaitVisible(chromedp.ID("cards")))

	// A job submitted now shows up on the live job list, and turns COMPLETED, with no reload.
	navigate("/ui/jobs", "#jobs-rows")
	run("mark the page", chromedp.Evaluate[chromedp.Void](`document.body.dataset.marker = "same-page"`))
	id := submit(`{"task":"summarize","input":{"text":"mail jane.doe@example.com about the invoice"}}`)
	row := fmt.Sprintf(`#jobs-rows tr[data-job=%q]`, id)
	run("the new job appears", chromedp.WaitVisible(chromedp.CSS(row)))
	if s := eval(fmt.Sprintf(`document.querySelector('%s').dataset.status`, row)); s == string(messages.StatusCompleted) {
		t.Fatalf("the job was COMPLETED when it first showed; the model's 3 s latency should keep it running")
	}
	shot("jobs-live")
	run("the job turns COMPLETED", chromedp.WaitVisible(chromedp.CSS(row+`[data-status="COMPLETED"]`)))
	if m := eval(`document.body.dataset.marker || "reloaded"`); m != "same-page" {
		t.Fatalf("the job list reloaded (marker %q): it must update in place", m)
	}
	clean("jobs")
	shot("jobs")

	// Its detail, by following the link.
	run("open the job", chromedp.Click(chromedp.CSS(row+" a")), chromedp.WaitVisible(chromedp.ID("timeline")))
	if s := text("#job-status"); s != "COMPLETED" {
		t.Fatalf("job status %q", s)
	}
	if in := text("#input"); strings.Contains(in, "jane.doe@example.com") || !strings.Contains(in, "EMAIL") {
		t.Fatalf("the input shows the address the guardrail anonymizes:\n%s", in)
	}
	if c := text("#curl"); !strings.Contains(c, "curl") || strings.Contains(c, "jane.doe") {
		t.Fatalf("copy-as-curl:\n%s", c)
	}
	clean("job")
	shot("job")

	// Redrive the dead letter, after the confirmation that says how many.
	h.waitStatusAs(doomed, messages.StatusFailed, "k_browser_client")
	navigate("/ui/dead-letters", "#dl-groups")
	clean("dead letters")
	shot("dead-letters")
	run("ask to redrive", chromedp.Click(chromedp.CSS(`#dl-groups a.button`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	if n := text("#confirm-count"); n != "1" {
		t.Fatalf("the confirmation says %s dead letters, want 1", n)
	}
	clean("confirm")
	shot("dead-letters-confirm")
	run("redrive", chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("flash")))
	if f := text("#flash"); !strings.Contains(f, "Redriven 1 of 1") {
		t.Fatalf("after the redrive: %q", f)
	}

	// A replay: the dry run first (the archive is written in the background, so count until it
	// has the jobs), then start it and follow it to the end.
	navigate("/ui/replays", "#replay-form")
	run("fill the replay form", chromedp.SetValue(chromedp.ID("r-since"), "1h"), chromedp.SetValue(chromedp.ID("r-task"), "summarize"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		run("dry run", chromedp.Click(chromedp.ID("dry-run")), chromedp.WaitVisible(chromedp.ID("dry-run-count")))
		if text("#dry-run-count") == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dry run still counts %s archived jobs, want 1", text("#dry-run-count"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	clean("replay dry run")
	shot("replays-dry-run")
	run("start the replay", chromedp.Click(chromedp.ID("start")), chromedp.WaitVisible(chromedp.ID("replay-done")))
	if p := text("#replay-published"); p != "1" {
		t.Fatalf("the replay published %s jobs, want 1", p)
	}
	clean("replay")
	shot("replay")
	// The Replays page lists it among the fleet's replays, done, with its page a click away.
	navigate("/ui/replays", "#replay-list")
	if row := text("#replay-list tbody tr"); !strings.Contains(row, "done") || !strings.Contains(row, "1 of 1") {
		t.Fatalf("the replay's row on the Replays page: %q", row)
	}
	clean("replays list")

	navigate("/ui/models", "#models-table")
	clean("models")
	shot("models")
	navigate("/ui/", "#chart-latency")
	run("charts drawn", chromedp.WaitVisible(chromedp.CSS(`#charts[data-drawn] canvas`)))
	clean("overview")
	shot("overview")

	// Keyboard only: the first Tab reaches the skip link, the next ones the navigation, in
	// order, each with a visible focus ring; Enter follows a link.
	focused := func() string {
		return eval(`(function (e) { return (e.id || e.textContent.trim()) + "|" + getComputedStyle(e).outlineStyle; })(document.activeElement)`)
	}
	for _, want := range []string{"Skip to content", "infleet", "Overview", "Jobs"} {
		run("Tab", chromedp.KeyEvent(kb.Tab))
		got := focused()
		name, outline, _ := strings.Cut(got, "|")
		if name != want || outline == "none" {
			t.Fatalf("Tab reached %q (outline %s), want %q with a visible focus ring", name, outline, want)
		}
	}
	run("Enter on Jobs", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("job-filters")))
	if p := eval(`location.pathname`); p != "/ui/jobs" {
		t.Fatalf("Enter on the Jobs link went to %s", p)
	}
	// Through the skip link and the navigation to the first filter, then a keyboard search.
	for range 15 {
		run("Tab", chromedp.KeyEvent(kb.Tab))
		if strings.HasPrefix(focused(), "f-status|") {
			break
		}
	}
	if f := focused(); !strings.HasPrefix(f, "f-status|") {
		t.Fatalf("Tab never reached the status filter (at %s)", f)
	}
	run("Tab to the task filter", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent("summarize"))
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.KeyEvent(kb.Enter))); err != nil {
		t.Fatalf("Enter in the task filter: %v", err)
	}
	run("the filtered list shows the job", chromedp.WaitVisible(chromedp.CSS(row)))
	if q := eval(`location.search`); !strings.Contains(q, "task=summarize") {
		t.Fatalf("the keyboard search went to %s", q)
	}
	clean("keyboard")
}

// waitStatusAs waits for job id to reach want, reading it with an API key.
func (h *apiHarness) waitStatusAs(id string, want messages.Status, key string) {
	h.t.Helper()
	h.eventually(15*time.Second, func() bool {
		_, _, data := h.do(http.MethodGet, "/v1/jobs/"+id, "", map[string]string{"X-Api-Key": key})
		return strings.Contains(string(data), `"status":"`+string(want)+`"`)
	})
}
