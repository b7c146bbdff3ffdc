package guard

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// gen makes random valid entity values and filler text for property tests and benchmarks.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

func (g *gen) pick(list ...string) string { return list[g.r.IntN(len(list))] }

func (g *gen) letters(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

const lowerAZ = "abcdefghijklmnopqrstuvwxyz"
const upperAZ = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// value returns a random valid value of entity type typ.
func (g *gen) value(typ string) string {
	switch typ {
	case EntityEmail:
		return g.letters(1+g.r.IntN(8), lowerAZ) + g.pick("", ".", "_", "+") + g.letters(1+g.r.IntN(5), lowerAZ) +
			"@" + g.letters(2+g.r.IntN(8), lowerAZ) + "." + g.pick("com", "org", "io", "co.uk", "example")
	case EntityPhone:
		// Random digits in the formats people write, kept when libphonenumber finds them a valid
		// number (with its full per-type check): a made-up area code is no phone number.
		for {
			nxx := func() string { return fmt.Sprint(2+g.r.IntN(8)) + g.digits(2) }
			var v, region string
			switch g.r.IntN(8) {
			case 0:
				v, region = "("+nxx()+") "+nxx()+"-"+g.digits(4), "US"
			case 1:
				v, region = nxx()+"-"+nxx()+"-"+g.digits(4), "US"
			case 2:
				v, region = "+1 "+nxx()+" "+nxx()+" "+g.digits(4), "US"
			case 3:
				v, region = nxx()+"."+nxx()+"."+g.digits(4), "US"
			case 4:
				v, region = g.pick("020 ", "0161 ", "0113 ", "07700 ", "07")+g.digits(3)+" "+g.digits(4), "GB"
			case 5:
				v, region = g.pick("030 ", "089 ", "0221 ", "+49 (0)89 ", "+49 30 ")+g.digits(4)+" "+g.digits(3+g.r.IntN(2)), "DE"
			case 6:
				v, region = g.pick("01", "06", "07", "04")+" "+g.digits(2)+" "+g.digits(2)+" "+g.digits(2)+" "+g.digits(2), "FR"
			default:
				v, region = "+"+g.pick("44", "33", "49", "81", "34", "39")+" "+g.digits(2)+" "+g.digits(4)+" "+g.digits(4), "ZZ"
			}
			if n, err := phonenumbers.Parse(v, region); err == nil && phonenumbers.IsValidNumber(n) {
				return v
			}
		}
	case EntityCreditCard:
		prefix, n := g.pick("4", "51", "55", "6011", "2221"), 16
		if g.r.IntN(4) == 0 {
			prefix, n = g.pick("34", "37"), 15
		}
		body := prefix + g.digits(n-len(prefix)-1)
		for d := range 10 {
			if c := body + fmt.Sprint(d); luhn([]byte(c)) {
				body = c
				break
			}
		}
		if n == 16 && g.r.IntN(2) == 0 {
			sep := g.pick(" ", "-")
			return body[0:4] + sep + body[4:8] + sep + body[8:12] + sep + body[12:16]
		}
		return body
	case EntityUSSSN:
		area := 1 + g.r.IntN(899)
		if area == 666 {
			area = 665
		}
		sep := g.pick("-", " ")
		return fmt.Sprintf("%03d%s%02d%s%04d", area, sep, 1+g.r.IntN(99), sep, 1+g.r.IntN(9999))
	case EntityIPAddress:
		if g.r.IntN(3) == 0 {
			return fmt.Sprintf("2001:db8:%x::%x", g.r.IntN(0xffff), 1+g.r.IntN(0xffff))
		}
		return fmt.Sprintf("%d.%d.%d.%d", 1+g.r.IntN(254), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
	case EntityAWSAccessKey:
		return g.pick("AKIA", "ASIA") + g.letters(16, upperAZ+"234567")
	case EntityAWSSecretKey:
		for {
			s := g.letters(40, upperAZ+lowerAZ+"0123456789/+")
			if secretKeyAt(s, 0) == 40 {
				return s
			}
		}
	case EntityIBAN:
		cc := g.pick("DE", "GB", "FR", "NL", "ES")
		var bban string
		switch cc {
		case "GB":
			bban = g.letters(4, upperAZ) + g.digits(14)
		case "NL":
			bban = g.letters(4, upperAZ) + g.digits(10)
		case "FR":
			bban = g.digits(23)
		default:
			bban = g.digits(ibanLengths[cc] - 4)
		}
		iban := cc + ibanCheck(cc, bban) + bban
		if g.r.IntN(2) == 0 {
			var b strings.Builder
			for i := 0; i < len(iban); i += 4 {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(iban[i:min(i+4, len(iban))])
			}
			return b.String()
		}
		return iban
	case EntityURL:
		return g.pick("https://", "http://", "www.") + g.letters(3+g.r.IntN(8), lowerAZ) + ".com/" + g.letters(g.r.IntN(6), lowerAZ)
	}
	panic("no generator for " + typ)
}

// ibanCheck computes the two check digits of country cc and bban.
func ibanCheck(cc, bban string) string {
	var num strings.Builder
	for _, c := range bban + cc + "00" {
		if c >= 'A' && c <= 'Z' {
			num.WriteString(fmt.Sprint(int(c-'A') + 10))
		} else {
			num.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(num.String(), 10)
	return fmt.Sprintf("%02d", 98-new(big.Int).Mod(n, big.NewInt(97)).Int64())
}

var fillerWords = strings.Fields(`the report says revenue grew in the third quarter while costs fell and
the team shipped version 2.4 of the app order 4155552671 arrived with ISBN 978-0-306-40615-7
please summarize the meeting notes and list the action items for next week's review at 10:30
invoice 2024-11-23 total 1,234.56 ticket #4821 sha da39a3ee5e6b4b0d3255bfef95601890afd80709`)

// filler returns n words of ordinary business text with numeric look-alikes.
func (g *gen) filler(n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = fillerWords[g.r.IntN(len(fillerWords))]
	}
	return strings.Join(ws, " ")
}

// text returns a text of about size bytes mixing filler with entity values of types, and the
// values it holds.
func (g *gen) text(size int, types []string) (string, []string) {
	var b strings.Builder
	var values []string
	for b.Len() < size {
		b.WriteString(g.filler(5 + g.r.IntN(20)))
		// A number right after "order", "invoice" or "ISBN" is read as that reference, not as a
		// phone number; a value follows a neutral word.
		b.WriteString(g.pick(" at", " for", " with", " and"))
		b.WriteString(g.pick(" ", ", ", ". ", " (", ": "))
		v := g.value(types[g.r.IntN(len(types))])
		values = append(values, v)
		b.WriteString(v)
		b.WriteString(g.pick(" ", ", ", ". ", ") ", "; "))
	}
	return b.String(), values
}
