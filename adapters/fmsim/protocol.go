package fmsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
)

// maxBody bounds a request body.
const maxBody = 32 << 20

// answerWords is how many words of the last message an answer repeats.
const answerWords = 12

// prompt is a call's input, whatever API it came on.
type prompt struct {
	system    string
	messages  []turn
	maxTokens int
}

type turn struct{ role, text string }

// inputTokens estimates the tokens of the input and the output asked for.
func (p prompt) inputTokens() int {
	n := countWords(p.system)
	for _, m := range p.messages {
		n += countWords(m.text)
	}
	return tokens(n) + max(p.maxTokens, 0)
}

// reply is a deterministic answer.
type reply struct {
	text       string
	in, out    int
	truncated  bool
	requestTag string
}

// stopReason is a's Bedrock stop reason (Converse and Anthropic messages alike).
func (a reply) stopReason() string {
	if a.truncated {
		return "max_tokens"
	}
	return "end_turn"
}

// finishReason is a's OpenAI finish reason.
func (a reply) finishReason() string {
	if a.truncated {
		return "length"
	}
	return "stop"
}

// converseBody is a as a Converse response body, without the metrics the runtime API adds.
// Converse and batch records answered as Converse both write it.
func converseBody(a reply) map[string]any {
	return map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": []any{map[string]string{"text": a.text}}}},
		"stopReason": a.stopReason(),
		"usage":      map[string]int{"inputTokens": a.in, "outputTokens": a.out, "totalTokens": a.in + a.out},
	}
}

// messagesBody is a, by model, as an Anthropic messages response body. InvokeModel and batch
// records answered as InvokeModel both write it.
func messagesBody(model string, a reply) map[string]any {
	return map[string]any{
		"id":            "msg_fmsim_" + a.requestTag,
		"type":          "message",
		"role":          "assistant",
		"model":         model,
		"content":       []any{map[string]string{"type": "text", "text": a.text}},
		"stop_reason":   a.stopReason(),
		"stop_sequence": nil,
		"usage":         map[string]int{"input_tokens": a.in, "output_tokens": a.out},
	}
}

// answer builds the deterministic reply of model to p: a short hash of the request and the
// first words of the last message, cut to maxTokens.
func answer(model string, p prompt) reply {
	h := uint64(14695981039346656037)
	write := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * 1099511628211
		}
		h = (h ^ 0xff) * 1099511628211
	}
	write(model)
	write(p.system)
	inWords := countWords(p.system)
	var last string
	for _, m := range p.messages {
		write(m.role)
		write(m.text)
		inWords += countWords(m.text)
		last = m.text
	}
	tag := strconv.FormatUint(h>>40, 16)
	words := strings.Fields(last)
	if len(words) > answerWords {
		words = append(words[:answerWords], "...")
	}
	text := "fmsim [" + tag + "]: " + strings.Join(words, " ")
	r := reply{text: text, in: tokens(inWords), out: tokens(countWords(text)), requestTag: tag}
	if p.maxTokens > 0 && r.out > p.maxTokens {
		keep := max(p.maxTokens*3/4, 1)
		f := strings.Fields(text)
		r.text = strings.Join(f[:min(keep, len(f))], " ")
		r.out = p.maxTokens
		r.truncated = true
	}
	return r
}

// tokens estimates the tokens of n words: 4 per 3, rounded up.
func tokens(n int) int { return (n*4 + 2) / 3 }

func countWords(s string) int { return len(strings.Fields(s)) }

// run decides and answers one call: it records the outcome, writes an error through fail, or
// waits out the latency and writes the answer through ok.
func (s *Server) run(w http.ResponseWriter, r *http.Request, api, model string, p prompt, fail func(decision), ok func(reply)) {
	defer s.traffic.enter(time.Now())()
	d := s.decide(model, p.inputTokens())
	switch d.outcome {
	case OutcomeOK:
	case OutcomeHang:
		s.record(api, model, OutcomeHang, r)
		if s.hang(r.Context()) {
			// Released by Close: answer as a server going away would, never with an empty 200.
			fail(decision{outcome: OutcomeOutage})
		}
		return
	default:
		s.record(api, model, d.outcome, r)
		fail(d)
		return
	}
	s.active.Add(1)
	waited := s.wait(r.Context(), d.delay)
	s.active.Add(-1)
	if !waited {
		s.record(api, model, OutcomeCancelled, r)
		if r.Context().Err() == nil {
			fail(decision{outcome: OutcomeOutage})
		}
		return
	}
	s.record(api, model, OutcomeOK, r)
	ok(s.reply(model, p))
}

// reply is fmsim's answer to p, however it came (a live call or a batch inference record):
// per item for a batched prompt, the topic's number for a classification prompt under
// Config.Classify, otherwise the deterministic echo of answer.
func (s *Server) reply(model string, p prompt) reply {
	if len(p.messages) > 0 {
		if items, isBatch := messages.ParseBatchPrompt(p.messages[len(p.messages)-1].text); isBatch {
			return s.answerBatch(model, p, items)
		}
	}
	if s.clf != nil && isClassification(p.system) && len(p.messages) > 0 {
		text := strconv.Itoa(s.clf.classify(p.system, p.messages[len(p.messages)-1].text))
		return reply{text: text, in: p.inputTokens() - max(p.maxTokens, 0), out: 1, requestTag: "clf"}
	}
	return answer(model, p)
}

// bedrockError writes an AWS REST-JSON error.
func bedrockError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("X-Amzn-RequestId", "fmsim")
	writeJSON(w, status, map[string]string{"message": msg})
}

func (s *Server) bedrockFail(w http.ResponseWriter, d decision) {
	switch d.outcome {
	case OutcomeThrottled:
		retryHeaders(w, d.retryAfter)
		bedrockError(w, http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again.")
	case OutcomeError:
		bedrockError(w, http.StatusInternalServerError, "InternalServerException", "An internal server error occurred. Retry your request.")
	case OutcomeNotReady:
		bedrockError(w, http.StatusTooManyRequests, "ModelNotReadyException", "Model is not ready to serve inference requests. Try again later.")
	case OutcomeModelTimeout:
		bedrockError(w, http.StatusRequestTimeout, "ModelTimeoutException", "Model has timed out in processing the request. Try your request again.")
	case OutcomeOutage:
		bedrockError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "Bedrock is unable to process your request.")
	case OutcomeContextOverflow:
		bedrockError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("Input is too long for requested model (context window %d tokens).", d.window))
	case OutcomeDenied:
		bedrockError(w, http.StatusForbidden, "AccessDeniedException", "You don't have access to the model with the specified model ID.")
	case OutcomeNotFound:
		bedrockError(w, http.StatusNotFound, "ResourceNotFoundException", "The provided model identifier is invalid.")
	default:
		bedrockError(w, http.StatusInternalServerError, "InternalServerException", "fmsim: unexpected outcome "+d.outcome)
	}
}

func retryHeaders(w http.ResponseWriter, after time.Duration) {
	secs := int64((after + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	w.Header().Set("X-Amz-Retry-After", strconv.FormatInt(after.Milliseconds(), 10))
	w.Header().Set("Retry-After-Ms", strconv.FormatInt(after.Milliseconds(), 10))
}

// converseRequest is the part of a Converse body fmsim reads.
type converseRequest struct {
	Messages []struct {
		Role    string `json:"role"`
		Content []struct {
			Text *string `json:"text"`
		} `json:"content"`
	} `json:"messages"`
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	InferenceConfig *struct {
		MaxTokens int `json:"maxTokens"`
	} `json:"inferenceConfig"`
}

// converseRequestPrompt reads a Converse or ConverseStream body.
func converseRequestPrompt(w http.ResponseWriter, r *http.Request) (prompt, error) {
	var req converseRequest
	if err := decodeBody(w, r, &req); err != nil {
		return prompt{}, err
	}
	return req.prompt()
}

// prompt checks a Converse body as Bedrock does (messages present, starting with the user and
// alternating roles, no empty text block) and returns what it asks.
func (req converseRequest) prompt() (prompt, error) {
	var p prompt
	var sys []string
	for _, b := range req.System {
		sys = append(sys, b.Text)
	}
	p.system = strings.Join(sys, "\n")
	if req.InferenceConfig != nil {
		p.maxTokens = req.InferenceConfig.MaxTokens
	}
	if len(req.Messages) == 0 {
		return p, fmt.Errorf("messages: must not be empty")
	}
	for i, m := range req.Messages {
		if (i == 0 && m.Role != "user") || (i > 0 && m.Role == req.Messages[i-1].Role) {
			return p, fmt.Errorf("a conversation must start with a user message and alternate between user and assistant roles")
		}
		var parts []string
		for _, c := range m.Content {
			if c.Text == nil || *c.Text == "" {
				return p, fmt.Errorf("messages.%d.content: text content blocks must be non-empty", i)
			}
			parts = append(parts, *c.Text)
		}
		p.messages = append(p.messages, turn{m.Role, strings.Join(parts, "\n")})
	}
	return p, nil
}

func (s *Server) converse(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("modelId")
	p, err := converseRequestPrompt(w, r)
	if err != nil {
		s.record(APIConverse, model, OutcomeBadRequest, r)
		bedrockError(w, http.StatusBadRequest, "ValidationException", "Malformed input request: "+err.Error())
		return
	}
	s.run(w, r, APIConverse, model, p, func(d decision) { s.bedrockFail(w, d) }, func(a reply) {
		body := converseBody(a)
		body["metrics"] = map[string]int64{"latencyMs": 0}
		writeJSON(w, http.StatusOK, body)
	})
}

// anthropicRequest is the Anthropic messages body of InvokeModel.
type anthropicRequest struct {
	AnthropicVersion string          `json:"anthropic_version"`
	MaxTokens        int             `json:"max_tokens"`
	System           json.RawMessage `json:"system"`
	Messages         []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// textOf reads Anthropic or OpenAI content: a string or an array of {"type":"text","text":...}.
func textOf(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return str, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or an array of text parts")
	}
	var out []string
	for _, p := range parts {
		if p.Type == "text" {
			out = append(out, p.Text)
		}
	}
	return strings.Join(out, "\n"), nil
}

func (s *Server) invoke(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("modelId")
	p, err := func() (prompt, error) {
		var req anthropicRequest
		if err := decodeBody(w, r, &req); err != nil {
			return prompt{}, err
		}
		if req.AnthropicVersion == "" {
			return prompt{}, fmt.Errorf("anthropic_version: required (bedrock-2023-05-31)")
		}
		return anthropicPrompt(req)
	}()
	if err != nil {
		s.record(APIInvoke, model, OutcomeBadRequest, r)
		bedrockError(w, http.StatusBadRequest, "ValidationException", "Malformed input request: "+err.Error())
		return
	}
	s.run(w, r, APIInvoke, model, p, func(d decision) { s.bedrockFail(w, d) }, func(a reply) {
		writeJSON(w, http.StatusOK, messagesBody(model, a))
	})
}

// chatRequest is the part of a chat-completions body fmsim reads.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	MaxTokens           int  `json:"max_tokens"`
	MaxCompletionTokens int  `json:"max_completion_tokens"`
	Stream              bool `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// openaiError writes an OpenAI error body.
func openaiError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

func (s *Server) chatFail(w http.ResponseWriter, d decision) {
	switch d.outcome {
	case OutcomeThrottled:
		retryHeaders(w, d.retryAfter)
		openaiError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached. Please try again later.")
	case OutcomeError:
		openaiError(w, http.StatusInternalServerError, "server_error", "internal_error", "The server had an error while processing your request.")
	case OutcomeNotReady:
		openaiError(w, http.StatusServiceUnavailable, "server_error", "model_not_ready", "The model is loading. Try again later.")
	case OutcomeModelTimeout:
		openaiError(w, http.StatusGatewayTimeout, "server_error", "timeout", "The model timed out processing the request.")
	case OutcomeOutage:
		openaiError(w, http.StatusServiceUnavailable, "server_error", "service_unavailable", "The server is overloaded or not ready yet.")
	case OutcomeContextOverflow:
		openaiError(w, http.StatusBadRequest, "invalid_request_error", "context_length_exceeded",
			fmt.Sprintf("This model's maximum context length is %d tokens. Please reduce the length of the messages.", d.window))
	case OutcomeDenied:
		openaiError(w, http.StatusForbidden, "invalid_request_error", "permission_denied", "You do not have access to this model.")
	case OutcomeNotFound:
		openaiError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it.")
	default:
		openaiError(w, http.StatusInternalServerError, "server_error", "internal_error", "fmsim: unexpected outcome "+d.outcome)
	}
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	p, err := func() (prompt, error) {
		if err := decodeBody(w, r, &req); err != nil {
			return prompt{}, err
		}
		var p prompt
		if req.Model == "" {
			return p, fmt.Errorf("model: required")
		}
		if len(req.Messages) == 0 {
			return p, fmt.Errorf("messages: must not be empty")
		}
		p.maxTokens = max(req.MaxTokens, req.MaxCompletionTokens)
		var sys []string
		for i, m := range req.Messages {
			t, err := textOf(m.Content)
			if err != nil {
				return p, fmt.Errorf("messages[%d].%w", i, err)
			}
			if m.Role == "system" || m.Role == "developer" {
				sys = append(sys, t)
				continue
			}
			p.messages = append(p.messages, turn{m.Role, t})
		}
		p.system = strings.Join(sys, "\n")
		return p, nil
	}()
	if s.key != "" && r.Header.Get("Authorization") != "Bearer "+s.key {
		s.record(APIChat, req.Model, OutcomeDenied, r)
		openaiError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.")
		return
	}
	if err != nil {
		s.record(APIChat, req.Model, OutcomeBadRequest, r)
		openaiError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	if req.Stream {
		s.chatStream(w, r, req, p)
		return
	}
	s.run(w, r, APIChat, req.Model, p, func(d decision) { s.chatFail(w, d) }, func(a reply) {
		writeJSON(w, http.StatusOK, map[string]any{
			"id":      "chatcmpl-fmsim-" + a.requestTag,
			"object":  "chat.completion",
			"created": time.Now().Unix(),
			"model":   req.Model,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]string{"role": "assistant", "content": a.text},
				"finish_reason": a.finishReason(),
			}},
			"usage": map[string]int{"prompt_tokens": a.in, "completion_tokens": a.out, "total_tokens": a.in + a.out},
		})
	})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("body is not valid JSON for this API: %w", err)
	}
	return nil
}
