package bedrock_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// A Converse call to an inference profile, against fmsim standing in for Bedrock.
func ExampleNew() {
	srv := httptest.NewServer(fmsim.New(fmsim.Config{}))
	defer srv.Close()

	c, err := bedrock.New(context.Background(), bedrock.Config{
		ModelID:     "eu.anthropic.claude-3-7-sonnet-20250219-v1:0",
		Region:      "eu-west-1",
		Endpoint:    srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
	if err != nil {
		panic(err)
	}
	resp, err := c.Invoke(context.Background(), pipeline.ModelRequest{
		System:   "Answer in one line.",
		Messages: []messages.ChatMessage{{Role: "user", Content: "hello fleet"}},
	})
	fmt.Println(strings.HasSuffix(resp.Text, "hello fleet"), resp.StopReason, resp.Usage.InputTokens > 0, err)
	// Output:
	// true end_turn true <nil>
}
