package guard

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestDigitDFAAgreesWithRegexp checks the automata of numbering plans against Go's regexp on
// random digit strings and on the plans' own lengths.
func TestDigitDFAAgreesWithRegexp(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for _, cc := range []int{1, 33, 34, 39, 44, 49, 61, 91} {
		p := plans().byCode[cc]
		p.once.Do(p.compile)
		re := regexp.MustCompile("^(?:" + p.pattern + ")$")
		accepted := 0
		for range 20000 {
			n := 4 + r.IntN(10)
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('0' + r.IntN(10))
			}
			want := re.Match(b)
			if got := p.dfa.match(b); got != want {
				t.Fatalf("cc %d: %s: automaton %v, regexp %v", cc, b, got, want)
			}
			if want {
				accepted++
			}
		}
		if accepted == 0 {
			t.Errorf("cc %d: no random number accepted; the comparison proves little", cc)
		}
	}
}
