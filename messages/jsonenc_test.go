package messages

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// trickyStrings hold every class of character json.Marshal treats apart.
var trickyStrings = []string{
	"", "plain ascii", `quote " and \ backslash`, "<b>&amp;</b>", "\n\r\t\b\f\x00\x01\x1f\x7f",
	"naïve café — 日本語 🚀", "line\u2028sep\u2029par", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate",
	"\u00a0nbsp", "end with escape \"", "\xf4\x90\x80\x80 beyond U+10FFFF", "\ufffd literal",
}

// randomString returns a string mixing ASCII, escapes, multi-byte runes and raw bytes.
func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "9", " ", `"`, `\`, "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
		"é", "日", "🚀", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xed\xa0\x80"}
	var b []byte
	for range r.IntN(24) {
		if r.IntN(4) == 0 {
			b = append(b, byte(r.IntN(256)))
		} else {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		}
	}
	return string(b)
}

func TestAppendJSONStringMatchesMarshal(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	cases := append([]string(nil), trickyStrings...)
	for range 20000 {
		cases = append(cases, randomString(r))
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendJSONString([]byte("prefix"), s); !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("AppendJSONString(%q) = %s; json.Marshal writes %s", s, got[len("prefix"):], want)
		}
	}
}

func TestAppendResultJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	costs := []float64{0, 0.25, 1e-7, 3.5e-9, 1e21, 123456789.125, -2, 1e-6, 0.000001234, 5e20}
	results := []Result{
		{},
		{JobID: "job-1", Output: Output{Text: "hello"}, Model: "sim", Usage: Usage{InputTokens: 3, OutputTokens: 9}},
		{JobID: "j", Guardrail: &GuardrailReport{Action: "anonymize", Input: []Assessment{{}}}, Degraded: true,
			Fallbacks: []string{"a", "<b>"}, Prompt: "p@1"},
		{Fallbacks: []string{}}, // empty, not nil: omitted as json.Marshal omits it
	}
	for i := range 5000 {
		res := Result{JobID: randomString(r), Output: Output{Text: randomString(r)}, Model: randomString(r),
			Usage:    Usage{InputTokens: r.IntN(1 << 20), OutputTokens: r.IntN(1<<20) - 5, CostUSD: costs[i%len(costs)] * r.Float64()},
			Degraded: r.IntN(2) == 0, Prompt: randomString(r)}
		if i%3 == 0 {
			res.Fallbacks = []string{randomString(r), randomString(r)}
		}
		if i%7 == 0 {
			res.Guardrail = &GuardrailReport{Action: randomString(r)}
		}
		if i%11 == 0 {
			res.Usage.CostUSD = costs[i%len(costs)]
		}
		results = append(results, res)
	}
	for _, res := range results {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendResultJSON([]byte("x"), res)
		if err != nil {
			t.Fatalf("AppendResultJSON(%+v): %v", res, err)
		}
		if !bytes.Equal(got[1:], want) {
			t.Fatalf("AppendResultJSON(%+v)\n got %s\nwant %s", res, got[1:], want)
		}
	}
}

func TestAppendResultJSONRefusesWhatMarshalRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		res := Result{JobID: "j", Usage: Usage{CostUSD: c}}
		if _, err := json.Marshal(res); err == nil {
			t.Fatalf("json.Marshal accepted cost %v", c)
		}
		got, err := AppendResultJSON([]byte("kept"), res)
		if err == nil {
			t.Fatalf("AppendResultJSON accepted cost %v", c)
		}
		if string(got) != "kept" {
			t.Fatalf("AppendResultJSON left %q after refusing; want the buffer as given", got)
		}
	}
}

// TestAppendResultJSONKnowsEveryField fails when Result, Output or Usage gains a field:
// AppendResultJSON writes its fields by hand, so a new one must be added there (and to the
// random results above) or it would be missing from every stored result.
func TestAppendResultJSONKnowsEveryField(t *testing.T) {
	t.Parallel()
	for typ, n := range map[reflect.Type]int{reflect.TypeFor[Result](): 8, reflect.TypeFor[Output](): 1, reflect.TypeFor[Usage](): 3} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields; AppendResultJSON writes %d: teach it the new ones", typ, typ.NumField(), n)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSONString(%q) = %s; json.Marshal writes %s", s, got, want)
		}
	})
}

func BenchmarkAppendResultJSON(b *testing.B) {
	res := Result{JobID: "01JF3ZK8M4Q7V2N9X5B6C1D0EA", Output: Output{Text: string(bytes.Repeat([]byte("word "), 40))},
		Model: "sim", Usage: Usage{InputTokens: 40, OutputTokens: 52}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = AppendResultJSON(buf[:0], res)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(res)
		}
	})
}
