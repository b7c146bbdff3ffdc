package bedrock

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsbedrock "github.com/aws/aws-sdk-go-v2/service/bedrock"
	bedrocktypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/infleet/infleet/adapters/internal/awsconf"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
)

// BatchConfig says how to reach Bedrock's batch inference (model invocation jobs) and the S3
// bucket of their input and output.
type BatchConfig struct {
	// S3 reads and writes the batches' JSONL. Required.
	S3 *s3.Client
	// RoleARN is the service role Bedrock reads the input and writes the output with. Required.
	RoleARN string
	// Region and Endpoint of the Bedrock control plane, as a model's Config has them.
	Region, Endpoint string
	// MaxTokens is the max_tokens of records whose request sets none. Default DefaultMaxTokens.
	MaxTokens int
	// TimeoutHours is the job's timeoutDurationInHours. Default 24 (Bedrock's).
	TimeoutHours int
	// AWS is the process's SDK configuration to start from; nil loads the default chain.
	AWS *aws.Config
}

// BatchJobs is a batchinf.Provider on Amazon Bedrock: each record's modelInput is the
// Anthropic messages body of InvokeModel (Bedrock's batch inference takes the model's native
// InvokeModel body). It is safe for concurrent use.
type BatchJobs struct {
	api       *awsbedrock.Client
	s3        *s3.Client
	role      string
	maxTokens int
	hours     int
}

var _ batchinf.Provider = (*BatchJobs)(nil)

// NewBatchJobs checks cfg and returns a BatchJobs. It makes no call.
func NewBatchJobs(ctx context.Context, cfg BatchConfig) (*BatchJobs, error) {
	if cfg.S3 == nil || cfg.RoleARN == "" {
		return nil, errors.New("bedrock batch inference: an S3 client and a role ARN (batch_inference.role_arn) are required")
	}
	awsCfg, err := awsconf.Resolve(ctx, awsconf.Options{Base: cfg.AWS, Region: cfg.Region, Endpoint: cfg.Endpoint})
	if errors.Is(err, awsconf.ErrNoRegion) {
		return nil, errors.New("bedrock batch inference: no AWS region: set the model's region or AWS_REGION")
	}
	if err != nil {
		return nil, fmt.Errorf("bedrock batch inference: load the AWS configuration: %w", err)
	}
	api := awsbedrock.NewFromConfig(awsCfg, func(o *awsbedrock.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &BatchJobs{api: api, s3: cfg.S3, role: cfg.RoleARN, maxTokens: cmp.Or(cfg.MaxTokens, DefaultMaxTokens), hours: cfg.TimeoutHours}, nil
}

// batchLine is one JSONL line of a batch's input or output.
type batchLine struct {
	RecordID    string          `json:"recordId"`
	ModelInput  json.RawMessage `json:"modelInput"`
	ModelOutput json.RawMessage `json:"modelOutput,omitempty"`
	Error       *struct {
		ErrorCode    int    `json:"errorCode"`
		ErrorMessage string `json:"errorMessage"`
	} `json:"error,omitempty"`
}

// splitURI splits s3://bucket/key.
func splitURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/key URI", uri)
	}
	return bucket, key, nil
}

// WriteInput implements batchinf.Provider: one {recordId, modelInput} line per record.
func (j *BatchJobs) WriteInput(ctx context.Context, uri string, records []batchinf.Record) error {
	bucket, key, err := splitURI(uri)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range records {
		system, turns := split(r.Request)
		p := r.Request.Params
		body := anthropicRequest{
			AnthropicVersion: AnthropicVersion, MaxTokens: cmp.Or(p.MaxTokens, j.maxTokens),
			System: strings.Join(system, "\n\n"), Temperature: p.Temperature, TopP: p.TopP, StopSequences: p.Stop,
		}
		for _, m := range turns {
			body.Messages = append(body.Messages, anthropicMessage(m))
		}
		in, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode record %s: %w", r.ID, err)
		}
		line, err := json.Marshal(batchLine{RecordID: r.ID, ModelInput: in})
		if err != nil {
			return fmt.Errorf("encode record %s: %w", r.ID, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if _, err := j.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentType: aws.String("application/jsonl")}); err != nil {
		return fmt.Errorf("write batch input %s: %w", uri, err)
	}
	return nil
}

// Create implements batchinf.Provider with CreateModelInvocationJob, named infleet-{batch id}
// with the batch id as client request token.
func (j *BatchJobs) Create(ctx context.Context, b pipeline.Batch) (string, error) {
	in := &awsbedrock.CreateModelInvocationJobInput{
		JobName: aws.String("infleet-" + b.ID), ClientRequestToken: aws.String(b.ID),
		ModelId: aws.String(b.ModelID), RoleArn: aws.String(j.role),
		InputDataConfig: &bedrocktypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: bedrocktypes.ModelInvocationJobS3InputDataConfig{
			S3Uri: aws.String(b.InputURI), S3InputFormat: bedrocktypes.S3InputFormatJsonl}},
		OutputDataConfig: &bedrocktypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{Value: bedrocktypes.ModelInvocationJobS3OutputDataConfig{
			S3Uri: aws.String(b.OutputURI)}},
	}
	if j.hours > 0 {
		in.TimeoutDurationInHours = aws.Int32(int32(j.hours))
	}
	out, err := j.api.CreateModelInvocationJob(ctx, in)
	if err != nil {
		return "", (&Client{modelID: b.ModelID}).mapError(ctx, err)
	}
	return aws.ToString(out.JobArn), nil
}

// Status implements batchinf.Provider with GetModelInvocationJob.
func (j *BatchJobs) Status(ctx context.Context, arn string) (string, string, error) {
	out, err := j.api.GetModelInvocationJob(ctx, &awsbedrock.GetModelInvocationJobInput{JobIdentifier: aws.String(arn)})
	if err != nil {
		return "", "", fmt.Errorf("get model invocation job %s: %w", arn, err)
	}
	return string(out.Status), aws.ToString(out.Message), nil
}

// ReadOutput implements batchinf.Provider: the {output}/{job id}/{input name}.out object, read
// line by line; a line with modelOutput is an answer, one with error (or an unreadable
// modelOutput) a failed record.
func (j *BatchJobs) ReadOutput(ctx context.Context, b pipeline.Batch) (map[string]batchinf.Output, error) {
	bucket, prefix, err := splitURI(b.OutputURI)
	if err != nil {
		return nil, err
	}
	_, inKey, err := splitURI(b.InputURI)
	if err != nil {
		return nil, err
	}
	key := path.Join(prefix, path.Base(b.ARN), path.Base(inKey)+".out")
	obj, err := j.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("read batch output s3://%s/%s: %w", bucket, key, err)
	}
	defer obj.Body.Close()
	return readOutput(obj.Body)
}

func readOutput(r io.Reader) (map[string]batchinf.Output, error) {
	out := map[string]batchinf.Output{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line batchLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.RecordID == "" {
			continue // a line without its record id answers nothing: its job runs on demand
		}
		if line.Error != nil || len(line.ModelOutput) == 0 {
			msg := "no modelOutput"
			if line.Error != nil {
				msg = fmt.Sprintf("error %d: %s", line.Error.ErrorCode, line.Error.ErrorMessage)
			}
			out[line.RecordID] = batchinf.Output{Err: errors.New(msg)}
			continue
		}
		var ar anthropicResponse
		if err := json.Unmarshal(line.ModelOutput, &ar); err != nil {
			out[line.RecordID] = batchinf.Output{Err: fmt.Errorf("modelOutput is not an Anthropic message: %w", err)}
			continue
		}
		var parts []string
		for _, c := range ar.Content {
			if c.Type == "text" {
				parts = append(parts, c.Text)
			}
		}
		out[line.RecordID] = batchinf.Output{Response: pipeline.ModelResponse{
			Text: strings.Join(parts, ""), StopReason: ar.StopReason,
			Usage: messages.Usage{InputTokens: ar.Usage.InputTokens, OutputTokens: ar.Usage.OutputTokens},
		}}
	}
	return out, sc.Err()
}
