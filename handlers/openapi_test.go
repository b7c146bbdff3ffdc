package handlers

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/npmtest"
)

// OpenAPI tools run against the served document, pinned to versions that run on Node 20.
const (
	redoclyCLI = "@redocly/cli@2.77.0"
	prismCLI   = "@stoplight/prism-cli@5.16.0"
)

// servedOpenAPI fetches GET /openapi.json from a running API and returns the raw document and
// its decoded form.
func servedOpenAPI(t *testing.T, b *testBundle) ([]byte, map[string]any) {
	t.Helper()
	resp := b.do(t, http.MethodGet, "/openapi.json", "")
	raw := []byte(readAll(t, resp))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, raw)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("served /openapi.json is not JSON: %v", err)
	}
	return raw, doc
}

// TestServedOpenAPIRefsResolve walks the document served at /openapi.json and resolves every
// $ref in it as a JSON pointer into the same document: no reference may lean on a schema's $id or
// on another file, which OpenAPI tools do not follow.
func TestServedOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	_, doc := servedOpenAPI(t, setup(t))
	refs := 0
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if k == "$ref" {
					refs++
					ref, _ := c.(string)
					if err := resolveRef(doc, ref); err != nil {
						t.Errorf("%s: $ref %q: %v", at, ref, err)
					}
					continue
				}
				walk(c, at+"/"+k)
			}
		case []any:
			for i, c := range v {
				walk(c, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(doc, "#")
	if refs < 50 {
		t.Errorf("found only %d $refs in the served document; the walk is broken", refs)
	}
}

// resolveRef follows ref, which must be a local JSON pointer ("#/components/schemas/Job"), in doc.
func resolveRef(doc any, ref string) error {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return fmt.Errorf("not a pointer into this document")
	}
	cur := doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return fmt.Errorf("%q: not an object", tok)
		}
		if cur, ok = m[tok]; !ok {
			return fmt.Errorf("%q: no such member", tok)
		}
	}
	if _, ok := cur.(map[string]any); !ok {
		return fmt.Errorf("resolves to %T, not an object", cur)
	}
	return nil
}

// TestServedOpenAPIPassesRedoclyAndPrism runs the real tools on the served document: Redocly's
// linter reports no error, and Prism loads it and mocks the API, validating a request body
// against the job schema (whose parts are referenced components). The tools are installed into
// the npm test cache on first use.
func TestServedOpenAPIPassesRedoclyAndPrism(t *testing.T) {
	t.Parallel()
	tools := npmtest.Install(t, redoclyCLI, prismCLI)
	b := setup(t)
	raw, _ := servedOpenAPI(t, b)
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("redocly lint", func(t *testing.T) {
		out, err := exec.Command(npmtest.Bin(tools, "redocly"), "lint", "--format=json", spec).Output()
		var report struct {
			Totals   struct{ Errors, Warnings int }
			Problems []struct {
				RuleID   string `json:"ruleId"`
				Severity string
				Message  string
				Location []struct{ Pointer string }
			}
		}
		if jerr := json.Unmarshal(out, &report); jerr != nil {
			t.Fatalf("redocly lint: %v; output not a JSON report (%v):\n%s", err, jerr, out)
		}
		for _, p := range report.Problems {
			if p.Severity == "error" {
				t.Errorf("redocly: %s: %s at %+v", p.RuleID, p.Message, p.Location)
			}
		}
		if report.Totals.Errors != 0 || err != nil {
			t.Errorf("redocly lint: %d errors, exit %v", report.Totals.Errors, err)
		}
	})

	t.Run("prism mock", func(t *testing.T) {
		// Prism loads the document from the running API, exactly as served. The port was free
		// a moment ago; another test process may take it before Prism binds it, and Prism
		// then exits instead of saying it listens: a new port is tried, not the other
		// process's server tested.
		var base string
		var prism *npmtest.Process
		for attempt := 1; ; attempt++ {
			port := freePort(t)
			base = "http://127.0.0.1:" + port
			prism = npmtest.Start(t, npmtest.Bin(tools, "prism"), "mock", "-h", "127.0.0.1", "-p", port, b.server.URL+"/openapi.json")
			if prism.WaitOutput(t, "listening on "+base, time.Minute) {
				break
			}
			if attempt == 3 {
				t.Fatalf("prism did not start on three free ports:\n%s", prism.Output())
			}
		}
		prism.WaitHTTP(t, base+"/healthz", time.Minute)
		post := func(body string) *http.Response {
			t.Helper()
			resp, err := http.Post(base+"/v1/jobs", contentTypeJS, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			return resp
		}
		// Prism lists what a request breaks in its sl-violations header.
		if resp := post(validJob); resp.StatusCode/100 != 2 || resp.Header.Get("sl-violations") != "" {
			t.Errorf("prism: valid job answered %d, violations %s: %s\n%s", resp.StatusCode, resp.Header.Get("sl-violations"), readAll(t, resp), prism.Output())
		}
		// Two inputs break components.schemas.JobInput (maxProperties 1), reached only through
		// the job schema's reference to it.
		bad := `{"task":"summarize","input":{"text":"a","s3_uri":"s3://bucket/key"}}`
		resp := post(bad)
		if v := resp.Header.Get("sl-violations"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(v, "maxProperties") || !strings.Contains(v, `"input"`) {
			t.Errorf("prism: job with two inputs answered %d, violations %s; want 400 naming input's maxProperties", resp.StatusCode, v)
		}
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
