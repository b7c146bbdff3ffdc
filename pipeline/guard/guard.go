// Package guard is infleet's provider-neutral guardrail: a pipeline.Guard that checks job input
// before the model and model output after it with sensitive-information detection (block,
// anonymize or report per entity type), denied topics, word filters with a managed profanity
// list, prompt-attack detection and contextual grounding. Every intervention is logged without
// the text it concerns and counted in infleet_guardrail_interventions_total.
package guard

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// Actions a policy takes on what it finds.
const (
	ActionBlock     = "BLOCK"
	ActionAnonymize = "ANONYMIZE"
	ActionNone      = "NONE"
	// ActionMask replaces filtered words with the mask (word filters only).
	ActionMask = "MASK"
)

// Anonymization styles.
const (
	// AnonymizePlaceholder replaces every entity with its type: {EMAIL}.
	AnonymizePlaceholder = "placeholder"
	// AnonymizeToken replaces every distinct value with a numbered token of its type, the same
	// value with the same token within one check: {EMAIL_1}, {EMAIL_2}.
	AnonymizeToken = "token"
)

// Policy names, as reported in assessments and the policy label of the metric.
const (
	PolicySensitive = "sensitive_information"
	PolicyTopic     = "denied_topic"
	PolicyWord      = "word"
	PolicyAttack    = "prompt_attack"
	PolicyGrounding = "contextual_grounding"
)

// Assessment types of the word, prompt-attack and grounding policies.
const (
	TypeCustomWord   = "CUSTOM_WORD"
	TypeProfanity    = "PROFANITY"
	TypePromptAttack = "PROMPT_ATTACK"
	TypeGrounding    = "GROUNDING"
	TypeRelevance    = "RELEVANCE"
)

// Defaults.
const (
	DefaultMask             = "***"
	DefaultTopicMinKeywords = 2
)

// Config is the policies of one side (input or output) of the model. Policies left nil or
// empty are off.
type Config struct {
	PII          *PIIConfig
	DeniedTopics []Topic
	Words        *WordsConfig
	PromptAttack *PromptAttackConfig
	Grounding    *GroundingConfig
	// Metrics counts interventions; nil counts nothing. Share one between the guards of a process.
	Metrics *Metrics
	// Logger receives one line per intervention, never the text; the zero logger is silent.
	Logger zerolog.Logger
}

// PIIConfig is the sensitive-information policy.
type PIIConfig struct {
	// Entities are the built-in types to detect (see Entities).
	Entities []string
	// Action applies to every entity without an action of its own. Default ANONYMIZE.
	Action string
	// Actions overrides Action per entity type (built-in or custom).
	Actions map[string]string
	// Custom are named patterns detected beside the built-in types.
	Custom []CustomRegex
	// AnonymizeWith is AnonymizePlaceholder (default) or AnonymizeToken.
	AnonymizeWith string
	// Message is the job error message when the policy blocks; default names the entity types.
	Message string
	// Restore puts the values anonymized on input back into the model's answer before it is
	// stored (AnonymizeToken only). Default false: nothing masked on the way in comes back.
	Restore bool
	// PhoneRegions are the ISO 3166-1 regions whose national phone formats PHONE recognizes.
	// Default DefaultPhoneRegions.
	PhoneRegions []string
}

// CustomRegex is a named pattern in Go regexp syntax (RE2).
type CustomRegex struct {
	Name, Pattern string
	// Action overrides PIIConfig.Action for this pattern when set.
	Action string
}

// Topic is a denied topic.
type Topic struct {
	Name, Definition string
	Examples         []string
	// Phrases are further phrases that alone name the topic.
	Phrases []string
	// MinKeywords is how many distinct keywords of the topic a text must hold to be about it
	// when no phrase matches. Default 2.
	MinKeywords int
	// Message is the job error message when the topic blocks.
	Message string
}

// WordsConfig is the word filter.
type WordsConfig struct {
	// Words are words or phrases matched whole, case-insensitively.
	Words []string
	// Profanity adds the managed profanity list.
	Profanity bool
	// Action is BLOCK (default) or MASK.
	Action string
	// Mask replaces each filtered word or phrase under MASK. Default "***".
	Mask    string
	Message string
}

// PromptAttackConfig turns on prompt-attack detection (meant for input).
type PromptAttackConfig struct {
	Message string
}

// GroundingConfig is contextual grounding (output only, and only for jobs that give a
// context). A threshold of 0 turns its check off.
type GroundingConfig struct {
	// GroundingThreshold is the least share of the answer's content words found in the context.
	GroundingThreshold float64
	// RelevanceThreshold is the least share of the question's content words the answer takes up.
	RelevanceThreshold float64
	// Action is BLOCK (default) or NONE (report only).
	Action  string
	Message string
}

// Guard applies one side's policies. It is immutable after New and safe for concurrent use.
type Guard struct {
	cfg      Config
	detector *Detector
	actions  map[string]string // per entity type, resolved
	words    *phraseSet        // custom words
	profane  *phraseSet
	topics   []*topicMatcher
	attacks  *attackDetector
	tokens   bool // whether any word-level policy needs the text's words
}

var (
	_ pipeline.Guard        = (*Guard)(nil)
	_ pipeline.ContextGuard = (*Guard)(nil)
)

// New checks cfg and compiles its policies. Errors name the setting to fix.
func New(cfg Config) (*Guard, error) {
	g := &Guard{cfg: cfg, actions: map[string]string{}}
	var errs []error
	if p := cfg.PII; p != nil {
		def := strings.ToUpper(cmpOr(p.Action, ActionAnonymize))
		if !validAction(def, ActionBlock, ActionAnonymize, ActionNone) {
			errs = append(errs, fmt.Errorf("pii.action %q: use BLOCK, ANONYMIZE or NONE", p.Action))
		}
		if s := cmpOr(p.AnonymizeWith, AnonymizePlaceholder); s != AnonymizePlaceholder && s != AnonymizeToken {
			errs = append(errs, fmt.Errorf("pii.anonymize_with %q: use placeholder or token", p.AnonymizeWith))
		}
		if p.Restore && p.AnonymizeWith != AnonymizeToken {
			errs = append(errs, errors.New("pii.restore_in_output needs pii.anonymize_with: token (placeholders cannot be told apart)"))
		}
		for _, e := range p.Entities {
			g.actions[e] = def
		}
		var custom []CustomPattern
		for i, c := range p.Custom {
			re, err := regexp.Compile(c.Pattern)
			if err != nil {
				errs = append(errs, fmt.Errorf("pii.custom[%d] (%s): pattern does not compile (use RE2 syntax): %w", i, c.Name, err))
				continue
			}
			if c.Name == "" {
				errs = append(errs, fmt.Errorf("pii.custom[%d]: give the pattern a name (it is the entity type reported)", i))
				continue
			}
			custom = append(custom, CustomPattern{Name: c.Name, Re: re})
			g.actions[c.Name] = strings.ToUpper(cmpOr(c.Action, def))
		}
		for e, a := range p.Actions {
			if _, ok := g.actions[e]; !ok {
				errs = append(errs, fmt.Errorf("pii action for %s: the entity is not in pii.entities or pii.custom; add it there", e))
			}
			g.actions[e] = strings.ToUpper(a)
		}
		for e, a := range g.actions {
			if !validAction(a, ActionBlock, ActionAnonymize, ActionNone) {
				errs = append(errs, fmt.Errorf("pii action for %s is %q: use BLOCK, ANONYMIZE or NONE", e, a))
			}
		}
		d, err := NewDetectorWithRegions(p.Entities, custom, p.PhoneRegions)
		var unknownRegion *UnknownRegionError
		switch {
		case errors.As(err, &unknownRegion):
			errs = append(errs, fmt.Errorf("pii.phone_regions: %w", err))
		case err != nil:
			errs = append(errs, fmt.Errorf("pii.entities: %w", err))
		}
		g.detector = d
	}
	if w := cfg.Words; w != nil {
		if a := strings.ToUpper(cmpOr(w.Action, ActionBlock)); !validAction(a, ActionBlock, ActionMask) {
			errs = append(errs, fmt.Errorf("word filter action %q: use BLOCK or MASK", w.Action))
		}
		if len(w.Words) > 0 {
			g.words = newPhraseSet()
			for _, s := range w.Words {
				g.words.add(s)
			}
		}
		if w.Profanity {
			g.profane = newPhraseSet()
			for _, s := range profanity {
				g.profane.add(s)
			}
		}
	}
	for i, t := range cfg.DeniedTopics {
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("denied_topics[%d]: give the topic a name", i))
			continue
		}
		g.topics = append(g.topics, newTopicMatcher(t))
	}
	if cfg.PromptAttack != nil {
		g.attacks = newAttackDetector()
	}
	if gr := cfg.Grounding; gr != nil {
		if gr.GroundingThreshold < 0 || gr.GroundingThreshold >= 1 || gr.RelevanceThreshold < 0 || gr.RelevanceThreshold >= 1 {
			errs = append(errs, errors.New("grounding thresholds must be from 0 to 0.99"))
		}
		if a := strings.ToUpper(cmpOr(gr.Action, ActionBlock)); !validAction(a, ActionBlock, ActionNone) {
			errs = append(errs, fmt.Errorf("grounding action %q: use BLOCK or NONE", gr.Action))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g.tokens = g.words != nil || g.profane != nil || len(g.topics) > 0 || g.attacks != nil
	return g, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func validAction(a string, allowed ...string) bool {
	for _, x := range allowed {
		if a == x {
			return true
		}
	}
	return false
}

// Check applies the policies to texts; see CheckWithContext.
func (g *Guard) Check(ctx context.Context, stage pipeline.GuardStage, texts []string) (pipeline.GuardOutcome, error) {
	return g.CheckWithContext(ctx, stage, texts, pipeline.GuardContext{})
}

// finding accumulates one assessment.
type finding struct {
	policy, typ, action string
	matches             int
}

// checkState is the working state of one check.
type checkState struct {
	g        *Guard
	findings []finding
	blocked  string // the first blocking policy's message
	tokens   map[string]string
	counters map[string]int
	matches  []Match
	ws       []word
	stems    []string
	answer   map[string]bool // the answer's stems, true once found in the context
	edits    []edit
	text     string // the text being checked
	attack   attackScratch
}

// statePool recycles the scratch buffers of checks: a job's check allocates little beyond
// its result.
var statePool = sync.Pool{New: func() any { return new(checkState) }}

// release resets st and returns it to the pool.
func (st *checkState) release() {
	st.g, st.blocked, st.tokens, st.counters, st.text = nil, "", nil, nil, ""
	st.findings, st.matches, st.ws, st.stems, st.edits = st.findings[:0], st.matches[:0], st.ws[:0], st.stems[:0], st.edits[:0]
	statePool.Put(st)
}

// edit replaces text[start:end] with repl.
type edit struct {
	start, end int
	repl       string
}

func (st *checkState) find(policy, typ, action string, n int) {
	for i := range st.findings {
		f := &st.findings[i]
		if f.policy == policy && f.typ == typ && f.action == action {
			f.matches += n
			return
		}
	}
	st.findings = append(st.findings, finding{policy: policy, typ: typ, action: action, matches: n})
}

func (st *checkState) block(msg string) {
	if st.blocked == "" {
		st.blocked = msg
	}
}

// CheckWithContext applies the policies to texts. Blocking policies report every finding and
// the first blocking policy's message as Reason; otherwise Texts are the texts with sensitive
// entities anonymized and words masked as configured. jc supplies the job's id (for logs), its
// question and its context (for contextual grounding on output). It never returns an error:
// the built-in policies need no remote service.
func (g *Guard) CheckWithContext(ctx context.Context, stage pipeline.GuardStage, texts []string, jc pipeline.GuardContext) (pipeline.GuardOutcome, error) {
	st := statePool.Get().(*checkState)
	defer st.release()
	st.g = g
	out := make([]string, len(texts))
	for i, t := range texts {
		out[i] = st.checkText(t)
	}
	if gr := g.cfg.Grounding; gr != nil && stage == pipeline.GuardOutput && jc.Context != "" {
		st.ground(gr, strings.Join(texts, "\n"), jc)
	}
	res := pipeline.GuardOutcome{Texts: out, Blocked: st.blocked != "", Reason: st.blocked}
	if res.Blocked {
		res.Texts = texts
	} else if p := g.cfg.PII; p != nil && p.Restore && len(st.tokens) > 0 {
		pairs := make([]string, 0, 2*len(st.tokens))
		for key, tok := range st.tokens {
			_, value, _ := strings.Cut(key, "\x00")
			pairs = append(pairs, tok, value)
		}
		res.Restore = strings.NewReplacer(pairs...).Replace
	}
	for _, f := range st.findings {
		action := f.action
		if res.Blocked && action == messages.GuardActionAnonymized {
			// Nothing reaches the model or the result when the job is blocked.
			action = messages.GuardActionNone
		}
		res.Assessments = append(res.Assessments, messages.Assessment{Policy: f.policy, Type: f.typ, Matches: f.matches, Action: action})
		if action != messages.GuardActionNone {
			g.cfg.Metrics.intervention(f.policy, action, stage)
		}
		ev := g.cfg.Logger.Info()
		if action == messages.GuardActionBlocked {
			ev = g.cfg.Logger.Warn()
		}
		ev.Str("job_id", jc.JobID).Str("stage", string(stage)).Str("policy", f.policy).Str("type", f.typ).
			Int("matches", f.matches).Str("action", action).Msg("guardrail finding")
	}
	return res, nil
}

// checkText runs the text policies over t and returns it with the edits applied.
func (st *checkState) checkText(t string) string {
	g := st.g
	st.edits, st.text = st.edits[:0], t
	if g.detector != nil {
		st.matches = g.detector.Detect(t, st.matches[:0])
		st.sensitive(t)
	}
	if g.tokens {
		st.ws = words(t, st.ws[:0])
		st.wordPolicies()
	}
	if len(st.edits) == 0 {
		return t
	}
	return applyEdits(t, st.edits)
}

func (st *checkState) sensitive(t string) {
	p := st.g.cfg.PII
	var blockedTypes []string
	for _, m := range st.matches {
		switch st.g.actions[m.Type] {
		case ActionBlock:
			st.find(PolicySensitive, m.Type, messages.GuardActionBlocked, 1)
			if !contains(blockedTypes, m.Type) {
				blockedTypes = append(blockedTypes, m.Type)
			}
		case ActionAnonymize:
			st.find(PolicySensitive, m.Type, messages.GuardActionAnonymized, 1)
			st.edits = append(st.edits, edit{m.Start, m.End, st.placeholder(p, m.Type, t[m.Start:m.End])})
		default:
			st.find(PolicySensitive, m.Type, messages.GuardActionNone, 1)
		}
	}
	if len(blockedTypes) > 0 {
		st.block(cmpOr(p.Message, "the text contains sensitive information ("+strings.Join(blockedTypes, ", ")+
			"); remove it and submit the job again"))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// placeholder returns what replaces value of type typ.
func (st *checkState) placeholder(p *PIIConfig, typ, value string) string {
	if p.AnonymizeWith != AnonymizeToken {
		return "{" + typ + "}"
	}
	if st.tokens == nil {
		st.tokens, st.counters = map[string]string{}, map[string]int{}
	}
	key := typ + "\x00" + value
	if tok, ok := st.tokens[key]; ok {
		return tok
	}
	st.counters[typ]++
	tok := "{" + typ + "_" + strconv.Itoa(st.counters[typ]) + "}"
	st.tokens[key] = tok
	return tok
}

func (st *checkState) wordPolicies() {
	g, ws := st.g, st.ws
	if w := g.cfg.Words; w != nil {
		mask := strings.ToUpper(cmpOr(w.Action, ActionBlock)) == ActionMask
		for _, list := range []struct {
			set *phraseSet
			typ string
		}{{g.words, TypeCustomWord}, {g.profane, TypeProfanity}} {
			n := 0
			list.set.find(ws, func(i, j int) {
				n++
				if mask && !st.overlapsEdit(ws[i].start, ws[j-1].end) {
					st.edits = append(st.edits, edit{ws[i].start, ws[j-1].end, cmpOr(w.Mask, DefaultMask)})
				}
			})
			if n == 0 {
				continue
			}
			if mask {
				st.find(PolicyWord, list.typ, messages.GuardActionAnonymized, n)
			} else {
				st.find(PolicyWord, list.typ, messages.GuardActionBlocked, n)
				st.block(cmpOr(w.Message, "the text contains a filtered word; rephrase it and submit the job again"))
			}
		}
	}
	if len(g.topics) > 0 {
		st.stems = st.stems[:0]
		for _, w := range ws {
			s := ""
			if contentWord(w.w) {
				// Accents are dropped ("fièvre" meets "fievre"), as topic words are written.
				s = stem(normalizeText(w.w))
			}
			st.stems = append(st.stems, s)
		}
	}
	for k, tm := range g.topics {
		if n := tm.count(ws, st.stems); n > 0 {
			st.find(PolicyTopic, tm.name, messages.GuardActionBlocked, n)
			st.block(cmpOr(g.cfg.DeniedTopics[k].Message, "the job is about a denied topic ("+tm.name+"); it cannot be processed"))
		}
	}
	if g.attacks != nil {
		if n := g.attacks.check(st.text, ws, &st.attack); n > 0 {
			st.find(PolicyAttack, TypePromptAttack, messages.GuardActionBlocked, n)
			st.block(cmpOr(g.cfg.PromptAttack.Message, "the input looks like a prompt attack (an attempt to override instructions); rephrase it and submit the job again"))
		}
	}
}

// ground scores answer against the job's context and question. The answer's stems are the
// only set built; the context is streamed against it, so a long context costs no map.
func (st *checkState) ground(gr *GroundingConfig, answer string, jc pipeline.GuardContext) {
	if st.answer == nil {
		st.answer = map[string]bool{}
	}
	a := st.answer
	clear(a)
	st.ws = words(answer, st.ws[:0])
	for _, w := range st.ws {
		if contentWord(w.w) {
			a[stem(w.w)] = false
		}
	}
	action := messages.GuardActionBlocked
	if strings.ToUpper(gr.Action) == ActionNone {
		action = messages.GuardActionNone
	}
	if gr.GroundingThreshold > 0 && len(a) > 0 {
		found := 0
		st.ws = words(jc.Context, st.ws[:0])
		for _, w := range st.ws {
			if !contentWord(w.w) {
				continue
			}
			s := stem(w.w)
			if seen, ok := a[s]; ok && !seen {
				a[s] = true
				found++
			}
		}
		if score := float64(found) / float64(len(a)); score < gr.GroundingThreshold {
			st.find(PolicyGrounding, TypeGrounding, action, 1)
			if action == messages.GuardActionBlocked {
				st.block(cmpOr(gr.Message, fmt.Sprintf("the answer is not grounded in the given context (score %.2f, threshold %.2f)", score, gr.GroundingThreshold)))
			}
		}
	}
	if gr.RelevanceThreshold > 0 && jc.Question != "" {
		st.ws = words(jc.Question, st.ws[:0])
		q := stems(st.ws)
		n := 0
		for s := range q {
			if _, ok := a[s]; ok {
				n++
			}
		}
		score := 1.0
		if len(q) > 0 {
			score = float64(n) / float64(len(q))
		}
		if score < gr.RelevanceThreshold {
			st.find(PolicyGrounding, TypeRelevance, action, 1)
			if action == messages.GuardActionBlocked {
				st.block(cmpOr(gr.Message, fmt.Sprintf("the answer is not relevant to the question (score %.2f, threshold %.2f)", score, gr.RelevanceThreshold)))
			}
		}
	}
}

// overlapsEdit reports whether [start, end) overlaps an edit already planned (sensitive
// entities are planned first, so a word mask never cuts one short).
func (st *checkState) overlapsEdit(start, end int) bool {
	for _, e := range st.edits {
		if start < e.end && e.start < end {
			return true
		}
	}
	return false
}

// applyEdits applies non-overlapping edits (an earlier edit wins an overlap).
func applyEdits(t string, edits []edit) string {
	sortEdits(edits)
	var b strings.Builder
	b.Grow(len(t))
	at := 0
	for _, e := range edits {
		if e.start < at {
			continue
		}
		b.WriteString(t[at:e.start])
		b.WriteString(e.repl)
		at = e.end
	}
	b.WriteString(t[at:])
	return b.String()
}

func sortEdits(edits []edit) {
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && (edits[j].start < edits[j-1].start ||
			edits[j].start == edits[j-1].start && edits[j].end > edits[j-1].end); j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
}
