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

// Prompt-attack vocabulary. An instruction override is a verb of overriding followed, across
// only modifier words, by something the model was told; a role-play jailbreak is a role cue and
// a lifting of limits in the same text; some phrases are attacks on their own.
var (
	overrideVerbs = set(`ignore ignoring disregard disregarding forget forgetting override overriding
		bypass bypassing skip discard abandon drop neglect`)
	overrideTargets = set(`instruction instructions rule rules prompt prompts guideline guidelines
		direction directions directive directives constraint constraints restriction restrictions
		policy policies guardrail guardrails filter filters programming training safeguards
		everything`)
	overrideModifiers = set(`all any the your my our previous prior above earlier preceding former
		existing original initial system safety given these those every of that you were have been
		content developer and or before this hidden default current old`)
	attackPhrases = []string{
		"do anything now", "developer mode enabled", "enable developer mode", "dan mode", "jailbreak mode",
		"jailbroken", "reveal your system prompt", "print your system prompt", "show me your system prompt",
		"repeat your system prompt", "what is your system prompt", "output your instructions",
		"reveal your instructions", "repeat the text above", "ignore the above",
	}
	rolePhrases = []string{
		"pretend to be", "pretend you are", "pretend that you are", "act as", "acting as", "you are now",
		"roleplay as", "role play as", "from now on you", "from now on, you", "imagine you are",
		"stay in character", "you will now be", "play the role of", "simulate being",
	}
	jailbreakPhrases = []string{
		"dan", "no restrictions", "without restrictions", "no rules", "no limits", "without limits",
		"unfiltered", "uncensored", "unrestricted", "no filters", "without filters", "no filter",
		"developer mode", "evil", "no ethical", "no ethics", "no morals", "amoral", "not bound",
		"without any restrictions", "no guidelines", "ignore ethics", "jailbreak",
	}
)

func set(list string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(list) {
		m[w] = struct{}{}
	}
	return m
}

// attackDetector finds prompt attacks in a text's words. Immutable and safe for concurrent use.
type attackDetector struct {
	phrases, roles, jailbreaks *phraseSet
}

func newAttackDetector() *attackDetector {
	d := &attackDetector{phrases: newPhraseSet(), roles: newPhraseSet(), jailbreaks: newPhraseSet()}
	for _, p := range attackPhrases {
		d.phrases.add(p)
	}
	for _, p := range rolePhrases {
		d.roles.add(p)
	}
	for _, p := range jailbreakPhrases {
		d.jailbreaks.add(p)
	}
	return d
}

// count returns how many attack patterns ws holds.
func (d *attackDetector) count(ws []word) int {
	n := 0
	for i, w := range ws {
		if _, ok := overrideVerbs[w.w]; !ok {
			continue
		}
		for j := i + 1; j < len(ws) && j <= i+6; j++ {
			if _, ok := overrideTargets[ws[j].w]; ok {
				n++
				break
			}
			if _, ok := overrideModifiers[ws[j].w]; !ok {
				break
			}
		}
	}
	d.phrases.find(ws, func(int, int) { n++ })
	roles, jail := 0, 0
	d.roles.find(ws, func(int, int) { roles++ })
	if roles > 0 {
		d.jailbreaks.find(ws, func(int, int) { jail++ })
		if jail > 0 {
			n++
		}
	}
	return n
}

// topicMatcher matches one denied topic: its name and examples as phrases, and keywords
// derived from the name, definition and examples.
type topicMatcher struct {
	name        string
	phrases     *phraseSet
	keywords    map[string]struct{}
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
	return m
}

// count returns the phrase hits in ws, or the keyword hits when they reach the minimum.
// stems holds the stem of each content word of ws ("" for the others).
func (m *topicMatcher) count(ws []word, stems []string) int {
	n := 0
	m.phrases.find(ws, func(int, int) { n++ })
	if n > 0 {
		return n
	}
	var seen []string
	for _, s := range stems {
		if s == "" {
			continue
		}
		if _, ok := m.keywords[s]; ok && !contains(seen, s) {
			seen = append(seen, s)
		}
	}
	if len(seen) >= m.minKeywords {
		return len(seen)
	}
	return 0
}
