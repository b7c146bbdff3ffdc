package messages

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The batched prompt: request batching (config batching) sends several jobs' inputs to a
// model as one user message, BatchPrompt's text, and reads one answer per item back with
// ParseBatchAnswers. Items are JSON-encoded, one per line, so that no input can forge another
// item or end the list. A model server (fmsim) recognizes the format with ParseBatchPrompt.
const (
	// BatchPromptHeader is the first line of every batched prompt.
	BatchPromptHeader = "Answer each numbered item below on its own, as if it were the only one."
	batchPromptRules  = `Reply with only a JSON object {"answers":[{"item":1,"answer":"..."},{"item":2,"answer":"..."}]} holding one answer per item, each answer a string.`
	batchPromptItems  = "Items, one JSON object per line:"
)

// BatchItem is one item of a batched prompt: its number (from 1) and its input text.
type BatchItem struct {
	Item  int    `json:"item"`
	Input string `json:"input"`
}

// BatchAnswer is one item's answer in a batched reply.
type BatchAnswer struct {
	Item   int    `json:"item"`
	Answer string `json:"answer"`
}

// BatchReply is the JSON object a model answers a batched prompt with.
type BatchReply struct {
	Answers []BatchAnswer `json:"answers"`
}

// BatchPrompt returns the batched prompt listing inputs as items 1 to len(inputs).
func BatchPrompt(inputs []string) string {
	var sb strings.Builder
	sb.WriteString(BatchPromptHeader)
	sb.WriteByte('\n')
	sb.WriteString(batchPromptRules)
	sb.WriteByte('\n')
	sb.WriteString(batchPromptItems)
	for i, in := range inputs {
		b, _ := json.Marshal(BatchItem{Item: i + 1, Input: in}) // strings always encode
		sb.WriteByte('\n')
		sb.Write(b)
	}
	return sb.String()
}

// ParseBatchPrompt returns the items of a batched prompt, and false when text is not one.
func ParseBatchPrompt(text string) ([]BatchItem, bool) {
	rest, ok := strings.CutPrefix(text, BatchPromptHeader+"\n")
	if !ok {
		return nil, false
	}
	_, list, ok := strings.Cut(rest, batchPromptItems+"\n")
	if !ok {
		return nil, false
	}
	var items []BatchItem
	for _, line := range strings.Split(list, "\n") {
		var it BatchItem
		if err := json.Unmarshal([]byte(line), &it); err != nil || it.Item < 1 {
			return nil, false
		}
		items = append(items, it)
	}
	return items, len(items) > 0
}

// ParseBatchAnswers reads a model's reply to a batched prompt of n items: answers[i] is item
// i+1's answer and ok[i] says whether there was one. An item is missing when the reply has no
// answer for it, or its answer is not a non-empty string, or two answers name it. A reply that
// is not the JSON object (code fences and text around it are ignored) answers no item.
func ParseBatchAnswers(text string, n int) (answers []string, ok []bool) {
	answers, ok = make([]string, n), make([]bool, n)
	start, end := strings.IndexByte(text, '{'), strings.LastIndexByte(text, '}')
	if start < 0 || end < start {
		return answers, ok
	}
	var reply struct {
		Answers []struct {
			Item   int             `json:"item"`
			Answer json.RawMessage `json:"answer"`
		} `json:"answers"`
	}
	if err := json.Unmarshal([]byte(text[start:end+1]), &reply); err != nil {
		return answers, ok
	}
	seen := make([]int, n)
	for _, a := range reply.Answers {
		if a.Item < 1 || a.Item > n {
			continue
		}
		i := a.Item - 1
		seen[i]++
		var s string
		if bytes.HasPrefix(bytes.TrimSpace(a.Answer), []byte(`"`)) && json.Unmarshal(a.Answer, &s) == nil && strings.TrimSpace(s) != "" {
			answers[i], ok[i] = s, true
		}
	}
	for i, c := range seen {
		if c > 1 {
			answers[i], ok[i] = "", false
		}
	}
	return answers, ok
}
