package guard

// Recognizers of the entities people write in digits: payment cards (issuer prefix, grouping
// and Luhn digit), and US social security numbers (phone numbers are in entities_phone.go).

// creditCardAt matches 13 to 19 digits, bare or grouped by one kind of separator (space or
// dash) in the groupings issuers print, with a known issuer prefix and a valid Luhn digit.
// When more digit groups follow ("4111 1111 1111 1111 2024"), the longest valid prefix wins.
func creditCardAt(s string, i int) int {
	var digits [19]byte
	var groups, ends [6]int
	n, ng, j := 0, 0, i
	var sep byte
	for ng < len(groups) {
		e := digitsAt(s, j)
		g := e - j
		if n+g > len(digits) {
			break
		}
		copy(digits[n:], s[j:e])
		n += g
		groups[ng], ends[ng] = g, e
		ng++
		j = e
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) && (sep == 0 || s[j] == sep) {
			sep = s[j]
			j++
			continue
		}
		break
	}
	for k := ng; k >= 1; k-- {
		n = 0
		for _, g := range groups[:k] {
			n += g
		}
		if n < 13 || !endOK(s, ends[k-1]) || (k > 1 && !cardGrouping(groups[:k])) {
			continue
		}
		if issuerOK(digits[:n]) && luhn(digits[:n]) {
			return ends[k-1]
		}
	}
	return -1
}

// cardGrouping accepts 4-4-4-4(-1..3), 4-4-4-1..3 and the 4-6-5 / 4-6-4 of Amex and Diners.
func cardGrouping(g []int) bool {
	if len(g) == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4) {
		return true
	}
	for k, n := range g {
		last := k == len(g)-1
		if n != 4 && !(last && n >= 1 && n <= 3) {
			return false
		}
	}
	return len(g) >= 4
}

// issuerOK checks the issuer prefix against the lengths that issuer uses.
func issuerOK(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4':
		return n == 13 || n == 16 || n == 19
	case p2 == 34 || p2 == 37:
		return n == 15
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return n == 16
	case d[0] == '6':
		return n >= 16
	case p2 == 36 || p2 == 38 || p2 == 39 || p2 == 30:
		return n >= 14
	case p4 >= 3528 && p4 <= 3589:
		return n >= 16
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ssnAt matches AAA-GG-SSSS (dashes or spaces) with the SSA's validity rules: area not 000,
// 666 or 900-999, group not 00, serial not 0000, and not a number published in advertising.
func ssnAt(s string, i int) int {
	if i+11 > len(s) {
		return -1
	}
	t := s[i : i+11]
	sep := t[3]
	if (sep != '-' && sep != ' ') || t[6] != sep {
		return -1
	}
	for _, k := range [...]int{0, 1, 2, 4, 5, 7, 8, 9, 10} {
		if !isDigit(t[k]) {
			return -1
		}
	}
	area, group, serial := t[0:3], t[4:6], t[7:11]
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return -1
	}
	if area+group+serial == "078051120" || area+group+serial == "219099999" {
		return -1
	}
	if !endOK(s, i+11) {
		return -1
	}
	return i + 11
}
