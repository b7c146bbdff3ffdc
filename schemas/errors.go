package schemas

import (
	"cmp"
	"math/big"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

var printer = message.NewPrinter(language.English)

// located is a FieldError with the instance path it came from, kept to sort problems in document
// order (array indexes numerically).
type located struct {
	tokens []string
	FieldError
}

// flatten turns the jsonschema error tree into one FieldError per leaf problem, deduplicated and
// sorted by field. raw maps schema $id to the decoded schema, used to find "x-errors" messages and
// the known property names of an object.
func flatten(root *jsonschema.ValidationError, doc any, raw map[string]any) []FieldError {
	var out []located
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if pn, ok := e.ErrorKind.(*kind.PropertyNames); ok {
			tokens := append(slices.Clip(e.InstanceLocation), pn.Property)
			for _, leaf := range leaves(e) {
				msg := "is not an allowed name: " + leafMessage(leaf, raw)
				out = append(out, located{tokens, FieldError{fieldPath(doc, tokens), msg}})
			}
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, name := range k.Missing {
				tokens := append(slices.Clip(e.InstanceLocation), name)
				out = append(out, located{tokens, FieldError{fieldPath(doc, tokens), "is required"}})
			}
		case *kind.AdditionalProperties:
			known := knownProperties(raw, e.SchemaURL)
			for _, name := range k.Properties {
				tokens := append(slices.Clip(e.InstanceLocation), name)
				out = append(out, located{tokens, FieldError{fieldPath(doc, tokens), unknownFieldMessage(name, known)}})
			}
		default:
			out = append(out, located{e.InstanceLocation, FieldError{fieldPath(doc, e.InstanceLocation), leafMessage(e, raw)}})
		}
	}
	walk(root)

	slices.SortStableFunc(out, func(a, b located) int { return compareTokens(a.tokens, b.tokens) })
	res := make([]FieldError, 0, len(out))
	for i, l := range out {
		if i > 0 && l.FieldError == out[i-1].FieldError {
			continue
		}
		// Identical problems of one field may be separated by others of the same field.
		if slices.Contains(res, l.FieldError) {
			continue
		}
		res = append(res, l.FieldError)
	}
	return res
}

// leaves returns the leaf errors under e (e itself when it has no causes).
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func compareTokens(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		ai, aerr := strconv.Atoi(a[i])
		bi, berr := strconv.Atoi(b[i])
		if aerr == nil && berr == nil {
			return cmp.Compare(ai, bi)
		}
		return strings.Compare(a[i], b[i])
	}
	return cmp.Compare(len(a), len(b))
}

// leafMessage says what is wrong with one value, preferring the schema's own "x-errors" message
// for the failing keyword.
func leafMessage(e *jsonschema.ValidationError, raw map[string]any) string {
	if kw := e.ErrorKind.KeywordPath(); len(kw) > 0 {
		if msg := customMessage(raw, e.SchemaURL, kw[0]); msg != "" {
			return msg
		}
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = article(w)
		}
		return "must be " + strings.Join(want, " or ") + ", not " + article(k.Got)
	case *kind.Enum:
		return "must be " + oneOf(k.Want)
	case *kind.Const:
		return "must be " + display(k.Want)
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return "must be at least " + strconv.Itoa(k.Want) + " characters long"
	case *kind.MaxLength:
		return "must be at most " + strconv.Itoa(k.Want) + " characters long (it has " + strconv.Itoa(k.Got) + ")"
	case *kind.Pattern:
		return "must match the pattern " + k.Want
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.Minimum:
		return "must be at least " + ratString(k.Want)
	case *kind.Maximum:
		return "must be at most " + ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be greater than " + ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + ratString(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratString(k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return "must not be empty"
		}
		return "must have at least " + strconv.Itoa(k.Want) + " items"
	case *kind.MaxItems:
		return "must have at most " + strconv.Itoa(k.Want) + " items (it has " + strconv.Itoa(k.Got) + ")"
	case *kind.MinProperties:
		return "must have at least " + strconv.Itoa(k.Want) + " fields"
	case *kind.MaxProperties:
		return "must have at most " + strconv.Itoa(k.Want) + " fields"
	case *kind.UniqueItems:
		return "items " + strconv.Itoa(k.Duplicates[0]) + " and " + strconv.Itoa(k.Duplicates[1]) + " are equal; list each value once"
	case *kind.FalseSchema, *kind.Not:
		return "is not allowed here"
	case *kind.InvalidJsonValue:
		return "is not a JSON value (decode the document with encoding/json or YAML into plain maps, slices and scalars)"
	}
	return e.ErrorKind.LocalizedString(printer)
}

func article(t string) string {
	switch t {
	case "object", "array", "integer":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func oneOf(vals []any) string {
	if len(vals) == 1 {
		return display(vals[0])
	}
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = display(v)
	}
	return "one of " + strings.Join(s, ", ")
}

func display(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	}
	return printer.Sprint(v)
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// fieldPath renders an instance location as a dotted path: object keys joined with ".", array
// indexes as "[i]", keys that are not plain identifiers quoted as ["key"].
func fieldPath(doc any, tokens []string) string {
	var sb strings.Builder
	cur := doc
	for _, tok := range tokens {
		switch v := cur.(type) {
		case []any:
			sb.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				cur = v[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = v[tok]
		default:
			cur = nil
		}
		if plainKey(tok) {
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(tok)
		} else {
			sb.WriteString("[" + strconv.Quote(tok) + "]")
		}
	}
	return sb.String()
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// schemaAt resolves an absolute schema location ("id#/json/pointer") in the raw schemas.
func schemaAt(raw map[string]any, loc string) map[string]any {
	base, frag, _ := strings.Cut(loc, "#")
	cur := raw[base]
	if frag != "" {
		if f, err := url.PathUnescape(frag); err == nil {
			frag = f
		}
		for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch v := cur.(type) {
			case map[string]any:
				cur = v[tok]
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(v) {
					return nil
				}
				cur = v[i]
			default:
				return nil
			}
		}
	}
	m, _ := cur.(map[string]any)
	return m
}

func customMessage(raw map[string]any, loc, keyword string) string {
	s := schemaAt(raw, loc)
	if s == nil {
		return ""
	}
	msgs, _ := s["x-errors"].(map[string]any)
	msg, _ := msgs[keyword].(string)
	return msg
}

func knownProperties(raw map[string]any, loc string) []string {
	s := schemaAt(raw, loc)
	props, _ := s["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// unknownFieldMessage says a field is not in the schema and suggests the closest known name: one
// within a third of its length in edits, or one it is a prefix of (or that is a prefix of it).
func unknownFieldMessage(name string, known []string) string {
	const msg = "is not a known field"
	if len(known) == 0 {
		return msg + "; remove it"
	}
	lower := strings.ToLower(name)
	best, bestDist := "", max(1, len(name)/3)+1
	for _, k := range known {
		d := editDistance(lower, k)
		if min(len(lower), len(k)) >= 3 && (strings.HasPrefix(k, lower) || strings.HasPrefix(lower, k)) {
			d = 1 // a shortened or extended name
		}
		if d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return msg + " (did you mean " + best + "?)"
	}
	return msg + "; known fields: " + strings.Join(known, ", ")
}

// editDistance is the Levenshtein distance between a and b, bytewise (names are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
