package guard

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// word is one word of a text: its lower-case form and its byte range in the text.
type word struct {
	w          string
	start, end int
}

// words splits s into words (runs of letters, digits and inner apostrophes), lower-cased.
// Words of ASCII lower-case text share s's memory.
func words(s string, dst []word) []word {
	if cap(dst) == 0 {
		dst = make([]word, 0, len(s)/6+4)
	}
	i := 0
	for i < len(s) {
		// Skip to the next word character.
		c := s[i]
		if c < utf8.RuneSelf {
			if !isAlnum(c) {
				i++
				continue
			}
		} else {
			r, n := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				i += n
				continue
			}
		}
		start, lower := i, true
		for i < len(s) {
			c := s[i]
			if c < utf8.RuneSelf {
				if isAlnum(c) {
					if isUpper(c) {
						lower = false
					}
					i++
					continue
				}
				if c == '\'' && i+1 < len(s) && isAlnum(s[i+1]) && i > start {
					i++
					continue
				}
				break
			}
			r, n := utf8.DecodeRuneInString(s[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) {
				break
			}
			lower = false
			i += n
		}
		w := s[start:i]
		if !lower {
			w = strings.ToLower(w)
		}
		dst = append(dst, word{w: w, start: start, end: i})
	}
	return dst
}

// phraseSet matches phrases (sequences of lower-case words) against a text's words.
type phraseSet struct {
	// byFirst maps a phrase's first word to the phrases starting with it, longest first.
	byFirst map[string][][]string
}

func newPhraseSet() *phraseSet { return &phraseSet{byFirst: map[string][][]string{}} }

// add adds phrase, split into words the way texts are; empty phrases are ignored.
func (p *phraseSet) add(phrase string) {
	ws := words(phrase, nil)
	if len(ws) == 0 {
		return
	}
	seq := make([]string, len(ws))
	for i, w := range ws {
		seq[i] = w.w
	}
	list := p.byFirst[seq[0]]
	for _, have := range list {
		if equalWords(have, seq) {
			return
		}
	}
	at := len(list)
	for k, have := range list {
		if len(have) < len(seq) {
			at = k
			break
		}
	}
	list = append(list, nil)
	copy(list[at+1:], list[at:])
	list[at] = seq
	p.byFirst[seq[0]] = list
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (p *phraseSet) empty() bool { return p == nil || len(p.byFirst) == 0 }

// at returns the end of the longest phrase starting at ws[i], or -1.
func (p *phraseSet) at(ws []word, i int) int {
	for _, seq := range p.byFirst[ws[i].w] {
		if i+len(seq) > len(ws) {
			continue
		}
		ok := true
		for k := 1; k < len(seq); k++ {
			if ws[i+k].w != seq[k] {
				ok = false
				break
			}
		}
		if ok {
			return i + len(seq)
		}
	}
	return -1
}

// find calls hit for every phrase occurrence in ws with the range of words [i, j); matches do
// not overlap, and the longest phrase at a position wins.
func (p *phraseSet) find(ws []word, hit func(i, j int)) {
	if p.empty() {
		return
	}
	for i := 0; i < len(ws); i++ {
		for _, seq := range p.byFirst[ws[i].w] {
			if i+len(seq) > len(ws) {
				continue
			}
			ok := true
			for k := 1; k < len(seq); k++ {
				if ws[i+k].w != seq[k] {
					ok = false
					break
				}
			}
			if ok {
				hit(i, i+len(seq))
				i += len(seq) - 1
				break
			}
		}
	}
}

// stem reduces a lower-case word to a crude stem so that "diagnosing", "diagnosis" and
// "diagnose" meet: one common suffix is dropped and the rest cut to six letters.
func stem(w string) string {
	for _, suf := range [...]string{"ations", "ments", "ings", "ions", "ation", "ment", "ing", "ion", "ies", "es", "ed", "ly", "s"} {
		if len(w)-len(suf) >= 3 && strings.HasSuffix(w, suf) {
			w = w[:len(w)-len(suf)]
			break
		}
	}
	if len(w) > 6 {
		w = w[:6]
		for !utf8.ValidString(w) {
			w = w[:len(w)-1]
		}
	}
	return w
}

// contentWord reports whether w carries meaning for topic and grounding scores: not a stop
// word, and at least three characters or a number.
func contentWord(w string) bool {
	if len(w) < 3 {
		return len(w) > 0 && isDigit(w[0])
	}
	_, stop := stopWords[w]
	return !stop
}

// stopWords are English function words and the generic words of topic definitions.
var stopWords = func() map[string]struct{} {
	list := `the and for are but not you your yours all any can had her was one our out his has have
	him how its may new now old see two way who did get let put say she too use that this with from they
	them their there then than these those what when where which while will would could should shall
	about above after again against because been before being below between both down during each few
	further here into more most other over same some such only own very just also off once under until
	why whom whose does doing done were what's it's don't i'm i've you're we're they're isn't aren't
	wasn't weren't can't won't doesn't didn't haven't hasn't hadn't shouldn't wouldn't couldn't
	ours ourselves yourself yourselves himself herself itself themselves myself
	topic topics question questions questions content information advice related regarding include
	including includes something anything everything someone anyone everyone thing things give tell
	want need like know please help make made many much well even still back through across via per
	any every either neither whether within without upon onto toward towards among amongst`
	m := map[string]struct{}{}
	for _, w := range strings.Fields(list) {
		m[w] = struct{}{}
	}
	return m
}()

// stems returns the distinct stems of the content words of ws.
func stems(ws []word) map[string]struct{} {
	out := make(map[string]struct{}, len(ws))
	for _, w := range ws {
		if contentWord(w.w) {
			out[stem(w.w)] = struct{}{}
		}
	}
	return out
}
