package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// prompt is a compiled Prompt.
type prompt struct {
	spec     Prompt
	version  [3]int
	system   *template.Template
	template *template.Template
}

func compilePrompt(p Prompt) (*prompt, error) {
	v, err := parseSemver(p.Version)
	if err != nil {
		return nil, err
	}
	c := &prompt{spec: p, version: v}
	if p.System != "" {
		if c.system, err = template.New("system").Option("missingkey=zero").Parse(p.System); err != nil {
			return nil, fmt.Errorf("system: %w", err)
		}
	}
	if p.Template != "" {
		if c.template, err = template.New("template").Option("missingkey=zero").Parse(p.Template); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
	}
	return c, nil
}

// promptFor returns the task's prompt: the version the job's metadata names (exact, or a
// major.minor prefix), else the highest version.
func (r *Routing) promptFor(task string, meta map[string]any) *prompt {
	ps := r.prompts[task]
	if len(ps) == 0 {
		return nil
	}
	want, _ := meta[MetaPromptVersion].(string)
	if want == "" {
		return ps[0]
	}
	for _, p := range ps { // highest first
		if p.spec.Version == want || strings.HasPrefix(p.spec.Version, want+".") {
			return p
		}
	}
	return ps[0]
}

// promptClient applies a prompt template to each request before the next client.
type promptClient struct {
	next   pipeline.ModelClient
	prompt *prompt
	task   string
	meta   map[string]any
}

func (c *promptClient) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	req, err := c.prompt.apply(req, c.task, c.meta)
	if err != nil {
		return pipeline.ModelResponse{}, err
	}
	resp, err := c.next.Invoke(ctx, req)
	resp.Prompt = c.prompt.name(c.task)
	return resp, err
}

// name is the prompt as name@version.
func (p *prompt) name(task string) string { return task + "@" + p.spec.Version }

// apply renders the prompt's system prompt and template into req for a job of task with
// metadata meta.
func (p *prompt) apply(req pipeline.ModelRequest, task string, meta map[string]any) (pipeline.ModelRequest, error) {
	vars := map[string]any{"Task": task, "Metadata": meta}
	if n := len(req.Messages); n > 0 {
		vars["Input"] = req.Messages[n-1].Content
	}
	var sb strings.Builder
	if t := p.system; t != nil {
		if err := t.Execute(&sb, vars); err != nil {
			return req, pipeline.Permanent(messages.ErrCodeInvalidJob, fmt.Errorf("prompt %s@%s: %w", task, p.spec.Version, err))
		}
		req.System = sb.String()
	}
	if t := p.template; t != nil && len(req.Messages) > 0 {
		sb.Reset()
		if err := t.Execute(&sb, vars); err != nil {
			return req, pipeline.Permanent(messages.ErrCodeInvalidJob, fmt.Errorf("prompt %s@%s: %w", task, p.spec.Version, err))
		}
		msgs := append([]messages.ChatMessage(nil), req.Messages...)
		msgs[len(msgs)-1].Content = sb.String()
		req.Messages = msgs
	}
	return req, nil
}

// parseSemver reads MAJOR.MINOR.PATCH (no pre-release part).
func parseSemver(s string) ([3]int, error) {
	var v [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, errors.New("version must be MAJOR.MINOR.PATCH, e.g. 1.2.0")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return v, fmt.Errorf("version %q must be MAJOR.MINOR.PATCH with plain numbers, e.g. 1.2.0", s)
		}
		v[i] = n
	}
	return v, nil
}

func compareSemver(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			return a[i] - b[i]
		}
	}
	return 0
}
