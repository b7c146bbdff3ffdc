package guard

import "strings"

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// scanEmails finds local@domain.tld from every '@'.
func scanEmails(s string, dst []Match) []Match {
	from := 0
	for {
		k := strings.IndexByte(s[from:], '@')
		if k < 0 {
			return dst
		}
		at := from + k
		from = at + 1
		start := at
		for start > 0 && isLocal(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		if start == at {
			continue
		}
		end := at + 1
		for end < len(s) && (isAlnum(s[end]) || s[end] == '.' || s[end] == '-') {
			end++
		}
		for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		if !domainOK(s[at+1 : end]) {
			continue
		}
		dst = append(dst, Match{Type: EntityEmail, Start: start, End: end})
		from = end
	}
}

// domainOK accepts host names with at least two labels and an alphabetic top-level label.
func domainOK(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 || strings.Contains(d, "..") || d[0] == '.' || d[0] == '-' {
		return false
	}
	for _, c := range []byte(d[dot+1:]) {
		if !isUpper(c) && !isLower(c) {
			return false
		}
	}
	return true
}

func isURLByte(c byte) bool {
	return c > ' ' && c != '"' && c != '<' && c != '>' && c != '`' && c != '\\' && c != '{' && c != '}' && c != '|' && c != '^' && c < 0x7f
}

// scanURLs finds scheme://host... and www.host... URLs, leaving trailing punctuation outside.
func scanURLs(s string, dst []Match) []Match {
	from := 0
	for from < len(s) {
		k := strings.Index(s[from:], "://")
		w := strings.Index(s[from:], "www.")
		if k < 0 && w < 0 {
			break
		}
		var start, hostAt int
		if k >= 0 && (w < 0 || k < w) {
			colon := from + k
			start = colon
			for start > 0 && (isAlnum(s[start-1]) || s[start-1] == '+' || s[start-1] == '.' || s[start-1] == '-') {
				start--
			}
			for start < colon && !isUpper(s[start]) && !isLower(s[start]) {
				start++
			}
			hostAt = colon + 3
			from = hostAt
			if start == colon {
				continue
			}
		} else {
			start = from + w
			hostAt = start + 4
			from = hostAt
			if start > 0 && (isAlnum(s[start-1]) || s[start-1] == '.' || s[start-1] == '/') {
				continue
			}
		}
		end := hostAt
		for end < len(s) && isURLByte(s[end]) {
			end++
		}
		end = trimURL(s, hostAt, end)
		if end == hostAt || !isAlnum(s[hostAt]) && s[hostAt] != '[' {
			continue
		}
		dst = append(dst, Match{Type: EntityURL, Start: start, End: end})
		from = end
	}
	return dst
}

// trimURL drops trailing sentence punctuation and a closing bracket without its opener.
func trimURL(s string, from, end int) int {
	for end > from {
		c := s[end-1]
		switch c {
		case '.', ',', ';', ':', '!', '?', '\'', '*':
			end--
			continue
		case ')', ']':
			open := byte('(')
			if c == ']' {
				open = '['
			}
			if strings.Count(s[from:end], string(open)) < strings.Count(s[from:end], string(c)) {
				end--
				continue
			}
		}
		break
	}
	return end
}
