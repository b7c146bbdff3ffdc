package models

import (
	"context"
	"strconv"
	"strings"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batch"
)

// batchClient sends a job of a batched task through the Picker's Batcher: it renders the
// task's prompt template into the job's own request (so that each item is what an unbatched
// call would send, and an item retried alone is exactly that call) and hands it to the batcher
// under the job's task, model and prompt version.
type batchClient struct {
	batcher *batch.Batcher
	rule    batch.Rule
	next    pipeline.ModelClient
	prompt  *prompt // nil when the task has no prompt template
	task    string
	meta    map[string]any
	key     string
}

func (c *batchClient) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	if c.prompt != nil {
		var err error
		if req, err = c.prompt.apply(req, c.task, c.meta); err != nil {
			return pipeline.ModelResponse{}, err
		}
	}
	resp, err := c.batcher.Invoke(ctx, c.key, c.rule, req, c.next)
	if c.prompt != nil {
		resp.Prompt = c.prompt.name(c.task)
	}
	return resp, err
}

// batchKey names the group a job joins: its task, model, prompt version and cache opt-out.
func batchKey(task, model string, pr *prompt, opts CallOptions) string {
	version := ""
	if pr != nil {
		version = pr.spec.Version
	}
	return strings.Join([]string{task, model, version, strconv.FormatBool(opts.NoCache)}, "|")
}
