package guard

import "strings"

// profanity is the managed word list of the word filter: common English profanity and its
// inflections. Matched as whole words, case-insensitively.
var profanity = strings.Fields(`
fuck fucks fucked fucker fuckers fucking fuckin motherfucker motherfuckers motherfucking
shit shits shitty shitting bullshit horseshit
cunt cunts
bitch bitches bitching
bastard bastards
asshole assholes arsehole arseholes
dick dicks dickhead dickheads
cock cocks cocksucker cocksuckers
pussy pussies
twat twats
wanker wankers
prick pricks
slut sluts whore whores
douchebag douchebags
jackass jackasses
goddamn goddamned
piss pissed pissing
crap crappy
bollocks
`)

// topicMatcher matches one denied topic: its name and examples as phrases, and keywords
// derived from the name, definition and examples.
type topicMatcher struct {
	name        string
	phrases     *phraseSet
	keywords    map[string]struct{}
	related     map[string]bool // keywords (true) and the member stems of the concepts they link
	minKeywords int
}

func newTopicMatcher(t Topic) *topicMatcher {
	m := &topicMatcher{name: t.Name, phrases: newPhraseSet(), keywords: map[string]struct{}{},
		minKeywords: max(t.MinKeywords, 1)}
	if t.MinKeywords == 0 {
		m.minKeywords = DefaultTopicMinKeywords
	}
	spaced := strings.NewReplacer("-", " ", "_", " ").Replace(t.Name)
	m.phrases.add(spaced)
	for _, ex := range t.Examples {
		m.phrases.add(ex)
	}
	for _, p := range t.Phrases {
		m.phrases.add(p)
	}
	for _, src := range append([]string{spaced, t.Definition}, t.Examples...) {
		for s := range stems(words(src, nil)) {
			m.keywords[s] = struct{}{}
		}
	}
	m.related = map[string]bool{}
	for s := range conceptStems(m.keywords) {
		m.related[s] = false
	}
	for s := range m.keywords {
		m.related[s] = true
	}
	return m
}

// count returns the phrase hits in ws, or the keyword hits when they reach the minimum, or the
// hits of keywords and concept words when those reach it in a request (see concepts.go).
// stems holds the stem of each content word of ws ("" for the others).
func (m *topicMatcher) count(ws []word, stems []string) int {
	n := 0
	m.phrases.find(ws, func(int, int) { n++ })
	if n > 0 {
		return n
	}
	var seen, related []string
	for _, s := range stems {
		if s == "" {
			continue
		}
		own, ok := m.related[s]
		if !ok || contains(related, s) {
			continue
		}
		related = append(related, s)
		if own {
			seen = append(seen, s)
		}
	}
	if len(seen) >= m.minKeywords {
		return len(seen)
	}
	if len(related) >= m.minKeywords {
		for _, w := range ws {
			if _, ok := requestCues[w.w]; ok {
				return len(related)
			}
		}
	}
	return 0
}
