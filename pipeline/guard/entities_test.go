package guard

import (
	"strings"
	"testing"
)

// entityCase is a text and the entity values a detector of every type must find in it.
type entityCase struct {
	text string
	want []string // "TYPE:value"
}

// entityCases holds, per type, positives and look-alikes that must stay untouched. The same
// corpus feeds the precision and recall figures of TestPrecisionRecall.
var entityCases = map[string][]entityCase{
	EntityEmail: {
		{"mail john.doe@example.com today", []string{"EMAIL:john.doe@example.com"}},
		{"Write to a_b+tag@mail.example.co.uk.", []string{"EMAIL:a_b+tag@mail.example.co.uk"}},
		{"<x.y@corp-mail.io>", []string{"EMAIL:x.y@corp-mail.io"}},
		{"user@localhost is local", nil},
		{"ping @handle on chat", nil},
		{"the ratio a@b is odd", nil},
		{"price 5@10.5 each", nil},
	},
	EntityPhone: {
		{"call (415) 555-2671 now", []string{"PHONE:(415) 555-2671"}},
		{"call 415-555-2671.", []string{"PHONE:415-555-2671"}},
		{"call 415.555.2671", []string{"PHONE:415.555.2671"}},
		{"call +1 415 555 2671", []string{"PHONE:+1 415 555 2671"}},
		{"call 1-800-555-0199 free", []string{"PHONE:1-800-555-0199"}},
		{"London +44 20 7946 0958", []string{"PHONE:+44 20 7946 0958"}},
		{"Paris +33 1 23 45 67 89 office", []string{"PHONE:+33 1 23 45 67 89"}},
		{"London office 020 7946 0958, mobile 07700 900123", []string{"PHONE:020 7946 0958", "PHONE:07700 900123"}},
		{"Manchester +44 (0)161 496 0000 ext", []string{"PHONE:+44 (0)161 496 0000"}},
		{"München: +49 (0)89 1234 5678.", []string{"PHONE:+49 (0)89 1234 5678"}},
		{"Büro 089/1234567", []string{"PHONE:089/1234567"}},
		{"Paris 01 42 68 53 00", []string{"PHONE:01 42 68 53 00"}},
		{"Madrid 912 345 678", []string{"PHONE:912 345 678"}},
		{"Tel: 4155552671", []string{"PHONE:4155552671"}},
		{"intl 0044 20 7946 0958", []string{"PHONE:0044 20 7946 0958"}},
		{"n° de tél. 01 42 68 53 00", []string{"PHONE:01 42 68 53 00"}},
		{"Hamburg 040 / 123456-78", []string{"PHONE:040 / 123456-78"}},
		{"réf. 0800-123-45", nil},
		{"Kundennummer 0049 123 456", nil},
		{"n° 0800 123 45", nil},
		{"order 4155552671 shipped", nil},
		{"on 2024-11-23 10:30", nil},
		{"area (123) 456-7890", nil},
		{"ssn-like 666-22-1234", nil},
		{"ISBN 978-0-306-40615-7", nil},
		{"part 123-456-7890", nil},
		{"version 1.2.3 and 10.4.1", nil},
		{"score +12 points", nil},
		{"ref 415-555-2671-99", nil},
	},
	EntityCreditCard: {
		{"card 4111 1111 1111 1111 exp", []string{"CREDIT_CARD:4111 1111 1111 1111"}},
		{"card 5500-0000-0000-0004", []string{"CREDIT_CARD:5500-0000-0000-0004"}},
		{"amex 378282246310005", []string{"CREDIT_CARD:378282246310005"}},
		{"amex 3782 822463 10005", []string{"CREDIT_CARD:3782 822463 10005"}},
		{"disc 6011111111111117.", []string{"CREDIT_CARD:6011111111111117"}},
		{"card 4111 1111 1111 1112", nil},
		{"order 1234 5678 9012 3456", nil},
		{"tracking 9400111899223344556677", nil},
		{"mixed 4111-1111 1111-1111", nil},
		{"id 4111111111111111111111", nil},
	},
	EntityUSSSN: {
		{"ssn 536-22-1234", []string{"US_SSN:536-22-1234"}},
		{"ssn 536 22 1234 ok", []string{"US_SSN:536 22 1234"}},
		{"ssn 000-22-1234", nil},
		{"ssn 666-22-1234", nil},
		{"ssn 912-22-1234", nil},
		{"ssn 536-00-1234", nil},
		{"ssn 536-22-0000", nil},
		{"ssn 078-05-1120", nil},
		{"code 536-22-12345", nil},
		{"code 12345-536-22-1234", nil},
		{"dashed 536-22 1234", nil},
	},
	EntityIPAddress: {
		{"host 192.168.1.10 up", []string{"IP_ADDRESS:192.168.1.10"}},
		{"gw 10.0.0.1.", []string{"IP_ADDRESS:10.0.0.1"}},
		{"v6 2001:db8::1 up", []string{"IP_ADDRESS:2001:db8::1"}},
		{"lo ::1 up", []string{"IP_ADDRESS:::1"}},
		{"ll fe80::1ff:fe23:4567:890a", []string{"IP_ADDRESS:fe80::1ff:fe23:4567:890a"}},
		{"bad 256.1.1.1", nil},
		{"ver 1.2.3", nil},
		{"ver 1.2.3.4.5", nil},
		{"ver v1.2.3.4", nil},
		{"time 12:30:45", nil},
		{"zeros 01.02.03.04", nil},
		{"hash deadbeef:cafe", nil},
	},
	EntityAWSAccessKey: {
		{"key AKIAIOSFODNN7EXAMPLE here", []string{"AWS_ACCESS_KEY:AKIAIOSFODNN7EXAMPLE"}},
		{"tmp=ASIAY34FZKBOKMUTVV7A", []string{"AWS_ACCESS_KEY:ASIAY34FZKBOKMUTVV7A"}},
		{"short AKIAIOSFODNN7EXAMPL", nil},
		{"long AKIAIOSFODNN7EXAMPLEX", nil},
		{"other ABCDIOSFODNN7EXAMPLE", nil},
		{"lower akiaiosfodnn7example", nil},
	},
	EntityAWSSecretKey: {
		{"secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end", []string{"AWS_SECRET_KEY:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{"s=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", []string{"AWS_SECRET_KEY:je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}},
		{"sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", nil},
		{"name ThisIsAVeryLongCamelCaseIdentifierName1", nil},
		{"path src/main/java/com/example/app/Service", nil},
		{"b64 wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYxx", nil},
	},
	EntityIBAN: {
		{"iban GB82 WEST 1234 5698 7654 32 thanks", []string{"IBAN:GB82 WEST 1234 5698 7654 32"}},
		{"iban DE89370400440532013000.", []string{"IBAN:DE89370400440532013000"}},
		{"iban FR1420041010050500013M02606", []string{"IBAN:FR1420041010050500013M02606"}},
		{"iban GB82 WEST 1234 5698 7654 33", nil},
		{"iban DE89370400440532013001", nil},
		{"code DE12 is short", nil},
		{"sku XX89370400440532013000", nil},
	},
	EntityURL: {
		{"see https://example.com/a?b=1.", []string{"URL:https://example.com/a?b=1"}},
		{"(http://host.io/x)", []string{"URL:http://host.io/x"}},
		{"go to www.example.org/page, then", []string{"URL:www.example.org/page"}},
		{"ftp://files.example.net/pub", []string{"URL:ftp://files.example.net/pub"}},
		{"file.txt and example.com", nil},
		{"a :// b", nil},
	},
}

func detectAll(t testing.TB, text string) []string {
	t.Helper()
	d, err := NewDetector(Entities, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range d.Detect(text, nil) {
		got = append(got, m.Type+":"+text[m.Start:m.End])
	}
	return got
}

func TestDetectEntities(t *testing.T) {
	t.Parallel()
	for typ, cases := range entityCases {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				got := detectAll(t, c.text)
				if strings.Join(got, "|") != strings.Join(c.want, "|") {
					t.Errorf("Detect(%q) = %q, want %q", c.text, got, c.want)
				}
			}
		})
	}
}
