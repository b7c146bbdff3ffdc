// Package openai calls any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama,
// llama.cpp server, fmsim) as a pipeline.ModelClient, over plain net/http and JSON.
package openai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/adapters/internal/retryafter"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// DefaultTimeout bounds one call when Config.Timeout is 0.
const DefaultTimeout = 60 * time.Second

// DefaultMaxIdleConns is how many idle connections to the server are kept for reuse when
// Config.MaxIdleConns is 0.
const DefaultMaxIdleConns = 128

// maxResponse bounds a response body.
const maxResponse = 16 << 20

// Config says how to reach one model.
type Config struct {
	// BaseURL of the server, the part before /chat/completions, e.g.
	// https://api.openai.com/v1 or http://127.0.0.1:11434/v1. Required.
	BaseURL string
	// ModelID is the "model" of every request. Required.
	ModelID string
	// APIKey is sent as "Authorization: Bearer KEY" when set. Default none (Ollama, vLLM
	// without --api-key).
	APIKey string
	// Timeout bounds one call, within the caller's own deadline. Default DefaultTimeout.
	Timeout time.Duration
	// MaxIdleConns is how many idle keep-alive connections to the server are kept. Default
	// DefaultMaxIdleConns.
	MaxIdleConns int
	// HTTPClient replaces the client built from the settings above. Default none.
	HTTPClient *http.Client
}

// Client is a pipeline.ModelClient for one model on one server. It is safe for concurrent use.
type Client struct {
	url     string
	modelID string
	auth    string
	timeout time.Duration
	http    *http.Client
}

var _ pipeline.ModelClient = (*Client)(nil)

// New checks cfg and returns a Client. It makes no call.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("openai: base_url is required (e.g. https://api.openai.com/v1)")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("openai: base_url %q is not an http(s) URL (e.g. http://127.0.0.1:11434/v1)", cfg.BaseURL)
	case cfg.ModelID == "":
		return nil, errors.New("openai: model_id is required (e.g. gpt-4o-mini)")
	}
	c := &Client{
		url:     strings.TrimRight(cfg.BaseURL, "/") + "/chat/completions",
		modelID: cfg.ModelID,
		timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		http:    cfg.HTTPClient,
	}
	if cfg.APIKey != "" {
		c.auth = "Bearer " + cfg.APIKey
	}
	if c.http == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		idle := cmp.Or(cfg.MaxIdleConns, DefaultMaxIdleConns)
		t.MaxIdleConns, t.MaxIdleConnsPerHost = idle, idle
		c.http = &http.Client{Transport: t}
	}
	return c, nil
}

// chatRequest is the body of POST /chat/completions.
type chatRequest struct {
	Model       string        `json:"model"`
	Messages    []chatMessage `json:"messages"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	TopP        *float64      `json:"top_p,omitempty"`
	Stop        []string      `json:"stop,omitempty"`
	// Stream asks for server-sent events of chat.completion.chunk objects.
	Stream        bool           `json:"stream,omitempty"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// Invoke sends req as one chat completion. The model is the Client's ModelID (req.ModelID is
// ignored, so a request handed on to a fallback keeps each client's own model). A system
// prompt goes first as a "system" message. The W3C traceparent of ctx is sent along. When ctx
// carries a pipeline.Stream the call streams ("stream": true): the answer goes into the Stream
// as it arrives, and a stream that breaks is resumed with the text so far as the assistant's
// prefix (pipeline.RunStream). Every
// failure is a *pipeline.ModelError, except cancellation of ctx, which returns ctx's error.
func (c *Client) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	if st := pipeline.StreamFromContext(ctx); st != nil {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return pipeline.RunStream(ctx, st, pipeline.DefaultStreamResumes, func(ctx context.Context, prefix string, write func(string)) (pipeline.ModelResponse, error) {
			return c.stream(ctx, c.body(req, prefix), write)
		})
	}
	body := c.body(req, "")
	buf, err := json.Marshal(body)
	if err != nil {
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelInvalidRequest, Err: fmt.Errorf("encode the request: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.post(ctx, buf, "application/json")
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return pipeline.ModelResponse{}, c.transportError(ctx, fmt.Errorf("read the response: %w", err))
	}
	var out chatResponse
	if err := json.Unmarshal(data, &out); err != nil || len(out.Choices) == 0 {
		if err == nil {
			err = errors.New("no choices")
		}
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Status: resp.StatusCode,
			Err: fmt.Errorf("%s answered with a body that is not a chat completion (check base_url): %w", c.url, err)}
	}
	ch := out.Choices[0]
	return pipeline.ModelResponse{
		Text:       ch.Message.Content,
		Usage:      messages.Usage{InputTokens: out.Usage.PromptTokens, OutputTokens: out.Usage.CompletionTokens},
		StopReason: stopReason(ch.FinishReason),
	}, nil
}

// body is the chat request of req, with prefix, when not empty, as the assistant's last
// message for the model to continue.
func (c *Client) body(req pipeline.ModelRequest, prefix string) chatRequest {
	body := chatRequest{
		Model:       c.modelID,
		MaxTokens:   req.Params.MaxTokens,
		Temperature: req.Params.Temperature,
		TopP:        req.Params.TopP,
		Stop:        req.Params.Stop,
	}
	if req.System != "" {
		body.Messages = append(body.Messages, chatMessage{Role: "system", Content: req.System})
	}
	for _, m := range req.Messages {
		body.Messages = append(body.Messages, chatMessage{Role: cmp.Or(m.Role, "user"), Content: m.Content})
	}
	if prefix != "" {
		body.Messages = append(body.Messages, chatMessage{Role: "assistant", Content: prefix})
	}
	return body
}

// post sends one request body and returns a 2xx response, whose body the caller closes; any
// other answer is mapped to a *pipeline.ModelError.
func (c *Client) post(ctx context.Context, buf []byte, accept string) (*http.Response, error) {
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(buf))
	if err != nil {
		return nil, &pipeline.ModelError{Kind: pipeline.ModelInvalidRequest, Err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", accept)
	if c.auth != "" {
		hr.Header.Set("Authorization", c.auth)
	}
	if tp := pipeline.TraceparentFromContext(ctx); tp != "" {
		hr.Header.Set("traceparent", tp)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return nil, c.transportError(ctx, fmt.Errorf("read the response: %w", err))
		}
		return nil, statusError(resp, data)
	}
	return resp, nil
}

// stopReason maps OpenAI finish reasons to the Bedrock names the rest of infleet uses.
func stopReason(finish string) string {
	switch finish {
	case "stop", "":
		return "end_turn"
	case "length":
		return "max_tokens"
	case "content_filter":
		return "content_filtered"
	case "tool_calls", "function_call":
		return "tool_use"
	}
	return finish
}

// transportError maps a failure with no HTTP answer.
func (c *Client) transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("openai call to %s cancelled: %w", c.url, context.Canceled)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &pipeline.ModelError{Kind: pipeline.ModelTimeout, Err: fmt.Errorf("no answer from %s in time (raise the model's timeout or the job's deadline): %w", c.url, err)}
	}
	return &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: fmt.Errorf("cannot reach %s (is the server running?): %w", c.url, err)}
}

// statusError maps an HTTP error answer.
func statusError(resp *http.Response, data []byte) error {
	var eb errorBody
	_ = json.Unmarshal(data, &eb)
	msg := eb.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
	}
	code := ""
	switch v := eb.Error.Code.(type) {
	case string:
		code = v
	case float64:
		code = strconv.FormatFloat(v, 'f', -1, 64)
	}
	lower := strings.ToLower(msg)
	e := &pipeline.ModelError{Status: resp.StatusCode, Err: fmt.Errorf("%s", cmp.Or(msg, http.StatusText(resp.StatusCode)))}
	if code != "" {
		e.Err = fmt.Errorf("%s: %s", code, e.Err)
	}
	switch {
	case code == "context_length_exceeded" || contextOverflow(lower):
		e.Kind = pipeline.ModelContextOverflow
	case code == "model_not_ready" || (resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(lower, "loading")):
		e.Kind = pipeline.ModelNotReady
	case code == "insufficient_quota":
		e.Kind = pipeline.ModelAccessDenied
		e.Err = fmt.Errorf("%w (the account's quota is spent: check billing)", e.Err)
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = pipeline.ModelThrottled
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusGatewayTimeout:
		e.Kind = pipeline.ModelTimeout
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Kind = pipeline.ModelAccessDenied
		e.Err = fmt.Errorf("%w (check the API key in the model's api_key_env variable)", e.Err)
	case resp.StatusCode == http.StatusNotFound:
		e.Kind = pipeline.ModelNotFound
		e.Err = fmt.Errorf("%w (check the model's base_url and model_id)", e.Err)
	case resp.StatusCode >= 500:
		e.Kind = pipeline.ModelUnavailable
	default:
		e.Kind = pipeline.ModelInvalidRequest
	}
	e.RetryAfter = RetryAfter(resp.Header, time.Now())
	return e
}

// contextOverflow reports whether a lower-cased error message says the input is longer than
// the model's context (OpenAI, vLLM, llama.cpp and Ollama phrasings).
func contextOverflow(msg string) bool {
	for _, s := range []string{"maximum context length", "context length", "context window", "context size", "context_length", "exceeds the context", "too many tokens", "input is too long"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// RetryAfter reads the wait a server asked for: retry-after-ms (milliseconds), else
// Retry-After in seconds or as an HTTP date, relative to now. It returns 0 when there is none.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	return retryafter.FromHeader(h, now, "Retry-After-Ms")
}
