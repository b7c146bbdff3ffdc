package models_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/infleet/infleet/adapters/fmsim"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batch"
	"github.com/infleet/infleet/pipeline/models"
)

func TestBatchedTaskSharesOneCallThroughItsPromptTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]fmsim.Faults{"m": {GarbleItemsMatching: "line 7 "}}, fastPolicy(),
		models.ModelSpec{Name: "m", Price: models.Price{InputPerMTok: 3, OutputPerMTok: 15}})
	r, err := models.CompileRouting(models.RoutingSpec{
		Routes:   map[string]string{"default": "m"},
		Prompts:  []models.Prompt{{Task: "tag", Version: "1.0.0", Template: "Tag: {{.Input}}", System: "You tag lines."}},
		Batching: []models.Batching{{Task: "tag", Rule: batch.Rule{MaxItems: 20, MaxWait: time.Minute}}},
	}, b.fleet.Has)
	if err != nil {
		t.Fatal(err)
	}
	p := models.NewPicker(b.fleet, r)

	const n = 20
	got := make([]pipeline.ModelResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("line %d of the log", i)
			m, err := p.Pick(job("tag", text, ""))
			if err != nil {
				t.Error(err)
				return
			}
			got[i], err = m.Client.Invoke(t.Context(), pipeline.ModelRequest{ModelID: m.ModelID, Task: "tag",
				Messages: []messages.ChatMessage{{Role: "user", Content: text}}})
			if err != nil {
				t.Errorf("job %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if calls := b.total("m"); calls != 2 {
		t.Errorf("fmsim answered %d calls, want 2: one batch of 20 and the garbled item alone", calls)
	}
	if st := p.BatchStats(); st.Items != n || st.Batches != 1 || st.Alone != 1 {
		t.Errorf("batch stats %+v", st)
	}
	// Each job's answer is the one its own rendered prompt gets alone.
	unbatched := b.fleet.Client("m")
	for i, resp := range got {
		alone, err := unbatched.Invoke(t.Context(), pipeline.ModelRequest{ModelID: "m", Task: "tag", System: "You tag lines.",
			Messages: []messages.ChatMessage{{Role: "user", Content: fmt.Sprintf("Tag: line %d of the log", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != alone.Text {
			t.Errorf("job %d answer %q, want %q", i, resp.Text, alone.Text)
		}
		if resp.Prompt != "tag@1.0.0" {
			t.Errorf("job %d prompt %q, want tag@1.0.0", i, resp.Prompt)
		}
		if resp.Usage.InputTokens == 0 || resp.Usage.CostUSD <= 0 {
			t.Errorf("job %d has no usage or cost of its own: %+v", i, resp.Usage)
		}
		if i != 7 && resp.Usage.InputTokens >= alone.Usage.InputTokens*2 {
			t.Errorf("job %d paid %d input tokens batched, against %d alone", i, resp.Usage.InputTokens, alone.Usage.InputTokens)
		}
	}
}

func TestCompileRoutingChecksBatching(t *testing.T) {
	t.Parallel()
	_, err := models.CompileRouting(models.RoutingSpec{
		Routes:   map[string]string{"default": "m"},
		Batching: []models.Batching{{Task: "tag"}, {Task: "tag"}, {Task: ""}, {Task: "x", Rule: batch.Rule{MaxItems: -1}}},
	}, func(string) bool { return true })
	for _, want := range []string{"batching[1]: task tag is batched twice", "batching[2].task is empty", "batching[3] (x)"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
