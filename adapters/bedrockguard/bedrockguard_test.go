package bedrockguard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/infleet/infleet/adapters/bedrockguard"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// applyRequest is the body of ApplyGuardrail as the SDK sends it.
type applyRequest struct {
	Source  string `json:"source"`
	Content []struct {
		Text struct {
			Text       string   `json:"text"`
			Qualifiers []string `json:"qualifiers"`
		} `json:"text"`
	} `json:"content"`
}

// guardrailServer speaks the ApplyGuardrail REST protocol for guardrail "g1" version "3": it
// anonymizes "@" addresses, blocks the topic word "forbidden", and on output with a grounding
// source blocks answers that share no word with it.
type guardrailServer struct {
	mu    sync.Mutex
	paths []string
	reqs  []applyRequest
}

func (s *guardrailServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req applyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/guardrail/g1/version/3/apply" {
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message": "guardrail not found"}`))
		return
	}
	var text, source string
	for _, c := range req.Content {
		switch {
		case len(c.Text.Qualifiers) == 0 || c.Text.Qualifiers[0] == "guard_content":
			text = c.Text.Text
		case c.Text.Qualifiers[0] == "grounding_source":
			source = c.Text.Text
		}
	}
	var assessments []map[string]any
	action, out := "NONE", text
	if strings.Contains(text, "@") {
		action, out = "GUARDRAIL_INTERVENED", "mail {EMAIL}"
		assessments = append(assessments, map[string]any{"sensitiveInformationPolicy": map[string]any{
			"piiEntities": []map[string]any{{"type": "EMAIL", "match": "x@y.example", "action": "ANONYMIZED", "detected": true}}}})
	}
	if strings.Contains(text, "forbidden") {
		action, out = "GUARDRAIL_INTERVENED", "Sorry, that topic is not allowed."
		assessments = append(assessments, map[string]any{"topicPolicy": map[string]any{
			"topics": []map[string]any{{"name": "secrets", "type": "DENY", "action": "BLOCKED", "detected": true}}}})
	}
	if source != "" && !strings.Contains(source, strings.Fields(text)[0]) {
		action, out = "GUARDRAIL_INTERVENED", "The answer is not grounded."
		assessments = append(assessments, map[string]any{"contextualGroundingPolicy": map[string]any{
			"filters": []map[string]any{{"type": "GROUNDING", "threshold": 0.7, "score": 0.1, "action": "BLOCKED", "detected": true}}}})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"action": action, "outputs": []map[string]string{{"text": out}}, "assessments": assessments})
}

func setup(t *testing.T, id, version string) (*bedrockguard.Guard, *guardrailServer) {
	t.Helper()
	srv := &guardrailServer{}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	g, err := bedrockguard.New(context.Background(), bedrockguard.Config{
		GuardrailID: id, GuardrailVersion: version, Endpoint: hs.URL, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return g, srv
}

func TestApplyGuardrail(t *testing.T) {
	t.Parallel()
	g, srv := setup(t, "g1", "3")
	ctx := context.Background()

	out, err := g.Check(ctx, pipeline.GuardInput, []string{"mail x@y.example", "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Blocked || out.Texts[0] != "mail {EMAIL}" || out.Texts[1] != "plain" {
		t.Errorf("anonymize outcome = %+v", out)
	}
	want := []messages.Assessment{{Policy: "sensitive_information", Type: "EMAIL", Matches: 1, Action: "ANONYMIZED"}}
	if len(out.Assessments) != 1 || out.Assessments[0] != want[0] {
		t.Errorf("assessments = %+v, want %+v", out.Assessments, want)
	}

	out, err = g.Check(ctx, pipeline.GuardInput, []string{"a forbidden thing"})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Blocked || out.Reason != "Sorry, that topic is not allowed." || out.Texts[0] != "a forbidden thing" ||
		len(out.Assessments) != 1 || out.Assessments[0].Policy != "denied_topic" || out.Assessments[0].Action != "BLOCKED" {
		t.Errorf("block outcome = %+v", out)
	}

	jc := pipeline.GuardContext{Question: "Where?", Context: "Penguins live in Antarctica."}
	out, err = g.CheckWithContext(ctx, pipeline.GuardOutput, []string{"Camels live in deserts."}, jc)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Blocked || len(out.Assessments) != 1 || out.Assessments[0].Policy != "contextual_grounding" {
		t.Errorf("grounding outcome = %+v", out)
	}
	if out, _ := g.CheckWithContext(ctx, pipeline.GuardOutput, []string{"Penguins do."}, jc); out.Blocked {
		t.Errorf("grounded answer blocked: %+v", out)
	}

	srv.mu.Lock()
	defer srv.mu.Unlock()
	last := srv.reqs[len(srv.reqs)-1]
	if last.Source != "OUTPUT" || len(last.Content) != 3 || last.Content[0].Text.Qualifiers[0] != "grounding_source" ||
		last.Content[1].Text.Qualifiers[0] != "query" || last.Content[2].Text.Qualifiers[0] != "guard_content" {
		t.Errorf("output request = %+v, want grounding source, query and guarded content", last)
	}
	if srv.reqs[0].Source != "INPUT" || srv.paths[0] != "/guardrail/g1/version/3/apply" {
		t.Errorf("input request %s %+v", srv.paths[0], srv.reqs[0])
	}
}

func TestApplyGuardrailErrors(t *testing.T) {
	t.Parallel()
	g, _ := setup(t, "missing", "")
	_, err := g.Check(context.Background(), pipeline.GuardInput, []string{"x"})
	if err == nil || !strings.Contains(err.Error(), "bedrock guardrail missing version DRAFT") {
		t.Errorf("err = %v, want the guardrail named", err)
	}
	if _, err := bedrockguard.New(context.Background(), bedrockguard.Config{}); err == nil {
		t.Error("New accepted a config without guardrail_id")
	}
}
