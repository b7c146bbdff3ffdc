// Package bedrock calls models on Amazon Bedrock through aws-sdk-go-v2's bedrockruntime, as a
// pipeline.ModelClient: the Converse API for any model, or InvokeModel with the Anthropic
// messages body. The SDK's own retries are off, so that the pipeline's retry loop is the only
// one; every failure is mapped to a *pipeline.ModelError.
package bedrock

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/infleet/infleet/adapters/internal/awsconf"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// The APIs a Client can call (Config.API).
const (
	APIConverse    = "converse"
	APIInvokeModel = "invoke_model"
)

// AnthropicVersion is the anthropic_version of InvokeModel bodies.
const AnthropicVersion = "bedrock-2023-05-31"

// Defaults of Config.
const (
	DefaultAPI     = APIConverse
	DefaultTimeout = 60 * time.Second
	// DefaultMaxTokens is the max_tokens of an InvokeModel call whose request sets none (the
	// Anthropic body requires one).
	DefaultMaxTokens = 4096
	// DefaultEmulatorRegion signs requests to a custom Endpoint when no region is configured.
	DefaultEmulatorRegion = "us-east-1"
	// DefaultMaxIdleConns is how many idle connections to the endpoint are kept.
	DefaultMaxIdleConns = 128
)

// Config says how to reach one model.
type Config struct {
	// ModelID is a model id (anthropic.claude-...), an inference profile id (eu.anthropic...,
	// us.anthropic...) or a provisioned-throughput or inference-profile ARN. Required.
	ModelID string
	// API is converse or invoke_model (Anthropic messages body). Default converse.
	API string
	// Region of the endpoint. Default: the SDK's chain (AWS_REGION, profile); us-east-1 when
	// Endpoint is set and the chain has none.
	Region string
	// Endpoint replaces the regional endpoint (an emulator such as fmsim). Default none.
	Endpoint string
	// Timeout bounds one call, within the caller's own deadline. Default DefaultTimeout.
	Timeout time.Duration
	// MaxTokens is the max_tokens of InvokeModel calls whose request sets none. Default
	// DefaultMaxTokens.
	MaxTokens int
	// MaxIdleConns is how many idle keep-alive connections are kept. Default DefaultMaxIdleConns.
	MaxIdleConns int
	// Credentials replaces the SDK's credential chain. Default none: the chain (environment,
	// profile, SSO, instance role).
	Credentials aws.CredentialsProvider
	// AWS, when set, is the SDK configuration to start from: the process's own, shared by its
	// AWS clients and loaded once. Default nil: the SDK's default chain is loaded here.
	AWS *aws.Config
}

// Client is a pipeline.ModelClient for one Bedrock model. It is safe for concurrent use.
type Client struct {
	api       *bedrockruntime.Client
	modelID   string
	invoke    bool
	timeout   time.Duration
	maxTokens int
}

var _ pipeline.ModelClient = (*Client)(nil)

// New checks cfg, loads the AWS configuration (region and credentials chain) and returns a
// Client. It makes no call to Bedrock.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.ModelID == "" {
		return nil, errors.New("bedrock: model_id is required (e.g. anthropic.claude-sonnet-4-20250514-v1:0, an inference profile such as eu.anthropic..., or an ARN)")
	}
	api := cmp.Or(cfg.API, DefaultAPI)
	if api != APIConverse && api != APIInvokeModel {
		return nil, fmt.Errorf("bedrock: api %q is not known (use converse or invoke_model)", cfg.API)
	}
	awsCfg, err := awsconf.Resolve(ctx, awsconf.Options{Base: cfg.AWS, Region: cfg.Region, Credentials: cfg.Credentials, Endpoint: cfg.Endpoint})
	if errors.Is(err, awsconf.ErrNoRegion) {
		return nil, errors.New("bedrock: no AWS region: set the model's region or AWS_REGION")
	}
	if err != nil {
		return nil, fmt.Errorf("bedrock: load the AWS configuration (check AWS_PROFILE and ~/.aws/config): %w", err)
	}
	idle := cmp.Or(cfg.MaxIdleConns, DefaultMaxIdleConns)
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = idle, idle
	})
	client := bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = httpClient
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.APIOptions = append(o.APIOptions, addTraceparent)
	})
	return &Client{
		api:       client,
		modelID:   cfg.ModelID,
		invoke:    api == APIInvokeModel,
		timeout:   cmp.Or(cfg.Timeout, DefaultTimeout),
		maxTokens: cmp.Or(cfg.MaxTokens, DefaultMaxTokens),
	}, nil
}

// addTraceparent sends the W3C traceparent of the call's context.
func addTraceparent(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("InfleetTraceparent",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				if tp := pipeline.TraceparentFromContext(ctx); tp != "" {
					req.Header.Set("traceparent", tp)
				}
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// Invoke calls the model once. The model is the Client's ModelID (req.ModelID is ignored, so a
// request handed on to a fallback keeps each client's own model). Messages with role "system"
// join req.System as the system prompt. When ctx carries a pipeline.Stream and the API is
// converse, the call is ConverseStream: the answer goes into the Stream as it arrives, and a
// stream that breaks is resumed with the text so far as the assistant's prefix
// (pipeline.RunStream); invoke_model calls are not streamed. Every failure is a *pipeline.ModelError, except
// cancellation of ctx, which returns ctx's error.
func (c *Client) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	system, turns := split(req)
	var resp pipeline.ModelResponse
	var err error
	switch st := pipeline.StreamFromContext(ctx); {
	case c.invoke:
		resp, err = c.invokeModel(ctx, system, turns, req.Params)
	case st != nil:
		resp, err = pipeline.RunStream(ctx, st, pipeline.DefaultStreamResumes, func(ctx context.Context, prefix string, write func(string)) (pipeline.ModelResponse, error) {
			resp, err := c.converseStream(ctx, system, withPrefix(turns, prefix), req.Params, write)
			if err != nil {
				err = c.mapError(ctx, err)
			}
			return resp, err
		})
		if err != nil {
			return pipeline.ModelResponse{}, err
		}
	default:
		resp, err = c.converse(ctx, system, turns, req.Params)
	}
	if err != nil {
		return pipeline.ModelResponse{}, c.mapError(ctx, err)
	}
	return resp, nil
}

// split separates the system prompt from the conversation. Roles other than assistant and
// system count as user, and consecutive turns of one role are joined, since Bedrock wants
// the roles to alternate.
func split(req pipeline.ModelRequest) (system []string, turns []messages.ChatMessage) {
	if req.System != "" {
		system = append(system, req.System)
	}
	for _, m := range req.Messages {
		role := "user"
		switch m.Role {
		case "system":
			system = append(system, m.Content)
			continue
		case "assistant":
			role = "assistant"
		}
		if n := len(turns); n > 0 && turns[n-1].Role == role {
			turns[n-1].Content += "\n\n" + m.Content
			continue
		}
		turns = append(turns, messages.ChatMessage{Role: role, Content: m.Content})
	}
	return system, turns
}

// converseInput is the system prompt, conversation and inference settings of a Converse or
// ConverseStream call.
func converseInput(system []string, turns []messages.ChatMessage, p messages.Params) ([]types.SystemContentBlock, []types.Message, *types.InferenceConfiguration) {
	var sys []types.SystemContentBlock
	for _, s := range system {
		sys = append(sys, &types.SystemContentBlockMemberText{Value: s})
	}
	var msgs []types.Message
	for _, m := range turns {
		msgs = append(msgs, types.Message{
			Role:    types.ConversationRole(m.Role),
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: m.Content}},
		})
	}
	if p.MaxTokens <= 0 && p.Temperature == nil && p.TopP == nil && len(p.Stop) == 0 {
		return sys, msgs, nil
	}
	ic := &types.InferenceConfiguration{StopSequences: p.Stop}
	if p.MaxTokens > 0 {
		ic.MaxTokens = aws.Int32(int32(min(p.MaxTokens, 1<<31-1)))
	}
	if p.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*p.Temperature))
	}
	if p.TopP != nil {
		ic.TopP = aws.Float32(float32(*p.TopP))
	}
	return sys, msgs, ic
}

func (c *Client) converse(ctx context.Context, system []string, turns []messages.ChatMessage, p messages.Params) (pipeline.ModelResponse, error) {
	in := &bedrockruntime.ConverseInput{ModelId: aws.String(c.modelID)}
	in.System, in.Messages, in.InferenceConfig = converseInput(system, turns, p)
	out, err := c.api.Converse(ctx, in)
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	var resp pipeline.ModelResponse
	if msg, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
		var parts []string
		for _, b := range msg.Value.Content {
			if t, ok := b.(*types.ContentBlockMemberText); ok {
				parts = append(parts, t.Value)
			}
		}
		resp.Text = strings.Join(parts, "")
	}
	resp.StopReason = string(out.StopReason)
	if u := out.Usage; u != nil {
		resp.Usage = messages.Usage{InputTokens: int(aws.ToInt32(u.InputTokens)), OutputTokens: int(aws.ToInt32(u.OutputTokens))}
	}
	return resp, nil
}

// anthropicRequest is the Anthropic messages body of InvokeModel.
type anthropicRequest struct {
	AnthropicVersion string             `json:"anthropic_version"`
	MaxTokens        int                `json:"max_tokens"`
	System           string             `json:"system,omitempty"`
	Messages         []anthropicMessage `json:"messages"`
	Temperature      *float64           `json:"temperature,omitempty"`
	TopP             *float64           `json:"top_p,omitempty"`
	StopSequences    []string           `json:"stop_sequences,omitempty"`
}

type anthropicMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type anthropicResponse struct {
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

func (c *Client) invokeModel(ctx context.Context, system []string, turns []messages.ChatMessage, p messages.Params) (pipeline.ModelResponse, error) {
	body := anthropicRequest{
		AnthropicVersion: AnthropicVersion,
		MaxTokens:        cmp.Or(p.MaxTokens, c.maxTokens),
		System:           strings.Join(system, "\n\n"),
		Temperature:      p.Temperature,
		TopP:             p.TopP,
		StopSequences:    p.Stop,
	}
	for _, m := range turns {
		body.Messages = append(body.Messages, anthropicMessage(m))
	}
	buf, err := json.Marshal(body)
	if err != nil {
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelInvalidRequest, Err: fmt.Errorf("encode the request: %w", err)}
	}
	out, err := c.api.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId:     aws.String(c.modelID),
		Body:        buf,
		ContentType: aws.String("application/json"),
		Accept:      aws.String("application/json"),
	})
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	var ar anthropicResponse
	if err := json.Unmarshal(out.Body, &ar); err != nil {
		return pipeline.ModelResponse{}, &pipeline.ModelError{Kind: pipeline.ModelUnavailable,
			Err: fmt.Errorf("model %s answered with a body that is not an Anthropic message (use api: converse for other model families): %w", c.modelID, err)}
	}
	var parts []string
	for _, b := range ar.Content {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return pipeline.ModelResponse{
		Text:       strings.Join(parts, ""),
		Usage:      messages.Usage{InputTokens: ar.Usage.InputTokens, OutputTokens: ar.Usage.OutputTokens},
		StopReason: ar.StopReason,
	}, nil
}
