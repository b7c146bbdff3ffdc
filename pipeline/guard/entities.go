package guard

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Entity types the sensitive-information policy detects, named like Amazon Bedrock's PII types.
const (
	EntityEmail        = "EMAIL"
	EntityPhone        = "PHONE"
	EntityCreditCard   = "CREDIT_CARD"
	EntityUSSSN        = "US_SSN"
	EntityIPAddress    = "IP_ADDRESS"
	EntityAWSAccessKey = "AWS_ACCESS_KEY"
	EntityAWSSecretKey = "AWS_SECRET_KEY"
	EntityIBAN         = "IBAN"
	EntityURL          = "URL"
)

// Entities lists every built-in entity type.
var Entities = []string{EntityEmail, EntityPhone, EntityCreditCard, EntityUSSSN, EntityIPAddress,
	EntityAWSAccessKey, EntityAWSSecretKey, EntityIBAN, EntityURL}

// entity indexes the built-in types in a detector's switch set.
type entity uint8

const (
	entEmail entity = iota
	entPhone
	entCreditCard
	entSSN
	entIP
	entAccessKey
	entSecretKey
	entIBAN
	entURL
	numEntities
)

func entityIndex(name string) (entity, bool) {
	i := slices.Index(Entities, name)
	return entity(i), i >= 0
}

// Match is one detected entity: its type and the byte range [Start, End) of the text.
type Match struct {
	Type       string
	Start, End int
}

// CustomPattern is a named regular expression detected beside the built-in entity types.
type CustomPattern struct {
	Name string
	Re   *regexp.Regexp
}

// Detector finds sensitive entities in text. Its zero value detects nothing; it is immutable
// after NewDetector and safe for concurrent use.
type Detector struct {
	on         [numEntities]bool
	custom     []CustomPattern
	tokens     bool          // any entity found from token starts
	phonePlans []*numberPlan // numbering plans of the regions whose national formats count
}

// NewDetector returns a detector of the named built-in types (see Entities) and the custom
// patterns, reading national phone formats of DefaultPhoneRegions. It reports the first
// unknown type name.
func NewDetector(types []string, custom []CustomPattern) (*Detector, error) {
	return NewDetectorWithRegions(types, custom, nil)
}

// NewDetectorWithRegions is NewDetector reading national phone formats of the given ISO 3166-1
// regions (DefaultPhoneRegions when empty); international numbers (+CC, 00CC) of every
// country are read whatever the regions. It reports the first unknown type or region.
func NewDetectorWithRegions(types []string, custom []CustomPattern, phoneRegions []string) (*Detector, error) {
	d := &Detector{custom: custom}
	if len(phoneRegions) == 0 {
		phoneRegions = DefaultPhoneRegions
	}
	var err error
	if d.phonePlans, err = nationalPlans(phoneRegions); err != nil {
		return nil, err
	}
	for _, t := range types {
		i, ok := entityIndex(t)
		if !ok {
			return nil, &UnknownEntityError{Name: t}
		}
		d.on[i] = true
	}
	d.tokens = d.on[entPhone] || d.on[entCreditCard] || d.on[entSSN] || d.on[entIP] ||
		d.on[entAccessKey] || d.on[entSecretKey] || d.on[entIBAN]
	return d, nil
}

// UnknownEntityError names an entity type that is neither built in nor a custom pattern.
type UnknownEntityError struct{ Name string }

func (e *UnknownEntityError) Error() string {
	return "unknown entity type " + e.Name + " (use one of " + strings.Join(Entities, ", ") +
		" or add a custom pattern with that name)"
}

// Detect appends the entities found in s to dst and returns it: matches are sorted by Start
// and never overlap (an earlier, then longer, match wins).
func (d *Detector) Detect(s string, dst []Match) []Match {
	base := len(dst)
	if d.on[entEmail] {
		dst = scanEmails(s, dst)
	}
	if d.on[entURL] {
		dst = scanURLs(s, dst)
	}
	if d.tokens {
		dst = d.scanTokens(s, dst)
	}
	for _, c := range d.custom {
		for _, loc := range c.Re.FindAllStringIndex(s, -1) {
			if loc[1] > loc[0] {
				dst = append(dst, Match{Type: c.Name, Start: loc[0], End: loc[1]})
			}
		}
	}
	found := dst[base:]
	if len(found) < 2 {
		return dst
	}
	slices.SortFunc(found, func(a, b Match) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	keep, end := 0, -1
	for _, m := range found {
		if m.Start >= end {
			found[keep] = m
			keep++
			end = m.End
		}
	}
	return dst[:base+keep]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isUpper(c) || isLower(c) }
func isHex(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
func isB64(c byte) bool { return isAlnum(c) || c == '/' || c == '+' }

// scanTokens tries the token-shaped detectors at every token start: a byte whose predecessor
// is not a letter or digit.
func (d *Detector) scanTokens(s string, dst []Match) []Match {
	for i := 0; i < len(s); i++ {
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		end, typ := d.at(s, i)
		if end > i {
			dst = append(dst, Match{Type: typ, Start: i, End: end})
			i = end - 1
		}
	}
	return dst
}

// at returns the end of the longest entity starting at token start i, or -1.
func (d *Detector) at(s string, i int) (int, string) {
	best, typ := -1, ""
	try := func(end int, t string) {
		if end > best {
			best, typ = end, t
		}
	}
	c := s[i]
	// A number glued to a longer code on its left ("12345-678-90-1234") is not an entity.
	gluedLeft := i >= 2 && (s[i-1] == '-' || s[i-1] == '.') && isAlnum(s[i-2])
	switch {
	case isDigit(c):
		if !gluedLeft {
			if d.on[entCreditCard] {
				try(creditCardAt(s, i), EntityCreditCard)
			}
			if d.on[entSSN] {
				try(ssnAt(s, i), EntityUSSSN)
			}
			if d.on[entIP] {
				try(ipv4At(s, i), EntityIPAddress)
			}
			// Tried last and only when it could win: the check is the costliest.
			if d.on[entPhone] && (best < 0 || d.longerRun(s, i, best)) {
				try(d.phoneAt(s, i), EntityPhone)
			}
		}
	case c == '+' || c == '(':
		if d.on[entPhone] {
			try(d.phoneAt(s, i), EntityPhone)
		}
	case isUpper(c):
		if d.on[entAccessKey] && c == 'A' {
			try(accessKeyAt(s, i), EntityAWSAccessKey)
		}
		if d.on[entIBAN] {
			try(ibanAt(s, i), EntityIBAN)
		}
	}
	if d.on[entIP] && (isHex(c) || c == ':') && !gluedLeft {
		try(ipv6At(s, i), EntityIPAddress)
	}
	if d.on[entSecretKey] && isB64(c) {
		try(secretKeyAt(s, i), EntityAWSSecretKey)
	}
	return best, typ
}

// longerRun reports whether the digits, separators and brackets from i run past end, so that
// a phone number there would be longer than the entity already found.
func (d *Detector) longerRun(s string, i, end int) bool {
	for j := i; j < len(s) && j <= end; j++ {
		c := s[j]
		if !isDigit(c) && c != ' ' && c != '-' && c != '.' && c != '/' && c != '(' && c != ')' {
			return false
		}
	}
	return end < len(s)
}

// endOK reports whether an entity may end at e: the next byte does not continue a word or a
// number ("123-45-6789-0" is not an SSN).
func endOK(s string, e int) bool {
	if e >= len(s) {
		return true
	}
	c := s[e]
	if isAlnum(c) {
		return false
	}
	if (c == '-' || c == '.' || c == '/') && e+1 < len(s) && isDigit(s[e+1]) {
		return false
	}
	return true
}

// digitsAt returns the end of the run of digits starting at i.
func digitsAt(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// ipv4At matches a dotted quad of 0-255 without leading zeros.
func ipv4At(s string, i int) int {
	j := i
	for part := range 4 {
		e := digitsAt(s, j)
		n := e - j
		if n == 0 || n > 3 || (n > 1 && s[j] == '0') {
			return -1
		}
		v := 0
		for _, c := range []byte(s[j:e]) {
			v = v*10 + int(c-'0')
		}
		if v > 255 {
			return -1
		}
		j = e
		if part < 3 {
			if j >= len(s) || s[j] != '.' {
				return -1
			}
			j++
		}
	}
	if !endOK(s, j) {
		return -1
	}
	return j
}

// ipv6At matches an IPv6 address (with :: compression or an embedded IPv4 tail).
func ipv6At(s string, i int) int {
	j, colons := i, 0
	for j < len(s) && j-i < 45 && (isHex(s[j]) || s[j] == ':' || s[j] == '.') {
		if s[j] == ':' {
			colons++
		}
		j++
	}
	if colons < 2 {
		return -1
	}
	for j > i && (s[j-1] == '.' || (s[j-1] == ':' && !(j-2 >= i && s[j-2] == ':'))) {
		j--
	}
	if j < len(s) && isAlnum(s[j]) {
		return -1
	}
	a, err := netip.ParseAddr(s[i:j])
	if err != nil || !a.Is6() {
		return -1
	}
	return j
}

// awsKeyPrefixes are the four-letter prefixes of AWS access key ids (AKIA long-term, ASIA
// temporary, and the unique-id prefixes of other principals).
var awsKeyPrefixes = []string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA"}

// accessKeyAt matches an AWS access key id: a known prefix and 16 upper-case letters or digits.
func accessKeyAt(s string, i int) int {
	if i+20 > len(s) || !slices.Contains(awsKeyPrefixes, s[i:i+4]) {
		return -1
	}
	for k := i + 4; k < i+20; k++ {
		if !isUpper(s[k]) && !isDigit(s[k]) {
			return -1
		}
	}
	if i+20 < len(s) && isAlnum(s[i+20]) {
		return -1
	}
	return i + 20
}

// secretKeyAt matches an AWS secret access key: exactly 40 base64 characters on their own,
// with upper and lower case, a digit or symbol, and the spread of characters of a random key
// (which words, paths and hex digests lack).
func secretKeyAt(s string, i int) int {
	if i > 0 && isB64(s[i-1]) || i+40 > len(s) {
		return -1
	}
	if i+40 < len(s) && (isB64(s[i+40]) || s[i+40] == '=') {
		return -1
	}
	var seen [128]bool
	distinct := 0
	upper, lower, other := false, false, false
	for k := i; k < i+40; k++ {
		c := s[k]
		if !isB64(c) {
			return -1
		}
		switch {
		case isUpper(c):
			upper = true
		case isLower(c):
			lower = true
		default:
			other = true
		}
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	if !upper || !lower || !other || distinct < 22 {
		return -1
	}
	return i + 40
}

// ibanLengths is the IBAN length of each country of the IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// ibanAt matches an IBAN, compact or printed in groups of four, of its country's length and
// with valid check digits (ISO 7064 mod 97-10).
func ibanAt(s string, i int) int {
	if i+4 > len(s) || !isUpper(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return -1
	}
	want, ok := ibanLengths[s[i:i+2]]
	if !ok {
		return -1
	}
	var buf [34]byte
	n, j := 0, i
	for n < want {
		if j >= len(s) {
			return -1
		}
		c := s[j]
		if c == ' ' && n > 0 && n%4 == 0 && j+1 < len(s) && isAlnum(s[j+1]) {
			j++
			continue
		}
		if !isUpper(c) && !isDigit(c) {
			return -1
		}
		buf[n] = c
		n++
		j++
	}
	if j < len(s) && isAlnum(s[j]) {
		return -1
	}
	// Move the first four characters to the end and reduce mod 97, letters as 10..35.
	rem := 0
	for k := range want {
		c := buf[(k+4)%want]
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	if rem != 1 {
		return -1
	}
	return j
}
