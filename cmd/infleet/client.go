package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// defaultServer is the API the client commands talk to when neither --server nor
// INFLEET_SERVER says otherwise.
const defaultServer = "http://127.0.0.1:8080"

// apiClient is the small HTTP client behind submit, status and the operator commands.
type apiClient struct {
	server string
	key    string
	http   *http.Client
}

func addServerFlag(fs *flag.FlagSet) *string {
	return fs.String("server", envOr("INFLEET_SERVER", defaultServer), "infleet API base URL (env INFLEET_SERVER)")
}

func newAPIClient(server string) *apiClient {
	return &apiClient{
		server: strings.TrimRight(server, "/"),
		key:    os.Getenv("INFLEET_API_KEY"),
		http:   &http.Client{Timeout: 90 * time.Second},
	}
}

// do sends a request and returns the status and body. A transport error says how to reach the
// server.
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, header http.Header) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("bad --server %q: %w", c.server, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.key != "" {
		req.Header.Set("X-Api-Key", c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach the infleet API at %s (is `infleet serve` running? set --server or INFLEET_SERVER): %w", c.server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data, err
}

// printJSON writes data indented when it is JSON, as is otherwise.
func printJSON(w io.Writer, data []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, data, "", "  ") == nil {
		buf.WriteByte('\n')
		_, _ = w.Write(buf.Bytes())
		return
	}
	_, _ = w.Write(data)
}

// reportHTTP prints an API answer and maps it to an exit status: 0 for 2xx, 2 for a 4xx the
// user must fix, 1 otherwise.
func reportHTTP(stdout, stderr io.Writer, status int, body []byte) int {
	switch {
	case status >= 200 && status < 300:
		printJSON(stdout, body)
		return 0
	case status >= 400 && status < 500:
		printJSON(stderr, body)
		return exitUsage
	default:
		printJSON(stderr, body)
		return 1
	}
}
