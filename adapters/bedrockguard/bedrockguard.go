// Package bedrockguard is a pipeline.Guard backed by Amazon Bedrock Guardrails through the
// ApplyGuardrail API: a guardrail configured in Bedrock (topics, content filters, words,
// sensitive information, contextual grounding) checks job input and model output, and its
// assessments are reported in infleet's provider-neutral shape.
package bedrockguard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/infleet/infleet/adapters/internal/awsconf"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Defaults.
const (
	// DefaultVersion is the guardrail version used when none is configured.
	DefaultVersion = "DRAFT"
	// DefaultTimeout bounds one ApplyGuardrail call.
	DefaultTimeout = 10 * time.Second
	// DefaultEmulatorRegion is the region signed for when only an endpoint is given.
	DefaultEmulatorRegion = "us-east-1"
)

// Policy names reported in assessments, matching package guard's where the policy is the same.
const (
	PolicySensitive = "sensitive_information"
	PolicyTopic     = "denied_topic"
	PolicyWord      = "word"
	PolicyContent   = "content_filter"
	PolicyGrounding = "contextual_grounding"
)

// Config configures a Guard.
type Config struct {
	// GuardrailID is the guardrail's identifier or ARN. Required.
	GuardrailID string
	// GuardrailVersion is a version number or DRAFT. Default DRAFT.
	GuardrailVersion string
	// Region of Bedrock. Default: the AWS configuration's (AWS_REGION).
	Region string
	// Endpoint overrides the Bedrock runtime endpoint (emulators). Default none.
	Endpoint string
	// Credentials overrides the AWS credentials chain. Default the chain.
	Credentials aws.CredentialsProvider
	// AWS, when set, is the SDK configuration to start from: the process's own, shared by its
	// AWS clients and loaded once. Default nil: the SDK's default chain is loaded here.
	AWS *aws.Config
	// Timeout bounds one call. Default 10s.
	Timeout time.Duration
}

// Guard applies a Bedrock guardrail. It is safe for concurrent use.
type Guard struct {
	api     *bedrockruntime.Client
	id, ver string
	timeout time.Duration
}

var (
	_ pipeline.Guard        = (*Guard)(nil)
	_ pipeline.ContextGuard = (*Guard)(nil)
)

// New checks cfg, loads the AWS configuration and returns a Guard. It makes no call to Bedrock.
func New(ctx context.Context, cfg Config) (*Guard, error) {
	if cfg.GuardrailID == "" {
		return nil, errors.New("bedrockguard: guardrail_id is required (the identifier or ARN of a guardrail in Amazon Bedrock)")
	}
	awsCfg, err := awsconf.Resolve(ctx, awsconf.Options{Base: cfg.AWS, Region: cfg.Region, Credentials: cfg.Credentials, Endpoint: cfg.Endpoint})
	if errors.Is(err, awsconf.ErrNoRegion) {
		return nil, errors.New("bedrockguard: no AWS region: set the guardrail's region or AWS_REGION")
	}
	if err != nil {
		return nil, fmt.Errorf("bedrockguard: load the AWS configuration (check AWS_PROFILE and ~/.aws/config): %w", err)
	}
	client := bedrockruntime.NewFromConfig(awsCfg, func(o *bedrockruntime.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Guard{api: client, id: cfg.GuardrailID, ver: cmp.Or(cfg.GuardrailVersion, DefaultVersion),
		timeout: cmp.Or(cfg.Timeout, DefaultTimeout)}, nil
}

// Check applies the guardrail to texts; see CheckWithContext.
func (g *Guard) Check(ctx context.Context, stage pipeline.GuardStage, texts []string) (pipeline.GuardOutcome, error) {
	return g.CheckWithContext(ctx, stage, texts, pipeline.GuardContext{})
}

// CheckWithContext applies the guardrail to each text with one ApplyGuardrail call (source
// INPUT or OUTPUT by stage). On output, a job's context and question go along as the grounding
// source and query, so the guardrail's contextual grounding policy can score the answer.
// Texts the guardrail masked come back masked; when it blocks, Reason is the guardrail's
// blocked message. Errors are Bedrock's (throttling, access, a missing guardrail), wrapped.
func (g *Guard) CheckWithContext(ctx context.Context, stage pipeline.GuardStage, texts []string, jc pipeline.GuardContext) (pipeline.GuardOutcome, error) {
	res := pipeline.GuardOutcome{Texts: make([]string, len(texts))}
	source := types.GuardrailContentSourceInput
	if stage == pipeline.GuardOutput {
		source = types.GuardrailContentSourceOutput
	}
	for i, text := range texts {
		content := []types.GuardrailContentBlock{}
		if stage == pipeline.GuardOutput && jc.Context != "" {
			content = append(content, textBlock(jc.Context, types.GuardrailContentQualifierGroundingSource))
			if jc.Question != "" {
				content = append(content, textBlock(jc.Question, types.GuardrailContentQualifierQuery))
			}
			content = append(content, textBlock(text, types.GuardrailContentQualifierGuardContent))
		} else {
			content = append(content, textBlock(text))
		}
		callCtx, cancel := context.WithTimeout(ctx, g.timeout)
		out, err := g.api.ApplyGuardrail(callCtx, &bedrockruntime.ApplyGuardrailInput{
			GuardrailIdentifier: aws.String(g.id),
			GuardrailVersion:    aws.String(g.ver),
			Source:              source,
			Content:             content,
		})
		cancel()
		if err != nil {
			return res, fmt.Errorf("bedrock guardrail %s version %s: %w", g.id, g.ver, err)
		}
		res.Texts[i] = text
		blocked := false
		for _, a := range out.Assessments {
			for _, as := range convert(a) {
				blocked = blocked || as.Action == messages.GuardActionBlocked
				res.Assessments = append(res.Assessments, as)
			}
		}
		var outText []string
		for _, o := range out.Outputs {
			outText = append(outText, aws.ToString(o.Text))
		}
		if out.Action == types.GuardrailActionGuardrailIntervened {
			if blocked || len(outText) == 0 {
				res.Blocked = true
				if res.Reason == "" {
					res.Reason = cmp.Or(strings.Join(outText, "\n"), "blocked by the Bedrock guardrail "+g.id)
				}
			} else {
				res.Texts[i] = strings.Join(outText, "")
			}
		}
	}
	if res.Blocked {
		res.Texts = texts
	}
	return res, nil
}

func textBlock(text string, q ...types.GuardrailContentQualifier) types.GuardrailContentBlock {
	return &types.GuardrailContentBlockMemberText{Value: types.GuardrailTextBlock{Text: aws.String(text), Qualifiers: q}}
}

// convert turns one Bedrock assessment into infleet's, one per policy and type, with matches
// counted and the strongest action kept.
func convert(a types.GuardrailAssessment) []messages.Assessment {
	var out []messages.Assessment
	add := func(policy, typ, action string) {
		action = normalize(action)
		for i := range out {
			if out[i].Policy == policy && out[i].Type == typ {
				out[i].Matches++
				if rank(action) > rank(out[i].Action) {
					out[i].Action = action
				}
				return
			}
		}
		out = append(out, messages.Assessment{Policy: policy, Type: typ, Matches: 1, Action: action})
	}
	if p := a.SensitiveInformationPolicy; p != nil {
		for _, e := range p.PiiEntities {
			add(PolicySensitive, string(e.Type), string(e.Action))
		}
		for _, r := range p.Regexes {
			add(PolicySensitive, aws.ToString(r.Name), string(r.Action))
		}
	}
	if p := a.TopicPolicy; p != nil {
		for _, t := range p.Topics {
			add(PolicyTopic, aws.ToString(t.Name), string(t.Action))
		}
	}
	if p := a.WordPolicy; p != nil {
		for _, w := range p.CustomWords {
			add(PolicyWord, "CUSTOM_WORD", string(w.Action))
		}
		for _, w := range p.ManagedWordLists {
			add(PolicyWord, string(w.Type), string(w.Action))
		}
	}
	if p := a.ContentPolicy; p != nil {
		for _, f := range p.Filters {
			add(PolicyContent, string(f.Type), string(f.Action))
		}
	}
	if p := a.ContextualGroundingPolicy; p != nil {
		for _, f := range p.Filters {
			add(PolicyGrounding, string(f.Type), string(f.Action))
		}
	}
	return out
}

// normalize maps Bedrock's actions onto infleet's three.
func normalize(action string) string {
	switch action {
	case "BLOCKED":
		return messages.GuardActionBlocked
	case "ANONYMIZED":
		return messages.GuardActionAnonymized
	}
	return messages.GuardActionNone
}

func rank(action string) int {
	switch action {
	case messages.GuardActionBlocked:
		return 2
	case messages.GuardActionAnonymized:
		return 1
	}
	return 0
}
