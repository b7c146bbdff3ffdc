package webhook_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/infleet/infleet/adapters/webhook"
)

func ExampleSign() {
	body := []byte(`{"type":"job.completed","job_id":"j1"}`)
	sent := time.Unix(1795000000, 0)
	fmt.Println(webhook.Sign("whsec_example", sent, body))
	// Output:
	// t=1795000000,v1=dc2aaaddf1737277e89274ae725a1ffeff255d08a0658f67ca70391c26b50346
}

func ExampleVerify() {
	body := []byte(`{"type":"job.completed","job_id":"j1"}`)
	sent := time.Unix(1795000000, 0)
	header := webhook.Sign("whsec_example", sent, body)

	// A receiver checks the raw body against the header with its copy of the secret.
	fmt.Println(webhook.Verify("whsec_example", header, body, 5*time.Minute, sent.Add(time.Second)))

	err := webhook.Verify("whsec_example", header, []byte(`{"tampered":true}`), 5*time.Minute, sent)
	fmt.Println(errors.Is(err, webhook.ErrInvalidSignature))

	err = webhook.Verify("whsec_example", header, body, 5*time.Minute, sent.Add(time.Hour))
	fmt.Println(errors.Is(err, webhook.ErrInvalidSignature))
	// Output:
	// <nil>
	// true
	// true
}
