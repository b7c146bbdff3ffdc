package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestBatchInferenceDefaultsAndProblems(t *testing.T) {
	t.Parallel()
	base := "models:\n  - {name: haiku, provider: bedrock, model_id: m, api: invoke_model, price: {input: 2, output: 8}}\n  - {name: fast, provider: sim}\n"
	c, err := Load(writeConfig(t, base+"batch_inference: {model: haiku, priority: low, bucket: b, role_arn: 'arn:aws:iam::1:role/r'}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := c.BatchInference
	if b.MinRecords != DefaultBatchInferenceMinRecords || b.MaxWait != DefaultBatchInferenceMaxWait || b.Prefix != DefaultBatchInferencePrefix || b.PollInterval != DefaultBatchInferencePollInterval {
		t.Errorf("defaults: %+v", b)
	}
	if p := c.BatchPrice(); p.Input != 1 || p.Output != 4 {
		t.Errorf("batch price %+v, want half the model's (1, 4)", p)
	}
	c, err = Load(writeConfig(t, base+"batch_inference: {model: haiku, tasks: [t], bucket: b, role_arn: 'arn:x', max_wait: 5s, price: {input: 0.5, output: 3}}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.BatchPrice(); p.Input != 0.5 || p.Output != 3 || c.BatchInference.MaxWait != 5*time.Second {
		t.Errorf("set: %+v, price %+v", c.BatchInference, p)
	}
	if off, err := Load(writeConfig(t, base), nil); err != nil || off.BatchInference.Enabled() || off.BatchInference.MinRecords != 0 {
		t.Errorf("without batch_inference: %+v, %v; want it off", off.BatchInference, err)
	}

	_, err = Load(writeConfig(t, base+"batch_inference: {model: fast, bucket: b, role_arn: 'arn:x'}\n"), nil)
	for _, want := range []string{"batch_inference.model", "bedrock model", "batch_inference.tasks"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a sim model and no tasks: %v; want it to name %q", err, want)
		}
	}
	_, err = Load(writeConfig(t, base+"batch_inference: {model: haiku, tasks: [t]}\n"), nil)
	for _, want := range []string{"batch_inference.bucket", "batch_inference.role_arn"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no bucket or role: %v; want it to name %q", err, want)
		}
	}
	_, err = Load(writeConfig(t, base+"batch_inference: {tasks: [t]}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "batch_inference.model") {
		t.Errorf("tasks without a model: %v", err)
	}
}

// TestREADMEBatchInferenceExampleValidates loads the README's batch inference example.
func TestREADMEBatchInferenceExampleValidates(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### Batch inference\n")
	_, block, ok2 := strings.Cut(sec, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no ```yaml block under ### Batch inference")
	}
	c, err := Load(writeConfig(t, block), nil)
	if err != nil {
		t.Fatalf("the README's batch inference example: %v\n%s", err, block)
	}
	if !c.BatchInference.Enabled() || c.BatchInference.MinRecords != 100 || c.BatchPrice().Input != 0.125 {
		t.Errorf("the README's example loads as %+v", c.BatchInference)
	}
}
