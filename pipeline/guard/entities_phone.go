package guard

import (
	"bytes"
	"slices"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Phone numbers are found in two steps. A cheap scan at each token start reads a phone-shaped
// run (an optional + and digit groups joined by single spaces, dashes, dots, a slash or
// brackets, such as "(0)") and rejects runs no number is written like: fewer than 7 digits, a
// single-digit last group (ISBNs, check digits), dates, dotted quads, and bare digit runs that
// no phone word ("tel", "phone", "Handy"...) precedes. Only then is the run checked against
// libphonenumber's numbering plan (github.com/nyaruka/phonenumbers): an international number
// (+CC or 00CC) against its country's plan, a national one against the plan of each default
// region whose national format it is written in (a trunk 0 for the UK, Germany, France...; an
// optional 1 in North America; none in Spain or Italy). The check is the plan's national-number
// pattern and lengths, compiled once per region: the library's per-type validation costs
// 5-20 µs a number, too much for the detector's throughput.

// DefaultPhoneRegions are the regions whose national formats are recognized when none are
// configured: North America, the UK and Ireland, the larger EU countries, Switzerland, India
// and Australia.
var DefaultPhoneRegions = []string{"US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT", "IT", "IN", "AU"}

// numberPlan is a region's national-number pattern and lengths, compiled on first use.
type numberPlan struct {
	region  string
	cc      int
	prefix  string // national (trunk) prefix, "" when the region has none
	pattern string
	lengths []int32
	once    sync.Once
	dfa     *digitDFA
}

func (p *numberPlan) matches(nsn []byte) bool {
	if len(p.lengths) > 0 && !slices.Contains(p.lengths, int32(len(nsn))) {
		return false
	}
	p.once.Do(p.compile)
	return p.dfa.match(nsn)
}

// compile builds the plan's automaton; libphonenumber's patterns are digits-only RE2.
func (p *numberPlan) compile() {
	d, err := newDigitDFA(p.pattern)
	if err != nil {
		panic("phone plan " + p.region + ": " + err.Error())
	}
	p.dfa = d
}

// plans indexes libphonenumber's metadata by region and, merged, by calling code (the NANP's
// regions under 1, the UK's and the Crown dependencies' under 44); it is built once.
var plans = sync.OnceValue(func() (out struct {
	byRegion map[string]*numberPlan
	byCode   map[int]*numberPlan
}) {
	out.byRegion, out.byCode = map[string]*numberPlan{}, map[int]*numberPlan{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		panic("phonenumbers metadata: " + err.Error())
	}
	for _, m := range coll.GetMetadata() {
		gd := m.GetGeneralDesc()
		if gd.GetNationalNumberPattern() == "" {
			continue
		}
		// A number is valid when it is of one of the plan's types (as in the library's
		// IsValidNumber): the union of the type patterns, within the plan's lengths.
		var types []string
		for _, t := range []*phonenumbers.PhoneNumberDesc{m.GetFixedLine(), m.GetMobile(), m.GetTollFree(), m.GetPremiumRate(),
			m.GetSharedCost(), m.GetVoip(), m.GetPersonalNumber(), m.GetPager(), m.GetUan(), m.GetVoicemail()} {
			if pat := t.GetNationalNumberPattern(); pat != "" && pat != "NA" {
				types = append(types, "(?:"+pat+")")
			}
		}
		if len(types) == 0 {
			continue
		}
		p := &numberPlan{region: m.GetId(), cc: int(m.GetCountryCode()), prefix: m.GetNationalPrefix(),
			pattern: strings.Join(types, "|"), lengths: gd.GetPossibleLength()}
		out.byRegion[p.region] = p
		c, ok := out.byCode[p.cc]
		if !ok {
			out.byCode[p.cc] = &numberPlan{region: p.region, cc: p.cc, prefix: p.prefix, pattern: p.pattern, lengths: slices.Clone(p.lengths)}
			continue
		}
		c.pattern += "|" + p.pattern
		for _, l := range p.lengths {
			if !slices.Contains(c.lengths, l) {
				c.lengths = append(c.lengths, l)
			}
		}
	}
	return out
})

// UnknownRegionError names a phone region libphonenumber does not know.
type UnknownRegionError struct{ Region string }

// Error names the region and the kind of code expected.
func (e *UnknownRegionError) Error() string {
	return "unknown phone region " + e.Region + " (use ISO 3166-1 alpha-2 codes such as US, GB, DE)"
}

// CheckPhoneRegions reports the first region that is not an ISO 3166-1 code libphonenumber has
// a numbering plan for.
func CheckPhoneRegions(regions []string) error {
	for _, r := range regions {
		if _, ok := plans().byRegion[strings.ToUpper(r)]; !ok {
			return &UnknownRegionError{Region: r}
		}
	}
	return nil
}

// nationalPlans returns the plans of regions, one per calling code (the first region of a
// code stands for the others: the US for Canada).
func nationalPlans(regions []string) ([]*numberPlan, error) {
	if err := CheckPhoneRegions(regions); err != nil {
		return nil, err
	}
	var out []*numberPlan
	seen := map[int]bool{}
	for _, r := range regions {
		cc := plans().byRegion[strings.ToUpper(r)].cc
		if !seen[cc] {
			seen[cc] = true
			p := plans().byCode[cc]
			p.once.Do(p.compile) // now rather than in the first job
			out = append(out, p)
		}
	}
	return out, nil
}

// phoneRun is a phone-shaped run of text.
type phoneRun struct {
	digits  [20]byte
	n       int
	ends    [12]int // byte end of each digit group
	nd      [12]int // digits up to the end of each group
	glen    [12]int // length of each group
	spaceAt [12]bool
	ng      int
	plus    bool
	trunk   bool // a bracketed trunk prefix "(0)" after the country code, left out of digits
	seps    int
	dots    int
}

// phoneRunAt reads the phone-shaped run at token start i.
func phoneRunAt(s string, i int, r *phoneRun) bool {
	*r = phoneRun{}
	j := i
	if s[j] == '+' {
		r.plus = true
		j++
		if j >= len(s) || s[j] < '1' || s[j] > '9' {
			return false
		}
	}
	open := false
	for j < len(s) && r.ng < len(r.ends) {
		c := s[j]
		switch {
		case isDigit(c):
			k := digitsAt(s, j)
			g := k - j
			if open && r.plus && r.ng == 1 && g == 1 && c == '0' && k < len(s) && s[k] == ')' {
				r.trunk = true // "+44 (0)161": the trunk 0 is not dialled from abroad
			} else {
				if r.n+g > len(r.digits) {
					return r.ng > 0 && !open
				}
				copy(r.digits[r.n:], s[j:k])
				r.n += g
				r.glen[r.ng], r.ends[r.ng], r.nd[r.ng] = g, k, r.n
				r.ng++
			}
			j = k
			if open {
				if j >= len(s) || s[j] != ')' {
					return false
				}
				open = false
				j++
				if r.ng > 0 {
					r.ends[r.ng-1] = j
				}
			}
			continue
		case c == '(' && !open && j+1 < len(s) && isDigit(s[j+1]) && (j == i || s[j-1] == ' '):
			open = true
			r.seps++
			j++
			continue
		case c == ' ' && j+2 < len(s) && s[j+1] == '/' && s[j+2] == ' ' && j > i && isDigit(s[j-1]) && j+3 < len(s) && isDigit(s[j+3]):
			// "040 / 123456-78": a spaced slash after the area code.
			r.seps++
			j += 3
			continue
		case c == ' ' || c == '-' || c == '.' || c == '/':
			if j > i && (isDigit(s[j-1]) || s[j-1] == ')') && j+1 < len(s) && (isDigit(s[j+1]) || s[j+1] == '(' && c == ' ') {
				r.seps++
				if c == '.' {
					r.dots++
				}
				if r.ng > 0 && c == ' ' {
					r.spaceAt[r.ng-1] = true
				}
				j++
				continue
			}
		}
		break
	}
	return r.ng > 0 && !open
}

// phoneCues are words that announce a phone number, so that a bare digit run after one is read
// as a number.
var phoneCues = []string{"tel", "phone", "mobile", "mob", "cell", "fax", "call", "handy", "telefon", "telefono",
	"teléfono", "téléphone", "tél", "móvil", "cellulare", "telefoon", "whatsapp", "sms", "ph:", "tlf"}

// referenceCues begin words that announce a reference rather than a phone number
// ("réf. 0800-123-45", "Kundennummer 0049123456"): a number right after one is not a phone.
var referenceCues = []string{"ref", "réf", "order", "invoice", "nr", "no", "n", "id", "sku", "art", "ticket", "case",
	"commande", "pedido", "auftrag", "bestell", "kunden", "vertrag", "contract", "policy", "claim", "dossier", "factura",
	"facture", "rechnung", "fattura", "ordine", "tracking", "serial", "version", "build", "isbn"}

// referenceBefore reports whether the word right before i begins with a reference cue.
func referenceBefore(s string, i int) bool {
	end := i
	for end > 0 && end > i-4 && (s[end-1] == ' ' || s[end-1] == ':' || s[end-1] == '#' || s[end-1] == '.') {
		end-- // "ref: ", "No. ", "#"; a comma or bracket ends the reference
	}
	if end > 1 && s[end-2] == 0xc2 && s[end-1] == 0xb0 { // "n°"
		end -= 2
	}
	start := end
	for start > 0 && (isUpper(s[start-1]) || isLower(s[start-1]) || s[start-1] >= 0x80) {
		start--
	}
	if start == end || end-start > 24 {
		return false
	}
	var buf [24]byte
	w := buf[:0]
	for k := start; k < end; k++ {
		c := s[k]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		w = append(w, c)
	}
	for _, cue := range referenceCues {
		// Short cues ("no", "n" of "n°", "id") are whole words; longer ones begin words.
		if bytes.HasPrefix(w, []byte(cue)) && (len(cue) > 2 || len(w) == len(cue)) {
			return len(cue) > 1 || end < i && s[end] == 0xc2 // "n" only as "n°"
		}
	}
	return false
}

// cueBefore returns the distance back from i to the nearest of the cues that starts a word
// within 24 bytes, or -1.
func cueBefore(s string, i int, cues []string) int {
	from := max(0, i-24)
	var buf [25]byte
	w := append(buf[:0], ' ')
	for k := from; k < i; k++ {
		c := s[k]
		if isUpper(c) {
			c += 'a' - 'A'
		}
		w = append(w, c)
	}
	best := -1
	for _, cue := range cues {
		for rest, at := w, 0; ; {
			k := bytes.Index(rest, []byte(cue))
			if k < 0 {
				break
			}
			if c := w[at+k-1]; !isLower(c) && c < 0x80 {
				if d := len(w) - (at + k); best < 0 || d < best {
					best = d
				}
			}
			rest, at = rest[k+1:], at+k+1
		}
	}
	return best
}

// phoneCueBefore reports whether a phone word starts shortly before i (at a word start:
// "Hotel" holds no "tel").
func phoneCueBefore(s string, i int) bool { return cueBefore(s, i, phoneCues) >= 0 }

// phoneAt matches a phone number at token start i: the longest prefix of the phone-shaped run
// (cut at spaces) that is a valid number of the default regions, or of its country when
// written with +CC or 00CC.
func (d *Detector) phoneAt(s string, i int) int {
	// A run inside a grouped number or code ("1234 5698 7654 32", "DE89 3704 0044") was tried
	// from its start.
	if i >= 2 && s[i-1] == ' ' && isDigit(s[i-2]) {
		k := i - 2
		for k > 0 && isAlnum(s[k-1]) {
			k--
		}
		if i-1-k <= 5 && (k == 0 || s[k-1] == ' ') {
			return -1
		}
	}
	var r phoneRun
	if !phoneRunAt(s, i, &r) {
		return -1
	}
	cue := -1 // whether a phone word precedes; found out when needed
	hasCue := func() bool {
		if cue < 0 {
			cue = 0
			if phoneCueBefore(s, i) {
				cue = 1
			}
		}
		return cue == 1
	}
	// A national number does not start with a year ("2023-0815-4711").
	if !r.plus && r.glen[0] == 4 && (r.digits[0] == '1' && r.digits[1] == '9' || r.digits[0] == '2' && r.digits[1] == '0') {
		return -1
	}
	ref := -1 // whether a reference word precedes; found out when needed
	for k := r.ng; k >= 1 && r.nd[k-1] >= 7; k-- {
		if k < r.ng && !r.spaceAt[k-1] {
			continue // a run is cut only where a space parts its groups
		}
		if e := r.ends[k-1]; !endOK(s, e) || e+1 < len(s) && s[e] == ':' && isDigit(s[e+1]) || r.glen[k-1] == 1 || dateOrQuad(&r, k) {
			continue
		}
		digits := r.digits[:r.nd[k-1]]
		// A bare digit run is a number only after a phone word: it is more often an order number.
		if !r.plus && k == 1 && s[i] != '(' && !hasCue() {
			continue
		}
		// AAA-GG-SSSS is how social security numbers are written, not phone numbers.
		if !r.plus && k == 3 && r.glen[0] == 3 && r.glen[1] == 2 && r.glen[2] == 4 {
			continue
		}
		if !r.plus && ref < 0 {
			ref = 0
			if referenceBefore(s, i) {
				ref = 1
			}
		}
		if ref == 1 {
			return -1
		}
		if d.validPhone(digits, r.plus, r.trunk, !r.plus && digits[0] != '0' && hasCue(), nanpGrouping(&r, k)) {
			return r.ends[k-1]
		}
	}
	return -1
}

// nanpGrouping reports whether the first k groups of r are grouped the North American way:
// (NXX) NXX-XXXX, NXX-NXX-XXXX, 1-NXX-NXX-XXXX, or ten bare digits (after a phone word).
func nanpGrouping(r *phoneRun, k int) bool {
	g := r.glen[:k]
	switch k {
	case 1:
		return g[0] == 10 || g[0] == 11 && r.digits[0] == '1'
	case 3:
		return g[0] == 3 && g[1] == 3 && g[2] == 4
	case 4:
		return g[0] == 1 && r.digits[0] == '1' && g[1] == 3 && g[2] == 3 && g[3] == 4
	}
	return false
}

// dateOrQuad reports whether the first k groups of r are shaped like a date (2024-11-23,
// 05.12.2024) or a dotted quad.
func dateOrQuad(r *phoneRun, k int) bool {
	if r.plus {
		return false
	}
	g := r.glen[:k]
	if k >= 3 && (g[0] == 4 && g[1] <= 2 && g[2] <= 2 || g[0] <= 2 && g[1] <= 2 && g[2] == 4) {
		return true
	}
	return k == 4 && r.dots >= 3 && g[0] <= 3 && g[1] <= 3 && g[2] <= 3 && g[3] <= 3
}

// validPhone checks digits against the numbering plans: as an international number when
// written with + or 00, else as a national number of each default region.
func (d *Detector) validPhone(digits []byte, plus, trunk, cue, nanp bool) bool {
	intl := plus
	if !plus && len(digits) > 2 && digits[0] == '0' && digits[1] == '0' {
		intl, digits = true, digits[2:]
	}
	if intl {
		cc := 0
		for k := 1; k <= 3 && k < len(digits); k++ {
			cc = cc*10 + int(digits[k-1]-'0')
			p, ok := plans().byCode[cc]
			if !ok {
				continue
			}
			nsn := digits[k:]
			// "+44 020 ...": a trunk 0 written where it should be left out.
			return p.matches(nsn) || !trunk && p.prefix == "0" && len(nsn) > 1 && nsn[0] == '0' && p.matches(nsn[1:])
			// (calling codes are prefix-free: no longer code can match)
		}
		return false
	}
	if trunk || len(digits) > 13 {
		return false
	}
	for _, p := range d.phonePlans {
		pre := p.prefix
		if pre != "" && len(digits) > len(pre) && string(digits[:len(pre)]) == pre && p.matches(digits[len(pre):]) {
			return true
		}
		// Without its trunk prefix a number is national only where the prefix is optional (NANP)
		// or absent (Spain, Italy), or when a phone word announces it.
		if p.cc == 1 {
			// North American numbers are written 3-3-4, after an optional 1.
			if !nanp {
				continue
			}
			if len(digits) == 11 && digits[0] == '1' && p.matches(digits[1:]) || p.matches(digits) {
				return true
			}
			continue
		}
		if (pre == "" || cue) && p.matches(digits) {
			return true
		}
	}
	return false
}
