package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/guard"
)

// evalDir holds the guardrails' labelled evaluation (see pipeline/guard/eval_test.go).
const evalDir = "../../pipeline/guard/testdata/eval"

// Targets of the classifier's part of the evaluation.
const (
	evalClassifierRecall = 0.75
	evalMaxOffTopicBlock = 1
)

// TestEvaluationTopicClassifier measures denied topics asked in paraphrase with the
// topic_classifier on, end to end: the guards are wired from a configuration whose classifier
// model is `infleet fmsim --classify-rules`, reached over the OpenAI protocol. It reports the
// recall of the classifier alone and of the input guard as deployed (built-in matcher, then
// the classifier), and fails when the guard's recall is under 0.75 or it blocks more than one
// off-topic text.
func TestEvaluationTopicClassifier(t *testing.T) {
	t.Parallel()
	addr := startFmsim(t, "--classify-rules", filepath.Join("testdata", "fmsim-topic-rules.json"))
	topics, err := os.ReadFile(filepath.Join(evalDir, "topics.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "infleet.yaml")
	yaml := fmt.Sprintf(`
models:
  - {name: fast, provider: sim}
  - {name: clf, provider: openai, base_url: "%s/v1", model_id: clf, timeout: 5s}
routes: {default: fast}
guardrails:
  input:
    denied_topics: %s
    topic_classifier: {model: clf}
`, addr, topics)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := &app{}
	in, _, err := a.guards(ctx, cfg, prometheus.NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var defs []guard.Topic
	for _, d := range cfg.Guardrails.Input.DeniedTopics {
		defs = append(defs, guard.Topic{Name: d.Name, Definition: d.Definition, Examples: d.Examples})
	}
	clf, err := a.topicClassifier(ctx, cfg, "clf", defs)
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(filepath.Join(evalDir, "topics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type item struct{ ID, Lang, Topic, Text string }
	var items []item
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var x item
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		items = append(items, x)
	}
	topicOf := func(g pipeline.Guard, text string) string {
		out, err := g.Check(ctx, pipeline.GuardInput, []string{text})
		if err != nil {
			t.Fatalf("check %q: %v", text, err)
		}
		for _, as := range out.Assessments {
			if as.Policy == guard.PolicyTopic || as.Policy == guard.PolicyTopicClassifier {
				return as.Type
			}
		}
		return ""
	}
	type tally struct{ tp, fn, fp int }
	var rows []string
	var deployed tally
	for _, side := range []struct {
		name string
		g    pipeline.Guard
		t    *tally
	}{{"classifier alone", clf, &tally{}}, {"built-in + classifier", in, &deployed}} {
		for _, x := range items {
			got := topicOf(side.g, x.Text)
			switch {
			case x.Topic != "" && got == x.Topic:
				side.t.tp++
			case x.Topic != "":
				side.t.fn++
				t.Logf("%s %s (%s): %s paraphrase not caught (got %q): %q", side.name, x.ID, x.Lang, x.Topic, got, x.Text)
			case got != "":
				side.t.fp++
				t.Logf("%s %s (%s): off-topic text blocked as %s: %q", side.name, x.ID, x.Lang, got, x.Text)
			}
		}
		p := float64(side.t.tp) / float64(max(1, side.t.tp+side.t.fp))
		r := float64(side.t.tp) / float64(max(1, side.t.tp+side.t.fn))
		rows = append(rows, fmt.Sprintf("topic %-22s %9.3f %6.3f %4d %3d %3d", side.name, p, r, side.t.tp, side.t.fp, side.t.fn))
	}
	t.Logf("paraphrased topics, classifier via infleet fmsim (%d items)\nclass                        precision recall   tp  fp  fn\n%s\n%s",
		len(items), rows[0], rows[1])
	if r := float64(deployed.tp) / float64(max(1, deployed.tp+deployed.fn)); r < evalClassifierRecall {
		t.Errorf("paraphrased-topic recall with the classifier %.3f, want >= %.2f", r, evalClassifierRecall)
	}
	if deployed.fp > evalMaxOffTopicBlock {
		t.Errorf("%d off-topic texts blocked, want at most %d", deployed.fp, evalMaxOffTopicBlock)
	}
}

// TestPhoneRegionDefaultsAgree keeps the config's default pii.phone_regions and the guard's
// own default the same list.
func TestPhoneRegionDefaultsAgree(t *testing.T) {
	t.Parallel()
	if !slices.Equal(config.DefaultPhoneRegions, guard.DefaultPhoneRegions) {
		t.Errorf("config default phone regions %v, guard default %v", config.DefaultPhoneRegions, guard.DefaultPhoneRegions)
	}
}
