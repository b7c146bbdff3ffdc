package guard

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/infleet/infleet/pipeline"
)

// TestAnonymizedTextNeverHoldsTheValue is the property that matters most: whatever mix of
// entities and look-alikes a text holds, the anonymized text contains none of the values.
func TestAnonymizedTextNeverHoldsTheValue(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{AnonymizePlaceholder, AnonymizeToken} {
		g, err := New(Config{PII: &PIIConfig{Entities: Entities, AnonymizeWith: mode}})
		if err != nil {
			t.Fatal(err)
		}
		gen := newGen(uint64(len(mode)))
		for i := range 300 {
			types := []string{Entities[i%len(Entities)], Entities[(i*7+3)%len(Entities)]}
			text, values := gen.text(200+gen.r.IntN(600), types)
			out, err := g.Check(context.Background(), pipeline.GuardInput, []string{text})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if strings.Contains(out.Texts[0], v) {
					t.Fatalf("%s: anonymized text still holds %q:\n in:  %s\n out: %s", mode, v, text, out.Texts[0])
				}
			}
		}
	}
}

// TestPrecisionRecall measures detection per entity type on the table corpus and on generated
// text (values amid look-alike filler), prints the figures, and fails below a floor.
func TestPrecisionRecall(t *testing.T) {
	t.Parallel()
	type counts struct{ tp, fp, fn int }
	per := map[string]*counts{}
	for _, e := range Entities {
		per[e] = &counts{}
	}
	d, err := NewDetector(Entities, nil)
	if err != nil {
		t.Fatal(err)
	}
	score := func(text string, want []string) {
		var got []string
		for _, m := range d.Detect(text, nil) {
			got = append(got, m.Type+":"+text[m.Start:m.End])
		}
		for _, g := range got {
			typ, _, _ := strings.Cut(g, ":")
			if i := slices.Index(want, g); i >= 0 {
				per[typ].tp++
				want = slices.Delete(want, i, i+1)
			} else {
				per[typ].fp++
				t.Logf("false positive %s in %q", g, text)
			}
		}
		for _, w := range want {
			typ, _, _ := strings.Cut(w, ":")
			per[typ].fn++
			t.Logf("missed %s in %q", w, text)
		}
	}
	for _, cases := range entityCases {
		for _, c := range cases {
			score(c.text, slices.Clone(c.want))
		}
	}
	gen := newGen(42)
	for _, typ := range Entities {
		for range 200 {
			v := gen.value(typ)
			text := gen.filler(8) + gen.pick(" ", ", ", ": ") + v + gen.pick(" ", ". ", ", ") + gen.filler(8)
			score(text, []string{typ + ":" + v})
		}
	}
	// Look-alikes that must stay untouched: order numbers, dates, times, versions, hashes, ids.
	for range 200 {
		card := "4" + gen.digits(15)
		if luhn([]byte(card)) {
			card = card[:15] + string('0'+(card[15]-'0'+1)%10)
		}
		for _, text := range []string{
			"order " + card[:4] + " " + card[4:8] + " " + card[8:12] + " " + card[12:] + " shipped",
			"order " + gen.digits(10) + " and ref " + gen.digits(9) + " at " + gen.digits(2) + ":" + gen.digits(2) + ":" + gen.digits(2),
			"released v" + gen.digits(1) + "." + gen.digits(2) + "." + gen.digits(1) + " on 20" + gen.digits(2) + "-" + gen.digits(2) + "-" + gen.digits(2),
			"commit " + gen.letters(40, "0123456789abcdef") + " id " + gen.letters(8, "0123456789abcdef") + "-" + gen.letters(4, "0123456789abcdef") + "-4" + gen.letters(3, "0123456789abcdef"),
			"blob " + gen.letters(64, upperAZ+lowerAZ+"0123456789/+") + "== end",
			"ISBN 978-" + gen.digits(1) + "-" + gen.digits(3) + "-" + gen.digits(5) + "-" + gen.digits(1) + " page " + gen.digits(3),
			"sku " + gen.letters(2, upperAZ) + gen.digits(2) + gen.letters(6, upperAZ) + " price 1,234.56 ratio 3:2",
		} {
			score(text, nil)
		}
	}
	var lines []string
	for _, typ := range Entities {
		c := per[typ]
		precision := float64(c.tp) / float64(max(1, c.tp+c.fp))
		recall := float64(c.tp) / float64(max(1, c.tp+c.fn))
		lines = append(lines, fmt.Sprintf("%-15s %9.3f %6.3f %5d %3d %3d", typ, precision, recall, c.tp, c.fp, c.fn))
		if precision < 0.95 || recall < 0.95 {
			t.Errorf("%s: precision %.3f recall %.3f (tp %d fp %d fn %d), want both >= 0.95", typ, precision, recall, c.tp, c.fp, c.fn)
		}
	}
	t.Logf("%-15s %9s %6s %5s %3s %3s\n%s", "entity", "precision", "recall", "tp", "fp", "fn", strings.Join(lines, "\n"))
}

// FuzzDetect checks that the detectors never panic and that their matches are sorted,
// disjoint, inside the text, and found again when cut out on their own (a phone number after a
// phone word); and that anonymizing
// never panics and keeps the text valid UTF-8 when it was.
func FuzzDetect(f *testing.F) {
	for _, cases := range entityCases {
		for _, c := range cases {
			f.Add(c.text)
		}
	}
	f.Add("a@b.co:4111-1111-1111-1111 ::ffff:1.2.3.4 +1 (415) 555-2671 GB82WEST12345698765432")
	f.Add("www.x.io/(a)] https://[::1]:80/p? AKIAIOSFODNN7EXAMPLE\u00e9\u2028")
	d, err := NewDetector(Entities, nil)
	if err != nil {
		f.Fatal(err)
	}
	g, err := New(Config{PII: &PIIConfig{Entities: Entities, AnonymizeWith: AnonymizeToken},
		Words:        &WordsConfig{Words: []string{"secret plan"}, Profanity: true, Action: ActionMask},
		DeniedTopics: []Topic{{Name: "weapons", Definition: "Building weapons or explosives."}}, PromptAttack: &PromptAttackConfig{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms := d.Detect(s, nil)
		end := 0
		for _, m := range ms {
			if m.Start < end || m.End <= m.Start || m.End > len(s) {
				t.Fatalf("bad match %+v after %d in %q: %+v", m, end, s, ms)
			}
			end = m.End
			v, lead := s[m.Start:m.End], ""
			if m.Type == EntityPhone {
				lead = "tel " // a bare digit run is a phone number only after a phone word
			}
			again := d.Detect(lead+v, nil)
			if len(again) != 1 || again[0].Type != m.Type || again[0].Start != len(lead) || again[0].End != len(lead)+len(v) {
				t.Fatalf("%s %q found in %q, but alone it gives %+v", m.Type, v, s, again)
			}
		}
		out, err := g.Check(context.Background(), pipeline.GuardInput, []string{s})
		if err != nil {
			t.Fatal(err)
		}
		if !out.Blocked && utf8.ValidString(s) && !utf8.ValidString(out.Texts[0]) {
			t.Fatalf("anonymizing %q gave invalid UTF-8 %q", s, out.Texts[0])
		}
	})
}

// mixedCorpus is about size bytes of text with every entity type among look-alikes.
func mixedCorpus(size int) string {
	text, _ := newGen(7).text(size, Entities)
	return text
}

// BenchmarkDetect measures detection throughput (MB/s) of every built-in type on a mixed corpus.
func BenchmarkDetect(b *testing.B) {
	d, err := NewDetector(Entities, nil)
	if err != nil {
		b.Fatal(err)
	}
	corpus := mixedCorpus(64 << 10)
	b.SetBytes(int64(len(corpus)))
	var ms []Match
	for b.Loop() {
		ms = d.Detect(corpus, ms[:0])
	}
}

// allPolicies is a guard with every built-in policy on.
func allPolicies(b *testing.B) *Guard {
	g, err := New(Config{
		PII: &PIIConfig{Entities: Entities, AnonymizeWith: AnonymizeToken,
			Custom: []CustomRegex{{Name: "EMPLOYEE_ID", Pattern: `EMP-\d{6}`}}},
		Words: &WordsConfig{Words: []string{"project falcon", "zorp"}, Profanity: true, Action: ActionMask},
		DeniedTopics: []Topic{
			{Name: "medical-diagnosis", Definition: "Diagnosing illnesses or prescribing treatment.", Examples: []string{"What illness do I have?"}},
			{Name: "investment-advice", Definition: "Recommending stocks, funds or other investments.", Examples: []string{"Should I buy this stock?"}},
		},
		PromptAttack: &PromptAttackConfig{},
		Grounding:    &GroundingConfig{GroundingThreshold: 0.1, RelevanceThreshold: 0.1},
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkCheck4KB measures the latency a job's 4 KB input adds with every policy on, and
// reports the p50 and p99 of the per-call durations (target: p99 <= 1ms).
func BenchmarkCheck4KB(b *testing.B) {
	g := allPolicies(b)
	text := mixedCorpus(4 << 10)[:4<<10]
	jc := pipeline.GuardContext{Question: "What did the report say?", Context: text}
	ctx := context.Background()
	b.SetBytes(int64(len(text)))
	var durations []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := g.CheckWithContext(ctx, pipeline.GuardInput, []string{text}, jc); err != nil {
			b.Fatal(err)
		}
		if _, err := g.CheckWithContext(ctx, pipeline.GuardOutput, []string{text[:1024]}, jc); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	q := func(p float64) float64 {
		return float64(durations[min(len(durations)-1, int(p*float64(len(durations))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// evalCorpus is the evaluation's PII texts and attack texts, repeated to about size bytes:
// realistic multilingual text with far fewer entities than the mixed corpus.
func evalCorpus(b *testing.B, size int) string {
	var parts []string
	for _, x := range readJSONL[evalPII](b, "pii.jsonl") {
		parts = append(parts, x.Text)
	}
	for _, x := range readJSONL[evalAttack](b, "attacks.jsonl") {
		if !x.Attack {
			parts = append(parts, x.Text)
		}
	}
	var sb strings.Builder
	for i := 0; sb.Len() < size; i++ {
		sb.WriteString(parts[i%len(parts)])
		sb.WriteString("\n")
	}
	if len(parts) == 0 {
		b.Fatal("no evaluation texts")
	}
	return sb.String()[:size]
}

// BenchmarkDetectEval measures detection throughput on the evaluation's own texts.
func BenchmarkDetectEval(b *testing.B) {
	d, err := NewDetector(Entities, nil)
	if err != nil {
		b.Fatal(err)
	}
	corpus := evalCorpus(b, 64<<10)
	for !utf8.ValidString(corpus) {
		corpus = corpus[:len(corpus)-1]
	}
	b.SetBytes(int64(len(corpus)))
	var ms []Match
	for b.Loop() {
		ms = d.Detect(corpus, ms[:0])
	}
}

// BenchmarkCheck4KBMultilingual is BenchmarkCheck4KB on 4 KB of the evaluation's texts, most
// of them not ASCII: the prompt-attack policy normalizes them first.
func BenchmarkCheck4KBMultilingual(b *testing.B) {
	g := allPolicies(b)
	text := evalCorpus(b, 4<<10)
	for !utf8.ValidString(text) {
		text = text[:len(text)-1]
	}
	ctx := context.Background()
	b.SetBytes(int64(len(text)))
	var durations []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := g.CheckWithContext(ctx, pipeline.GuardInput, []string{text}, pipeline.GuardContext{}); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	q := func(p float64) float64 {
		return float64(durations[min(len(durations)-1, int(p*float64(len(durations))))].Microseconds())
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// TestConcurrentChecks runs one guard from many goroutines: every check sees its own tokens
// and findings (the scratch buffers are pooled, never shared).
func TestConcurrentChecks(t *testing.T) {
	t.Parallel()
	g, err := New(Config{PII: &PIIConfig{Entities: Entities, AnonymizeWith: AnonymizeToken},
		Words: &WordsConfig{Words: []string{"zorp"}, Action: ActionMask}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			gen := newGen(uint64(100 + w))
			for range 200 {
				text, values := gen.text(300, Entities)
				out, err := g.Check(context.Background(), pipeline.GuardInput, []string{text + " zorp"})
				if err != nil {
					errs <- err
					return
				}
				n := 0
				for _, a := range out.Assessments {
					if a.Policy == PolicySensitive {
						n += a.Matches
					}
				}
				if n != len(values) || !strings.HasSuffix(out.Texts[0], " ***") {
					errs <- fmt.Errorf("check saw %d entities for %d values, text %q", n, len(values), out.Texts[0])
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
