package fmsim

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/internal/npmtest"
)

// bedrockJSSDK is the official Bedrock Runtime JavaScript SDK, pinned to a release that runs on
// Node 20; its default request handler speaks HTTP/2, also to an http:// endpoint.
const bedrockJSSDK = "@aws-sdk/client-bedrock-runtime@3.1178.0"

// protoRecorder wraps the simulator and remembers the protocol of each request by path.
type protoRecorder struct {
	next  http.Handler
	mu    sync.Mutex
	proto map[string][]string
}

func (p *protoRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.proto[r.URL.Path] = append(p.proto[r.URL.Path], r.Proto)
	p.mu.Unlock()
	p.next.ServeHTTP(w, r)
}

func (p *protoRecorder) seen(path string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.proto[path]...)
}

// serveHTTP starts s.HTTPServer on a free loopback port until the test ends and returns its base
// URL and the recorder of the protocols requests arrived on.
func serveHTTP(t *testing.T, s *Server) (string, *protoRecorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := s.HTTPServer()
	rec := &protoRecorder{next: srv.Handler, proto: map[string][]string{}}
	srv.Handler = rec
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { s.Close(); _ = srv.Close() })
	return "http://" + ln.Addr().String(), rec
}

// TestHTTPServerSpeaksHTTP1AndUnencryptedHTTP2 calls one port with an HTTP/1.1 client and an
// HTTP/2 prior-knowledge client (no TLS, no upgrade) and checks each is answered on its protocol.
func TestHTTPServerSpeaksHTTP1AndUnencryptedHTTP2(t *testing.T) {
	t.Parallel()
	base, rec := serveHTTP(t, New(Config{}))
	client := func(set func(*http.Protocols)) *http.Client {
		var p http.Protocols
		set(&p)
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &p}}
	}
	h1 := client(func(p *http.Protocols) { p.SetHTTP1(true) })
	h2 := client(func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
	body := `{"messages":[{"role":"user","content":[{"text":"hello"}]}]}`
	for _, tc := range []struct {
		client *http.Client
		major  int
	}{{h1, 1}, {h2, 2}, {h1, 1}} {
		resp, err := tc.client.Post(base+"/model/m/converse", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("HTTP/%d: %v", tc.major, err)
		}
		got, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.ProtoMajor != tc.major || resp.StatusCode != http.StatusOK || !strings.Contains(string(got), `"output"`) {
			t.Errorf("HTTP/%d client: %s %d %s", tc.major, resp.Proto, resp.StatusCode, got)
		}
	}
	if got := strings.Join(rec.seen("/model/m/converse"), ","); got != "HTTP/1.1,HTTP/2.0,HTTP/1.1" {
		t.Errorf("server saw %s, want HTTP/1.1,HTTP/2.0,HTTP/1.1", got)
	}
}

// TestBedrockJavaScriptSDKConverse runs the official Bedrock Runtime JavaScript SDK (installed
// into the npm test cache on first use) against an http:// fmsim endpoint with its default
// request handler, and checks the Converse answer and that it came over HTTP/2.
func TestBedrockJavaScriptSDKConverse(t *testing.T) {
	t.Parallel()
	sdk := npmtest.Install(t, bedrockJSSDK)
	base, rec := serveHTTP(t, New(Config{}))
	script := filepath.Join(t.TempDir(), "converse.mjs")
	if err := os.WriteFile(script, []byte(`
import { createRequire } from "node:module";
const require = createRequire(process.env.SDK_DIR + "/");
const { BedrockRuntimeClient, ConverseCommand } = require("@aws-sdk/client-bedrock-runtime");
const client = new BedrockRuntimeClient({
  region: "us-east-1",
  endpoint: process.argv[2],
  credentials: { accessKeyId: "AKIDFMSIM", secretAccessKey: "secret" },
  maxAttempts: 1,
});
const out = await client.send(new ConverseCommand({
  modelId: "anthropic.claude-3-haiku-20240307-v1:0",
  messages: [{ role: "user", content: [{ text: "hello from node" }] }],
  inferenceConfig: { maxTokens: 64 },
}));
console.log(JSON.stringify({ text: out.output.message.content[0].text, stop: out.stopReason, usage: out.usage }));
client.destroy();
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "node", script, base)
	cmd.Env = append(os.Environ(), "SDK_DIR="+filepath.Join(sdk, "node_modules"))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node Converse: %v\n%s%s", err, out, stderr)
	}
	var got struct {
		Text  string
		Stop  string
		Usage struct{ InputTokens, OutputTokens int }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if got.Text == "" || got.Stop == "" || got.Usage.InputTokens == 0 || got.Usage.OutputTokens == 0 {
		t.Errorf("Converse answer %+v, want text, a stop reason and token usage", got)
	}
	path := "/model/anthropic.claude-3-haiku-20240307-v1:0/converse"
	if seen := rec.seen(path); len(seen) != 1 || seen[0] != "HTTP/2.0" {
		t.Errorf("requests to %s came as %v, want one over HTTP/2.0 (all: %v)", path, seen, rec.proto)
	}
}
