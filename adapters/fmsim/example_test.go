package fmsim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/infleet/infleet/adapters/fmsim"
)

// A chat completion from fmsim, then the same model throttled at run time.
func ExampleNew() {
	sim := fmsim.New(fmsim.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()

	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello fleet"}]}`
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	var out struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.HasSuffix(out.Choices[0].Message.Content, "hello fleet"))

	sim.SetFaults("gpt-4o-mini", fmsim.Faults{ThrottleRate: 1})
	resp, err = http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Retry-After"))

	st := sim.Stats()
	fmt.Println(st.ByOutcome[fmsim.OutcomeOK], st.ByOutcome[fmsim.OutcomeThrottled])
	// Output:
	// 200 true
	// 429 1
	// 1 1
}
