package bedrock_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/fmsim"
)

// BenchmarkCall compares the adapter's Invoke with calling the SDK directly on the same fmsim
// with no latency, so the difference is what the adapter adds to a model call. Per-call
// durations are reported as p50 and p99 in microseconds.
func BenchmarkCall(b *testing.B) {
	srv := httptest.NewServer(fmsim.New(fmsim.Config{}))
	b.Cleanup(srv.Close)
	creds := credentials.NewStaticCredentialsProvider("AKIDFMSIM", "secret", "")
	req := request("summarize the quarterly report in three short sentences please")

	sdk := bedrockruntime.New(bedrockruntime.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
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
		c, err := bedrock.New(context.Background(), bedrock.Config{ModelID: claude, API: api, Region: "eu-west-1", Endpoint: srv.URL, Credentials: creds})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	conv, inv := adapter(bedrock.APIConverse), adapter(bedrock.APIInvokeModel)

	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"converse/sdk", func(ctx context.Context) error { _, err := sdk.Converse(ctx, converseIn); return err }},
		{"converse/adapter", func(ctx context.Context) error { _, err := conv.Invoke(ctx, req); return err }},
		{"invoke_model/sdk", func(ctx context.Context) error {
			_, err := sdk.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{ModelId: aws.String(claude), Body: invokeBody,
				ContentType: aws.String("application/json"), Accept: aws.String("application/json")})
			return err
		}},
		{"invoke_model/adapter", func(ctx context.Context) error { _, err := inv.Invoke(ctx, req); return err }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			if err := tc.call(ctx); err != nil { // warm the connection
				b.Fatal(err)
			}
			durs := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if err := tc.call(ctx); err != nil {
					b.Fatal(err)
				}
				durs = append(durs, time.Since(start))
			}
			reportPercentiles(b, durs)
		})
	}
}

func reportPercentiles(b *testing.B, durs []time.Duration) {
	if len(durs) == 0 {
		return
	}
	slices.Sort(durs)
	at := func(q float64) float64 {
		return float64(durs[min(int(q*float64(len(durs))), len(durs)-1)]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
