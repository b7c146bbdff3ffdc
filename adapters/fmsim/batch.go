package fmsim

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/infleet/infleet/messages"
)

// answerBatch answers a batched prompt: each item gets the answer the model would give it
// alone (same system prompt, the item's input as the only message), except the items the
// model's faults drop or garble.
func (s *Server) answerBatch(model string, p prompt, items []messages.BatchItem) reply {
	f := s.faultsFor(model)
	out := messages.BatchReply{Answers: []messages.BatchAnswer{}}
	var garbled []string
	var dropped int64
	for _, it := range items {
		h := unit(mix(s.seed, hashString(it.Input), 3))
		switch {
		case (f.DropItemsMatching != "" && strings.Contains(it.Input, f.DropItemsMatching)) || h < f.DropItemRate:
			dropped++
		case (f.GarbleItemsMatching != "" && strings.Contains(it.Input, f.GarbleItemsMatching)) || h < f.DropItemRate+f.GarbleItemRate:
			garbled = append(garbled, `{"item":`+itoa(it.Item)+`,"answer":{"error":"garbled on purpose"}}`)
		default:
			one := answer(model, prompt{system: p.system, messages: []turn{{"user", it.Input}}})
			out.Answers = append(out.Answers, messages.BatchAnswer{Item: it.Item, Answer: one.text})
		}
	}
	body, _ := json.Marshal(out) // strings and ints always encode
	text := string(body)
	if len(garbled) > 0 {
		sep := ","
		if len(out.Answers) == 0 {
			sep = ""
		}
		text = strings.TrimSuffix(text, "]}") + sep + strings.Join(garbled, ",") + "]}"
	}
	s.statsMu.Lock()
	s.stats.BatchCalls++
	s.stats.BatchItems += int64(len(items))
	s.stats.DroppedItems += dropped
	s.stats.GarbledItems += int64(len(garbled))
	s.statsMu.Unlock()
	return reply{text: text, in: p.inputTokens() - max(p.maxTokens, 0), out: tokens(countWords(text)), requestTag: "batch"}
}

// hashString is FNV-1a of s.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

func itoa(n int) string { return strconv.Itoa(n) }
