package guard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/infleet/infleet/pipeline"
)

// The labelled evaluation: texts written for it (testdata/eval), in several languages, with
// personal data embedded in JSON, CSV, logs and mail headers beside look-alikes; prompt
// attacks of many styles beside innocent texts using the same words; and denied topics asked
// in paraphrase beside off-topic requests. TestEvaluation reports precision and recall per
// entity type and policy and fails below the targets; the classifier's topic recall is
// measured end to end in cmd/infleet (TestEvaluationTopicClassifier), against infleet fmsim.

// Targets of the evaluation.
const (
	evalPIIRecall        = 0.97
	evalMaxLookalikes    = 1
	evalAttackRecall     = 0.9
	evalMaxInnocentBlock = 1
	evalMinItems         = 150
)

type evalPII struct {
	ID, Lang, Text string
	Entities       [][2]string
}

type evalAttack struct {
	ID, Lang, Style, Text string
	Attack                bool
}

type evalTopic struct {
	ID, Lang, Topic, Text string
}

type evalTopicDef struct {
	Name, Definition string
	Examples         []string
}

// readJSONL decodes one value of T per line of testdata/eval/name.
func readJSONL[T any](t testing.TB, name string) []T {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "eval", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s:%d: %v", name, n, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// score counts one class of findings.
type score struct{ tp, fp, fn int }

func (s score) precision() float64 { return ratio(s.tp, s.tp+s.fp) }
func (s score) recall() float64    { return ratio(s.tp, s.tp+s.fn) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

func (s score) row(name string) string {
	return fmt.Sprintf("%-28s %9.3f %6.3f %4d %3d %3d", name, s.precision(), s.recall(), s.tp, s.fp, s.fn)
}

const evalHeader = "class                        precision recall   tp  fp  fn"

func TestEvaluation(t *testing.T) {
	t.Parallel()
	pii := readJSONL[evalPII](t, "pii.jsonl")
	attacks := readJSONL[evalAttack](t, "attacks.jsonl")
	topics := readJSONL[evalTopic](t, "topics.jsonl")
	langs := map[string]bool{}
	for _, x := range pii {
		langs[x.Lang] = true
	}
	for _, x := range attacks {
		langs[x.Lang] = true
	}
	for _, x := range topics {
		langs[x.Lang] = true
	}
	if n := len(pii) + len(attacks) + len(topics); n < evalMinItems || len(langs) < 5 {
		t.Fatalf("the evaluation has %d items in %d languages; it needs at least %d in 5", n, len(langs), evalMinItems)
	}
	var rows []string

	// Sensitive information: every built-in type on, matched by type and exact value.
	d, err := NewDetector(Entities, nil)
	if err != nil {
		t.Fatal(err)
	}
	perType := map[string]*score{}
	var all score
	lookalikes := 0
	for _, x := range pii {
		want := slices.Clone(x.Entities)
		for _, m := range d.Detect(x.Text, nil) {
			got := [2]string{m.Type, x.Text[m.Start:m.End]}
			s := perType[m.Type]
			if s == nil {
				s = &score{}
				perType[m.Type] = s
			}
			if i := slices.Index(want, got); i >= 0 {
				want = slices.Delete(want, i, i+1)
				s.tp++
				all.tp++
				continue
			}
			s.fp++
			all.fp++
			lookalikes++
			t.Logf("%s: look-alike masked as %s: %q", x.ID, got[0], got[1])
		}
		for _, w := range want {
			if perType[w[0]] == nil {
				perType[w[0]] = &score{}
			}
			perType[w[0]].fn++
			all.fn++
			t.Logf("%s: %s missed: %q", x.ID, w[0], w[1])
		}
	}
	for _, typ := range Entities {
		if s := perType[typ]; s != nil {
			rows = append(rows, s.row("pii "+typ))
		}
	}
	rows = append(rows, all.row("pii (all types)"))
	if all.recall() < evalPIIRecall {
		t.Errorf("PII recall %.3f, want >= %.2f", all.recall(), evalPIIRecall)
	}
	if lookalikes > evalMaxLookalikes {
		t.Errorf("%d look-alikes masked, want at most %d", lookalikes, evalMaxLookalikes)
	}

	// Prompt attacks, per style; innocent texts count as false positives when blocked.
	g, err := New(Config{PromptAttack: &PromptAttackConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	var atk score
	perStyle := map[string]*score{}
	var styles []string
	for _, x := range attacks {
		out, err := g.Check(context.Background(), pipeline.GuardInput, []string{x.Text})
		if err != nil {
			t.Fatal(err)
		}
		key := x.Style
		if !x.Attack {
			key = "innocent"
		}
		s := perStyle[key]
		if s == nil {
			s = &score{}
			perStyle[key] = s
			styles = append(styles, key)
		}
		switch {
		case x.Attack && out.Blocked:
			s.tp++
			atk.tp++
		case x.Attack:
			s.fn++
			atk.fn++
			t.Logf("%s (%s, %s): attack not detected: %q", x.ID, x.Style, x.Lang, x.Text)
		case out.Blocked:
			s.fp++
			atk.fp++
			t.Logf("%s (%s): innocent text blocked: %q", x.ID, x.Lang, x.Text)
		}
	}
	for _, st := range styles {
		rows = append(rows, perStyle[st].row("attack "+st))
	}
	rows = append(rows, atk.row("prompt_attack (all)"))
	if atk.recall() < evalAttackRecall {
		t.Errorf("prompt-attack recall %.3f, want >= %.2f", atk.recall(), evalAttackRecall)
	}
	if atk.fp > evalMaxInnocentBlock {
		t.Errorf("%d innocent texts blocked, want at most %d", atk.fp, evalMaxInnocentBlock)
	}

	// Denied topics with the built-in matcher only (reported; the classifier's target is
	// checked in cmd/infleet).
	rows = append(rows, evalTopics(t, topics, func(text string) string {
		out, err := builtinTopics(t).Check(context.Background(), pipeline.GuardInput, []string{text})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.Assessments {
			if a.Policy == PolicyTopic {
				return a.Type
			}
		}
		return ""
	}, "built-in")...)
	t.Logf("evaluation (%d items, %d languages)\n%s\n%s", len(pii)+len(attacks)+len(topics), len(langs), evalHeader, strings.Join(rows, "\n"))
}

// builtinTopics is a guard with the evaluation's denied topics and nothing else.
func builtinTopics(t *testing.T) *Guard {
	t.Helper()
	var defs []evalTopicDef
	data, err := os.ReadFile(filepath.Join("testdata", "eval", "topics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &defs); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	for _, d := range defs {
		cfg.DeniedTopics = append(cfg.DeniedTopics, Topic{Name: d.Name, Definition: d.Definition, Examples: d.Examples})
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// evalTopics scores a topic decision function (the topic named, or "") on the topic items,
// logs each miss, and returns the table rows: per topic, then all paraphrases.
func evalTopics(t *testing.T, items []evalTopic, decide func(string) string, label string) []string {
	perTopic := map[string]*score{}
	var names []string
	var all score
	for _, x := range items {
		got := decide(x.Text)
		if x.Topic != "" && perTopic[x.Topic] == nil {
			perTopic[x.Topic] = &score{}
			names = append(names, x.Topic)
		}
		switch {
		case x.Topic != "" && got == x.Topic:
			perTopic[x.Topic].tp++
			all.tp++
		case x.Topic != "":
			perTopic[x.Topic].fn++
			all.fn++
			t.Logf("%s %s (%s): %s paraphrase not caught (got %q): %q", label, x.ID, x.Lang, x.Topic, got, x.Text)
		case got != "":
			all.fp++
			t.Logf("%s %s (%s): off-topic text blocked as %s: %q", label, x.ID, x.Lang, got, x.Text)
		}
	}
	var rows []string
	for _, n := range names {
		rows = append(rows, perTopic[n].row("topic "+label+" "+n))
	}
	return append(rows, all.row("topic "+label+" (all)"))
}
