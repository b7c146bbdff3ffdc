package bedrock

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// withPrefix returns turns with prefix as the assistant's last message, for the model to
// continue; turns itself when prefix is empty.
func withPrefix(turns []messages.ChatMessage, prefix string) []messages.ChatMessage {
	if prefix == "" {
		return turns
	}
	out := append([]messages.ChatMessage(nil), turns...)
	if n := len(out); n > 0 && out[n-1].Role == "assistant" {
		out[n-1].Content += prefix
		return out
	}
	return append(out, messages.ChatMessage{Role: "assistant", Content: prefix})
}

// errStreamCut is a ConverseStream that ended without its messageStop event.
var errStreamCut = errors.New("the response stream ended before the answer did")

// converseStream makes one ConverseStream call, passing each text delta to write. A stream
// that breaks is an error, also when some text came.
func (c *Client) converseStream(ctx context.Context, system []string, turns []messages.ChatMessage, p messages.Params, write func(string)) (pipeline.ModelResponse, error) {
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(c.modelID)}
	in.System, in.Messages, in.InferenceConfig = converseInput(system, turns, p)
	out, err := c.api.ConverseStream(ctx, in)
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	stream := out.GetStream()
	defer stream.Close()
	var resp pipeline.ModelResponse
	stopped := false
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if d, ok := e.Value.Delta.(*types.ContentBlockDeltaMemberText); ok && d.Value != "" {
				write(d.Value)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			resp.StopReason, stopped = string(e.Value.StopReason), true
		case *types.ConverseStreamOutputMemberMetadata:
			if u := e.Value.Usage; u != nil {
				resp.Usage = messages.Usage{InputTokens: int(aws.ToInt32(u.InputTokens)), OutputTokens: int(aws.ToInt32(u.OutputTokens))}
			}
		}
	}
	if err := stream.Err(); err != nil {
		return resp, err
	}
	if !stopped && ctx.Err() != nil {
		return resp, ctx.Err()
	}
	if !stopped {
		return resp, &pipeline.ModelError{Kind: pipeline.ModelUnavailable, Err: fmt.Errorf("model %s: %w", c.modelID, errStreamCut)}
	}
	return resp, nil
}
