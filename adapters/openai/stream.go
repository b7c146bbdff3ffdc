package openai

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// maxEventLine bounds one line of a streamed answer.
const maxEventLine = 1 << 20

// chatChunk is one chat.completion.chunk event, or an error event some servers send.
type chatChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// errStreamCut is a stream that ended before its finish reason and [DONE].
var errStreamCut = errors.New("the event stream ended before the answer did")

// stream makes one chat completion with "stream": true, passing each content delta to write.
// A stream that breaks is an error, also when some text came.
func (c *Client) stream(ctx context.Context, body chatRequest, write func(string)) (pipeline.ModelResponse, error) {
	body.Stream, body.StreamOptions = true, &streamOptions{IncludeUsage: true}
	buf, err := json.Marshal(body)
	if err != nil {
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelInvalidRequest, Err: fmt.Errorf("encode the request: %w", err)}
	}
	resp, err := c.post(ctx, buf, "text/event-stream")
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	defer resp.Body.Close()
	var out pipeline.ModelResponse
	finished, done := false, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	for !done && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue // comments, event names, ids and blank lines
		}
		data = strings.TrimPrefix(data, " ")
		if data == "[DONE]" {
			done = true
			continue
		}
		var ch chatChunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return out, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Status: resp.StatusCode,
				Err: fmt.Errorf("%s streamed an event that is not a chat completion chunk (check base_url): %w", c.url, err)}
		}
		if ch.Error != nil {
			return out, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Status: resp.StatusCode, Err: fmt.Errorf("%s: %s", c.url, ch.Error.Message)}
		}
		for _, choice := range ch.Choices {
			if choice.Delta.Content != "" {
				write(choice.Delta.Content)
			}
			if choice.FinishReason != nil && *choice.FinishReason != "" {
				out.StopReason, finished = stopReason(*choice.FinishReason), true
			}
		}
		if ch.Usage != nil {
			out.Usage = messages.Usage{InputTokens: ch.Usage.PromptTokens, OutputTokens: ch.Usage.CompletionTokens}
		}
	}
	if err := sc.Err(); err != nil {
		return out, c.transportError(ctx, fmt.Errorf("read the event stream: %w", err))
	}
	if !finished && !done {
		if ctx.Err() != nil {
			return out, c.transportError(ctx, ctx.Err())
		}
		return out, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: fmt.Errorf("%s: %w", c.url, errStreamCut)}
	}
	return out, nil
}
