package fmsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrock"
	bedrocktypes "github.com/aws/aws-sdk-go-v2/service/bedrock/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/internal/awstest"
)

// invBundle is an fmsim with its control plane over a fresh bucket of the S3 emulator, and a
// real Bedrock control-plane client pointed at it.
type invBundle struct {
	sim    *fmsim.Server
	s3     *s3.Client
	bucket string
	client *bedrock.Client
}

func setupInvocations(t *testing.T, inv fmsim.Invocations) *invBundle {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	s3c := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		Credentials:                credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	bucket := "fmsim-batch-" + uuid.NewString()[:8]
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	inv.S3 = s3c
	sim := fmsim.New(fmsim.Config{Invocations: inv})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); srv.Close() })
	client := bedrock.New(bedrock.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return &invBundle{sim: sim, s3: s3c, bucket: bucket, client: client}
}

// putInput writes JSONL records of Anthropic messages bodies, one per text, and returns its URI.
func (b *invBundle) putInput(t *testing.T, key string, texts ...string) string {
	t.Helper()
	var buf bytes.Buffer
	for i, text := range texts {
		rec := map[string]any{"recordId": fmt.Sprintf("r%d", i), "modelInput": map[string]any{
			"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
			"messages": []any{map[string]any{"role": "user", "content": text}},
		}}
		line, _ := json.Marshal(rec)
		buf.Write(append(line, '\n'))
	}
	if _, err := b.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatalf("put input: %v", err)
	}
	return "s3://" + b.bucket + "/" + key
}

func (b *invBundle) create(t *testing.T, name, input, token string) string {
	t.Helper()
	out, err := b.client.CreateModelInvocationJob(context.Background(), &bedrock.CreateModelInvocationJobInput{
		JobName: aws.String(name), ModelId: aws.String("anthropic.claude-3-haiku"), RoleArn: aws.String("arn:aws:iam::000000000000:role/batch"),
		ClientRequestToken: aws.String(token),
		InputDataConfig:    &bedrocktypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: bedrocktypes.ModelInvocationJobS3InputDataConfig{S3Uri: aws.String(input)}},
		OutputDataConfig:   &bedrocktypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{Value: bedrocktypes.ModelInvocationJobS3OutputDataConfig{S3Uri: aws.String("s3://" + b.bucket + "/out/")}},
	})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return aws.ToString(out.JobArn)
}

// waitEnd polls GetModelInvocationJob until the job leaves Submitted/InProgress/Stopping.
func (b *invBundle) waitEnd(t *testing.T, arn string) *bedrock.GetModelInvocationJobOutput {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := b.client.GetModelInvocationJob(context.Background(), &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String(arn)})
		if err != nil {
			t.Fatalf("get %s: %v", arn, err)
		}
		switch got.Status {
		case bedrocktypes.ModelInvocationJobStatusSubmitted, bedrocktypes.ModelInvocationJobStatusInProgress, bedrocktypes.ModelInvocationJobStatusStopping:
		default:
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after 20s", arn, got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInvocationJobAnswersRecordsFromS3(t *testing.T) {
	t.Parallel()
	b := setupInvocations(t, fmsim.Invocations{Delay: 300 * time.Millisecond, FailRecordsMatching: "poison"})
	input := b.putInput(t, "in/batch.jsonl", "summarize the first ticket", "a poison record", "tag the third line")
	arn := b.create(t, "job-a", input, "token-a")
	if again := b.create(t, "job-a", input, "token-a"); again != arn {
		t.Errorf("a retried create with the same client token made %s, want %s", again, arn)
	}

	got, err := b.client.GetModelInvocationJob(context.Background(), &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String(arn)})
	if err != nil || (got.Status != bedrocktypes.ModelInvocationJobStatusInProgress && got.Status != bedrocktypes.ModelInvocationJobStatusSubmitted) {
		t.Fatalf("right after create: status %v, err %v; want InProgress for the delay", got.Status, err)
	}
	end := b.waitEnd(t, arn)
	if end.Status != bedrocktypes.ModelInvocationJobStatusCompleted || end.EndTime == nil || aws.ToString(end.ModelId) != "anthropic.claude-3-haiku" {
		t.Fatalf("end: status %s, end time %v, model %s; want Completed", end.Status, end.EndTime, aws.ToString(end.ModelId))
	}
	if aws.ToInt64(end.SuccessRecordCount) != 2 || aws.ToInt64(end.ErrorRecordCount) != 1 {
		t.Errorf("records: %d succeeded, %d failed; want 2 and 1", aws.ToInt64(end.SuccessRecordCount), aws.ToInt64(end.ErrorRecordCount))
	}

	id := arn[strings.LastIndex(arn, "/")+1:]
	obj, err := b.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String("out/" + id + "/batch.jsonl.out")})
	if err != nil {
		t.Fatalf("read output: %v", err)
	}
	body, _ := io.ReadAll(obj.Body)
	_ = obj.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 3 {
		t.Fatalf("output has %d lines, want 3:\n%s", len(lines), body)
	}
	for i, line := range lines {
		var rec struct {
			RecordID    string `json:"recordId"`
			ModelOutput *struct {
				Content []struct{ Text string } `json:"content"`
				Usage   struct {
					InputTokens int `json:"input_tokens"`
				} `json:"usage"`
			} `json:"modelOutput"`
			Error *struct {
				ErrorCode    int    `json:"errorCode"`
				ErrorMessage string `json:"errorMessage"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if rec.RecordID != fmt.Sprintf("r%d", i) {
			t.Errorf("line %d has record id %q", i, rec.RecordID)
		}
		if i == 1 {
			if rec.Error == nil || rec.ModelOutput != nil {
				t.Errorf("the poison record: %s; want an error and no modelOutput", line)
			}
			continue
		}
		if rec.ModelOutput == nil || len(rec.ModelOutput.Content) != 1 || !strings.HasPrefix(rec.ModelOutput.Content[0].Text, "fmsim [") || rec.ModelOutput.Usage.InputTokens == 0 {
			t.Errorf("record %d: %s; want an InvokeModel answer", i, line)
		}
	}

	list, err := b.client.ListModelInvocationJobs(context.Background(), &bedrock.ListModelInvocationJobsInput{StatusEquals: bedrocktypes.ModelInvocationJobStatusCompleted})
	if err != nil || len(list.InvocationJobSummaries) != 1 || aws.ToString(list.InvocationJobSummaries[0].JobArn) != arn {
		t.Errorf("list completed: %+v, %v; want the one job", list, err)
	}
}

func TestInvocationJobFailsExpiresAndStops(t *testing.T) {
	t.Parallel()
	b := setupInvocations(t, fmsim.Invocations{Delay: 200 * time.Millisecond, FailJobsMatching: "doomed", ExpireJobsMatching: "slowpoke"})
	failed := b.create(t, "job-fail", b.putInput(t, "in/f.jsonl", "fine", "a doomed record"), "t1")
	expired := b.create(t, "job-expire", b.putInput(t, "in/e.jsonl", "a slowpoke record"), "t2")
	stopped := b.create(t, "job-stop", b.putInput(t, "in/s.jsonl", "fine"), "t3")
	if _, err := b.client.StopModelInvocationJob(context.Background(), &bedrock.StopModelInvocationJobInput{JobIdentifier: aws.String(stopped)}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for arn, want := range map[string]bedrocktypes.ModelInvocationJobStatus{
		failed: bedrocktypes.ModelInvocationJobStatusFailed, expired: bedrocktypes.ModelInvocationJobStatusExpired, stopped: bedrocktypes.ModelInvocationJobStatusStopped,
	} {
		if got := b.waitEnd(t, arn); got.Status != want {
			t.Errorf("%s ended %s (%s), want %s", aws.ToString(got.JobName), got.Status, aws.ToString(got.Message), want)
		}
	}
	if _, err := b.client.GetModelInvocationJob(context.Background(), &bedrock.GetModelInvocationJobInput{JobIdentifier: aws.String("arn:aws:bedrock:us-east-1:0:model-invocation-job/nope")}); err == nil {
		t.Error("get of an unknown job succeeded")
	}
	_, err := b.client.CreateModelInvocationJob(context.Background(), &bedrock.CreateModelInvocationJobInput{JobName: aws.String("bad"), ModelId: aws.String("m"), RoleArn: aws.String("r"),
		InputDataConfig:  &bedrocktypes.ModelInvocationJobInputDataConfigMemberS3InputDataConfig{Value: bedrocktypes.ModelInvocationJobS3InputDataConfig{S3Uri: aws.String("not-s3")}},
		OutputDataConfig: &bedrocktypes.ModelInvocationJobOutputDataConfigMemberS3OutputDataConfig{Value: bedrocktypes.ModelInvocationJobS3OutputDataConfig{S3Uri: aws.String("s3://x/")}}})
	if err == nil || !strings.Contains(err.Error(), "s3InputDataConfig") {
		t.Errorf("create with a bad input URI: %v; want a ValidationException naming it", err)
	}
}
