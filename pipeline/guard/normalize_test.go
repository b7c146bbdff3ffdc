package guard

import "testing"

func TestNormalizeText(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"Plain ASCII stays As It Is", "Plain ASCII stays As It Is"},
		{"Instruções précédentes", "instrucoes precedentes"},
		{"Straße ẞ", "strasse ss"},
		{"ＩＧＮＯＲＥ 𝐢𝐠𝐧𝐨𝐫𝐞 ﬁle", "ignore ignore file"},
		{"іgnоrе ΑΒΕ", "ignore abe"},
		{"ig\u200bno\u200dre\u00ad \ufeffall\u2060", "ignore all"},
		{"x\U000E0069\U000E0067\U000E006E", "xign"},
	} {
		if got := normalizeText(c.in); got != c.want {
			t.Errorf("normalizeText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
