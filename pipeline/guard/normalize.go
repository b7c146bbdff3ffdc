package guard

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text is normalized before prompt-attack matching, so that the same words written with
// invisible or look-alike characters meet the same patterns:
//
//   - Unicode tag characters (U+E0020-E007E), which some attacks use to smuggle invisible ASCII,
//     become that ASCII; other format characters (zero-width spaces and joiners, soft hyphens,
//     bidi controls, U+FEFF) are removed;
//   - NFKD compatibility decomposition (full-width and mathematical letters become plain
//     ones) with the combining marks dropped, so "instruções" and "précédentes" meet patterns
//     written "instrucoes" and "precedentes";
//   - Cyrillic and Greek letters that look like Latin ones become those (homoglyphs);
//   - case folding: lower case, and "ß" meets "ss".
//
// Pure ASCII text needs none of this and is used as it is.

// homoglyphs maps Cyrillic and Greek letters to the Latin letters they are drawn like.
var homoglyphs = map[rune]rune{
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't',
	'у': 'y', 'х': 'x', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'ɡ': 'g', 'һ': 'h', 'ԛ': 'q', 'ԝ': 'w',
	'А': 'a', 'В': 'b', 'Е': 'e', 'К': 'k', 'М': 'm', 'Н': 'h', 'О': 'o', 'Р': 'p', 'С': 'c', 'Т': 't', 'У': 'y',
	'Х': 'x', 'І': 'i', 'Ј': 'j', 'Ѕ': 's',
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u',
	'χ': 'x', 'Α': 'a', 'Β': 'b', 'Ε': 'e', 'Η': 'h', 'Ι': 'i', 'Κ': 'k', 'Μ': 'm', 'Ν': 'n', 'Ο': 'o', 'Ρ': 'p',
	'Τ': 't', 'Υ': 'y', 'Χ': 'x', 'Ζ': 'z',
	'ı': 'i', 'ł': 'l', 'ø': 'o', 'đ': 'd', 'ħ': 'h',
}

// isASCII reports whether s holds only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// normalizeText returns s normalized for matching as described above; ASCII text is returned
// as it is (words lower-cases it). Only the non-ASCII characters are decomposed, one by one,
// from the normalization tables: a multilingual 4 KB text costs a few microseconds.
func normalizeText(s string) string {
	if isASCII(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if isUpper(c) {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r >= 0xE0020 && r <= 0xE007E:
			b = appendFolded(b, rune(r-0xE0000))
		case unicode.Is(unicode.Cf, r):
			// invisible: dropped
		default:
			if d := norm.NFKD.PropertiesString(s[i:]).Decomposition(); d != nil {
				for _, dr := range string(d) {
					b = appendFolded(b, dr)
				}
			} else {
				b = appendFolded(b, r)
			}
		}
		i += n
	}
	return string(b)
}

// appendFolded appends r case-folded, mapped from a homoglyph and without combining marks.
func appendFolded(b []byte, r rune) []byte {
	switch {
	case unicode.Is(unicode.Mn, r):
		return b
	case r == 'ß' || r == 'ẞ':
		return append(b, "ss"...)
	}
	if h, ok := homoglyphs[r]; ok {
		r = h
	}
	return utf8.AppendRune(b, unicode.ToLower(r))
}
