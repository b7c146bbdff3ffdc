package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestBatchingDefaultsAndProblems(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, "batching:\n  - task: tag\n  - {task: classify, max_items: 50, max_wait: 200ms, max_input_tokens: 8000}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Batching[0]; b.MaxItems != DefaultBatchMaxItems || b.MaxWait != DefaultBatchMaxWait || b.MaxInputTokens != 0 {
		t.Errorf("defaults: %+v", b)
	}
	if b := c.Batching[1]; b.MaxItems != 50 || b.MaxWait != 200*time.Millisecond || b.MaxInputTokens != 8000 {
		t.Errorf("set: %+v", b)
	}

	_, err = Load(writeConfig(t, "batching:\n  - task: tag\n  - task: tag\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "batching[1].task") || !strings.Contains(err.Error(), "already batched") {
		t.Errorf("duplicate task: %v", err)
	}
	_, err = Load(writeConfig(t, "batching:\n  - {task: tag, max_items: 1}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "batching[0].max_items") {
		t.Errorf("max_items 1: %v", err)
	}
	_, err = Load(writeConfig(t, "batching:\n  - {max_items: 5}\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "task") {
		t.Errorf("no task: %v", err)
	}
}

// TestREADMEBatchingExampleValidates loads the README's request batching example.
func TestREADMEBatchingExampleValidates(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### Request batching\n")
	_, block, ok2 := strings.Cut(sec, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no ```yaml block under ### Request batching")
	}
	c, err := Load(writeConfig(t, block), nil)
	if err != nil {
		t.Fatalf("the README's batching example: %v\n%s", err, block)
	}
	if len(c.Batching) != 1 || c.Batching[0].MaxInputTokens != 8000 || c.Batching[0].MaxWait != 50*time.Millisecond {
		t.Errorf("the README's batching example loads as %+v", c.Batching)
	}
}
