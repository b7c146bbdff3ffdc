package bedrock_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/fmsim/fmsimtest"
)

// BenchmarkCall compares the adapter's Invoke with calling the SDK directly on the same fmsim
// with no latency, so the difference is what the adapter adds to a model call. Per-call
// durations are reported as p50 and p99 in microseconds.
func BenchmarkCall(b *testing.B) {
	_, url := fmsimtest.Start(b, fmsim.Config{})
	creds := credentials.NewStaticCredentialsProvider("AKIDFMSIM", "secret", "")
	req := request("summarize the quarterly report in three short sentences please")

	sdk := bedrockruntime.New(bedrockruntime.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials:  creds,
		Retryer:      aws.NopRetryer{},
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 128, 128
		}),
	})
	converseIn := &bedrockruntime.ConverseInput{
		ModelId: aws.String(claude),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: req.System}},
		Messages: []types.Message{{Role: types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: req.Messages[0].Content}}}},
	}
	invokeBody := []byte(`{"anthropic_version":"bedrock-2023-05-31","max_tokens":4096,"system":"You are terse.","messages":[{"role":"user","content":"summarize the quarterly report in three short sentences please"}]}`)

	adapter := func(api string) *bedrock.Client {
		c, err := bedrock.New(context.Background(), bedrock.Config{ModelID: claude, API: api, Region: "eu-west-1", Endpoint: url, Credentials: creds})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	conv, inv := adapter(bedrock.APIConverse), adapter(bedrock.APIInvokeModel)

	fmsimtest.Bench(b, "converse/sdk", func(ctx context.Context) error { _, err := sdk.Converse(ctx, converseIn); return err })
	fmsimtest.Bench(b, "converse/adapter", func(ctx context.Context) error { _, err := conv.Invoke(ctx, req); return err })
	fmsimtest.Bench(b, "invoke_model/sdk", func(ctx context.Context) error {
		_, err := sdk.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(claude), Body: invokeBody,
			ContentType: aws.String("application/json"), Accept: aws.String("application/json")})
		return err
	})
	fmsimtest.Bench(b, "invoke_model/adapter", func(ctx context.Context) error { _, err := inv.Invoke(ctx, req); return err })
}
