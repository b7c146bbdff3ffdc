package config

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Defaults of the guardrails section, applied by ApplyDefaults (and so by Load) to every setting
// left unset.
const (
	DefaultPIIAction = "ANONYMIZE"
)

// Guardrails are content policies applied to job input (before the model) and output.
type Guardrails struct {
	Input  GuardrailPolicies `yaml:"input,omitempty"`
	Output GuardrailPolicies `yaml:"output,omitempty"`
	// Bedrock applies an Amazon Bedrock guardrail to input and output, after the built-in
	// policies (or instead of them when none are set). Default none.
	Bedrock *BedrockGuardrail `yaml:"bedrock,omitempty"`
}

// Enabled reports whether any policy is configured.
func (g Guardrails) Enabled() bool {
	return g.Input.Enabled() || g.Output.Enabled() || (g.Bedrock != nil && g.Bedrock.GuardrailID != "")
}

// BedrockGuardrail names a guardrail of Amazon Bedrock, applied with ApplyGuardrail.
type BedrockGuardrail struct {
	// GuardrailID is the guardrail's identifier or ARN. Required.
	GuardrailID string `yaml:"guardrail_id,omitempty"`
	// GuardrailVersion is a version number or DRAFT. Default DRAFT.
	GuardrailVersion string `yaml:"guardrail_version,omitempty"`
	// Region of Bedrock. Default AWS_REGION.
	Region string `yaml:"region,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// GuardrailPolicies are the policies of one side (input or output).
type GuardrailPolicies struct {
	// PII detects entities and anonymizes or blocks them. Default none.
	PII *PIIPolicy `yaml:"pii,omitempty"`
	// DeniedTopics block content about these topics. Default none.
	DeniedTopics []DeniedTopic `yaml:"denied_topics,omitempty"`
	// Words block content containing any of these words. Default none.
	Words []string `yaml:"words,omitempty"`
	// WordFilter sets how words (and the managed profanity list) are acted on. Default: block.
	WordFilter *WordFilter `yaml:"word_filter,omitempty"`
	// PromptAttack detects instruction-override and role-play jailbreaks (input). Default off.
	PromptAttack *PromptAttack `yaml:"prompt_attack,omitempty"`
	// Grounding scores the answer against the job's context and question (output). Default off.
	Grounding *Grounding `yaml:"grounding,omitempty"`
	// TopicClassifier also asks a model whether the text is about a denied topic. Default off.
	TopicClassifier *TopicClassifier `yaml:"topic_classifier,omitempty"`
}

// TopicClassifier names the model that classifies texts against the denied topics.
type TopicClassifier struct {
	// Model is a configured model's name. Required.
	Model string `yaml:"model,omitempty"`
}

// Enabled reports whether any policy of this side is configured.
func (p GuardrailPolicies) Enabled() bool {
	return p.PII != nil || len(p.DeniedTopics) > 0 || len(p.Words) > 0 ||
		(p.WordFilter != nil && p.WordFilter.Profanity) || (p.PromptAttack != nil && p.PromptAttack.Enabled) ||
		(p.Grounding != nil && (p.Grounding.GroundingThreshold > 0 || p.Grounding.RelevanceThreshold > 0))
}

// PIIPolicy detects personal data.
type PIIPolicy struct {
	// Entities are entity types such as EMAIL, PHONE, CREDIT_CARD, US_SSN. Required.
	Entities []string `yaml:"entities,omitempty"`
	// Action is ANONYMIZE, BLOCK or NONE (detect and report only). Default ANONYMIZE.
	Action string `yaml:"action,omitempty"`
	// EntityActions override Action for single entity types. Default none.
	EntityActions []EntityAction `yaml:"entity_actions,omitempty"`
	// Custom are named regular expressions detected like entities. Default none.
	Custom []CustomPattern `yaml:"custom,omitempty"`
	// AnonymizeWith is placeholder ({EMAIL}) or token ({EMAIL_1}, stable within a job). Default
	// placeholder.
	AnonymizeWith string `yaml:"anonymize_with,omitempty"`
	// Message is the job's error message when this policy blocks. Default names the types.
	Message string `yaml:"message,omitempty"`
	// RestoreInOutput puts the values anonymized on input back into the stored answer (input
	// side, anonymize_with token only). Default false.
	RestoreInOutput bool `yaml:"restore_in_output,omitempty"`
	// PhoneRegions are the ISO 3166-1 regions whose national phone formats (without +CC) are
	// recognized; international numbers are recognized for every country. Default
	// DefaultPhoneRegions.
	PhoneRegions []string `yaml:"phone_regions,omitempty"`
}

// DefaultPhoneRegions are the regions whose national phone formats PHONE recognizes when
// pii.phone_regions is unset (the same list as the guard's).
var DefaultPhoneRegions = []string{"US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "PT", "IT", "IN", "AU"}

// EntityAction is the action for one entity type.
type EntityAction struct {
	Type   string `yaml:"type,omitempty"`
	Action string `yaml:"action,omitempty"`
}

// CustomPattern is a named regular expression (RE2 syntax) treated as an entity type.
type CustomPattern struct {
	Name    string `yaml:"name,omitempty"`
	Pattern string `yaml:"pattern,omitempty"`
	// Action overrides the policy's action for this pattern. Default the policy's.
	Action string `yaml:"action,omitempty"`
}

// DeniedTopic is a topic jobs may not be about.
type DeniedTopic struct {
	Name       string   `yaml:"name,omitempty"`
	Definition string   `yaml:"definition,omitempty"`
	Examples   []string `yaml:"examples,omitempty"`
	// Phrases name the topic on their own. Default none.
	Phrases []string `yaml:"phrases,omitempty"`
	// MinKeywords is how many distinct keywords of the topic a text must hold when no phrase
	// matches. Default 2.
	MinKeywords int `yaml:"min_keywords,omitempty"`
	// Message is the job's error message when this topic blocks. Default names the topic.
	Message string `yaml:"message,omitempty"`
}

// WordFilter configures the word policy.
type WordFilter struct {
	// Profanity adds the managed profanity list. Default false.
	Profanity bool `yaml:"profanity,omitempty"`
	// Action is BLOCK or MASK. Default BLOCK.
	Action string `yaml:"action,omitempty"`
	// Mask replaces each filtered word under MASK. Default "***".
	Mask string `yaml:"mask,omitempty"`
	// Message is the job's error message when a word blocks. Default generic.
	Message string `yaml:"message,omitempty"`
}

// PromptAttack configures prompt-attack detection.
type PromptAttack struct {
	Enabled bool `yaml:"enabled,omitempty"`
	// Message is the job's error message when an attack blocks. Default generic.
	Message string `yaml:"message,omitempty"`
}

// Grounding configures contextual grounding of answers to jobs that give a context.
type Grounding struct {
	// GroundingThreshold is the least share of the answer's content words found in the
	// context, 0 to 0.99; 0 turns the check off. Default 0.
	GroundingThreshold float64 `yaml:"grounding_threshold,omitempty"`
	// RelevanceThreshold is the least share of the question's content words the answer takes
	// up, 0 to 0.99; 0 turns the check off. Default 0.
	RelevanceThreshold float64 `yaml:"relevance_threshold,omitempty"`
	// Action is BLOCK or NONE (report only). Default BLOCK.
	Action string `yaml:"action,omitempty"`
	// Message is the job's error message when grounding blocks. Default gives the score.
	Message string `yaml:"message,omitempty"`
}

// applyDefaults fills the unset settings of each side's PII policy, on a copy of the policy.
func (g *Guardrails) applyDefaults() {
	for _, side := range []*GuardrailPolicies{&g.Input, &g.Output} {
		if side.PII != nil {
			pii := *side.PII
			pii.Action = cmp.Or(pii.Action, DefaultPIIAction)
			if len(pii.PhoneRegions) == 0 {
				pii.PhoneRegions = append([]string(nil), DefaultPhoneRegions...)
			}
			side.PII = &pii
		}
	}
}

// checkGuardrails checks that a topic classifier names a configured model and has denied topics
// to classify against.
func (c *Config) checkGuardrails(p *problems) {
	for _, sg := range []struct {
		side string
		g    GuardrailPolicies
	}{{"input", c.Guardrails.Input}, {"output", c.Guardrails.Output}} {
		side, g := sg.side, sg.g
		if g.PII != nil {
			supported := phonenumbers.GetSupportedRegions()
			for i, r := range g.PII.PhoneRegions {
				if !supported[strings.ToUpper(r)] {
					p.add(fmt.Sprintf("guardrails.%s.pii.phone_regions[%d]", side, i),
						"%q is not a region with a phone numbering plan; use an ISO 3166-1 alpha-2 code such as US, GB or DE", r)
				}
			}
		}
		if tc := g.TopicClassifier; tc != nil {
			field := "guardrails." + side + ".topic_classifier"
			if _, ok := c.Model(tc.Model); !ok {
				p.add(field+".model", "names model %s, which is not configured; %s", tc.Model, c.modelHint())
			}
			if len(g.DeniedTopics) == 0 {
				p.add(field, "classifies against guardrails.%s.denied_topics, which is empty; add the topics", side)
			}
		}
	}
}
