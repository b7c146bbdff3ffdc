package openai_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/adapters/openai"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// A call to an OpenAI-compatible server (fmsim here), then the same call throttled: the
// error says what kind of failure it was and how long the server asked to wait.
func ExampleNew() {
	sim := fmsim.New(fmsim.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	c, err := openai.New(openai.Config{BaseURL: srv.URL + "/v1", ModelID: "llama3.1:8b"})
	if err != nil {
		panic(err)
	}
	req := pipeline.ModelRequest{Messages: []messages.ChatMessage{{Role: "user", Content: "hello fleet"}}}
	resp, err := c.Invoke(context.Background(), req)
	fmt.Println(strings.HasSuffix(resp.Text, "hello fleet"), resp.StopReason, err)

	sim.SetFaults("", fmsim.Faults{ThrottleRate: 1})
	_, err = c.Invoke(context.Background(), req)
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		fmt.Println(me.Kind, me.Status, me.RetryAfter, me.Kind.Retryable())
	}
	// Output:
	// true end_turn <nil>
	// throttled 429 1s true
}
