package fmsim

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Classification answers stand in for a model asked to classify a text against numbered
// topics, such as infleet's topic_classifier asks ("Answer with only the number of the topic
// below that the text is about, or 0 ..." followed by lines "N. name: definition (for example:
// ...)"). With Config.Classify set, such a call is answered with the number of the topic whose
// cues the last message holds most of, or 0 below Classify.MinScore. A topic's cues are the
// longer words of its definition and examples, read from the prompt, and the words the rules
// give for its name; a cue matches a word it starts ("pain" matches "painful"), accents aside.
// It is a rule-based stand-in for tests, not a model: it knows what its rules say.

// Classify turns on classification answers.
type Classify struct {
	// Rules map a topic name to further cue words or phrases (lower case). Default none.
	Rules map[string][]string `json:"rules"`
	// MinScore is the least number of distinct cues that names a topic. Default 1.
	MinScore int `json:"min_score"`
}

// classifyTopicLine reads one numbered topic of a classification prompt.
var classifyTopicLine = regexp.MustCompile(`(?m)^(\d+)\. ([^:\n]+): (.*)$`)

// isClassification reports whether a system prompt asks for a topic number.
func isClassification(system string) bool {
	return strings.Contains(system, "Answer with only the number") && classifyTopicLine.MatchString(system)
}

// foldWords lower-cases s, drops accents and splits it into words.
func foldWords(s string) []string {
	d := norm.NFKD.String(strings.ToLower(s))
	var b strings.Builder
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(r)
	}
	return strings.FieldsFunc(b.String(), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// classify returns the topic number the text is about under the prompt and rules.
func (c *Classify) classify(system, text string) int {
	words := foldWords(text)
	has := func(cue string) bool {
		parts := foldWords(cue)
		if len(parts) == 0 {
			return false
		}
		for i := 0; i+len(parts) <= len(words); i++ {
			ok := true
			for k, p := range parts {
				w := words[i+k]
				if k == len(parts)-1 && strings.HasPrefix(w, p) || w == p {
					continue
				}
				ok = false
				break
			}
			if ok {
				return true
			}
		}
		return false
	}
	best, bestScore := 0, 0
	for _, m := range classifyTopicLine.FindAllStringSubmatch(system, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			continue
		}
		name := strings.TrimSpace(m[2])
		var cues []string
		for _, w := range foldWords(m[3]) {
			if len(w) >= 6 {
				cues = append(cues, w[:len(w)-1]) // a crude stem: "illnesses" meets "illness"
			}
		}
		cues = append(cues, c.Rules[name]...)
		seen := map[string]bool{}
		score := 0
		for _, cue := range cues {
			if !seen[cue] && has(cue) {
				seen[cue] = true
				score++
			}
		}
		if score > bestScore {
			best, bestScore = n, score
		}
	}
	if bestScore < max(c.MinScore, 1) {
		return 0
	}
	return best
}
