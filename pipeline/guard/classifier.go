package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// PolicyTopicClassifier names the classifier's findings in assessments and metrics.
const PolicyTopicClassifier = "topic_classifier"

// TopicClassifier is a guard that asks a model whether a text is about one of the denied
// topics, for paraphrases the phrase and keyword matching misses. The model answers with the
// number of the topic, or 0 for none; an answer without a number is an error (the attempt is
// retried). It is safe for concurrent use when Client is.
type TopicClassifier struct {
	Topics []Topic
	// Client and ModelID reach the classifier model.
	Client  pipeline.ModelClient
	ModelID string
}

// NewTopicClassifier checks that there are topics and a client.
func NewTopicClassifier(topics []Topic, client pipeline.ModelClient, modelID string) (*TopicClassifier, error) {
	if len(topics) == 0 {
		return nil, errors.New("topic classifier: no denied topics to classify (add denied_topics)")
	}
	if client == nil {
		return nil, errors.New("topic classifier: no model client")
	}
	return &TopicClassifier{Topics: topics, Client: client, ModelID: modelID}, nil
}

// Prompt is the system prompt the classifier model receives.
func (c *TopicClassifier) Prompt() string {
	var b strings.Builder
	b.WriteString("You classify texts. Answer with only the number of the topic below that the text is about, or 0 if it is about none of them.\n")
	for i, t := range c.Topics {
		fmt.Fprintf(&b, "%d. %s: %s", i+1, t.Name, t.Definition)
		if len(t.Examples) > 0 {
			fmt.Fprintf(&b, " (for example: %s)", strings.Join(t.Examples, "; "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Check asks the model about the texts together; the texts pass unchanged unless blocked.
func (c *TopicClassifier) Check(ctx context.Context, _ pipeline.GuardStage, texts []string) (pipeline.GuardOutcome, error) {
	out := pipeline.GuardOutcome{Texts: texts}
	joined := strings.TrimSpace(strings.Join(texts, "\n"))
	if joined == "" {
		return out, nil
	}
	resp, err := c.Client.Invoke(ctx, pipeline.ModelRequest{ModelID: c.ModelID, Task: "classify", System: c.Prompt(),
		Messages: []messages.ChatMessage{{Role: "user", Content: joined}}, Params: messages.Params{MaxTokens: 8}})
	if err != nil {
		return out, fmt.Errorf("topic classifier: %w", err)
	}
	n, ok := firstNumber(resp.Text)
	if !ok || n < 0 || n > len(c.Topics) {
		return out, fmt.Errorf("topic classifier: answer %q names no topic (want 0 to %d)", truncate(resp.Text, 40), len(c.Topics))
	}
	if n == 0 {
		return out, nil
	}
	t := c.Topics[n-1]
	out.Blocked = true
	out.Reason = t.Message
	if out.Reason == "" {
		out.Reason = "the content is about a denied topic: " + t.Name
	}
	out.Assessments = []messages.Assessment{{Policy: PolicyTopicClassifier, Type: t.Name, Matches: 1, Action: messages.GuardActionBlocked}}
	return out, nil
}

// firstNumber returns the first whole number in s.
func firstNumber(s string) (int, bool) {
	start := strings.IndexFunc(s, unicode.IsDigit)
	if start < 0 {
		return 0, false
	}
	end := start
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(s[start:end])
	return n, err == nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
