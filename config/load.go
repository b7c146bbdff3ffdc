package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/infleet/infleet/schemas"
)

// ValidationError lists every problem of a configuration. Load and Validate return it; the
// command prints it and exits with status 2.
type ValidationError struct {
	// Source names the config file, or "" when there is none.
	Source   string
	Problems []schemas.FieldError
}

// Error lists every problem, one per line, after a line naming the file.
func (e *ValidationError) Error() string {
	var sb strings.Builder
	sb.WriteString("invalid configuration")
	if e.Source != "" {
		sb.WriteString(" in " + e.Source)
	}
	sb.WriteString(":")
	for _, p := range e.Problems {
		sb.WriteString("\n  " + p.String())
	}
	return sb.String()
}

// Load reads the YAML file at path ("" = none; then INFLEET_CONFIG in environ names it, if set),
// applies the INFLEET_* overrides in environ (os.Environ() form), validates the result against
// schemas.ValidateConfig and the semantic rules of Validate, applies defaults, and returns the
// config or a *ValidationError listing every problem. A file that cannot be read is an error
// wrapping the os error. Load has no side effects and is safe for concurrent use.
func Load(path string, environ []string) (Config, error) {
	if path == "" {
		path, _ = lookupEnv(environ, EnvConfig)
	}
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("read config file (check --config or %s): %w", EnvConfig, err)
		}
	}
	c, err := parse(data, environ)
	if verr, ok := errors.AsType[*ValidationError](err); ok {
		verr.Source = path
	}
	return c, err
}

// LoadBytes is Load for a config document already read (from an S3 object, say); source names
// it in problems.
func LoadBytes(data []byte, source string, environ []string) (Config, error) {
	c, err := parse(data, environ)
	if verr, ok := errors.AsType[*ValidationError](err); ok {
		verr.Source = source
	}
	return c, err
}

// maxExpandedNodes bounds the values a config document may expand to through YAML aliases, so
// that a small document cannot make decoding take seconds (an alias bomb).
const maxExpandedNodes = 100_000

// expandedNodes counts the nodes of n with every alias expanded, stopping once the count passes
// limit.
func expandedNodes(n *yaml.Node, limit int) int {
	count := 0
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || count > limit {
			return
		}
		count++
		if depth > 1000 {
			count = limit + 1 // a self-referencing alias
			return
		}
		if n.Kind == yaml.AliasNode {
			walk(n.Alias, depth+1)
			return
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return count
}

// parse does Load's work on the file's bytes.
func parse(data []byte, environ []string) (Config, error) {
	var raw any
	var root yaml.Node
	err := yaml.Unmarshal(data, &root)
	if err == nil && expandedNodes(&root, maxExpandedNodes) > maxExpandedNodes {
		return Config{}, &ValidationError{Problems: []schemas.FieldError{{Message: fmt.Sprintf(
			"the YAML expands to more than %d values through its aliases; write the repeated parts out", maxExpandedNodes)}}}
	}
	if err == nil && root.Kind != 0 {
		err = root.Decode(&raw)
	}
	if err != nil {
		return Config{}, &ValidationError{Problems: []schemas.FieldError{{Message: "not valid YAML: " + err.Error()}}}
	}
	doc := normalize(raw)
	if doc == nil {
		doc = map[string]any{}
	}
	var problems []schemas.FieldError
	fromEnv := map[string]string{}
	if m, ok := doc.(map[string]any); ok {
		problems, fromEnv = applyEnv(m, environ)
	}
	for _, p := range schemas.ValidateConfig(doc) {
		if name, ok := fromEnv[p.Field]; ok {
			p.Message += " (set by " + name + ")"
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		// Semantic rules need a well-formed document; fix the shape first.
		return Config{}, &ValidationError{Problems: problems}
	}
	c, err := decode(doc)
	if err != nil {
		return Config{}, &ValidationError{Problems: []schemas.FieldError{{Message: err.Error()}}}
	}
	c.AWSEndpoint, _ = lookupEnv(environ, EnvAWSEndpoint)
	if v, _ := lookupEnv(environ, EnvAWSEmulator); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, &ValidationError{Problems: []schemas.FieldError{{Field: EnvAWSEmulator,
				Message: fmt.Sprintf("%q is not a boolean: set it to true or false", v)}}}
		}
		c.AWSEmulator = on
	}
	c.ApplyDefaults()
	if verr := c.semantic(); verr != nil {
		return Config{}, verr
	}
	return c, nil
}

// decode turns a schema-valid document into a Config (yaml.v3 parses the duration strings).
func decode(doc any) (Config, error) {
	b, err := yaml.Marshal(doc)
	if err != nil {
		return Config{}, fmt.Errorf("re-encode config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err.Error() != "EOF" {
		return Config{}, fmt.Errorf("decode config (the schema and the Config struct disagree; report this bug): %w", err)
	}
	return c, nil
}

// normalize turns a YAML-decoded value into what JSON decoding would give: maps with string
// keys, []any, string, bool, nil and finite numbers. Non-string keys become their string form;
// timestamps and non-finite floats become strings, so the schema reports them as wrong types.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			v[k] = normalize(c)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, c := range v {
			m[fmt.Sprint(k)] = normalize(c)
		}
		return m
	case []any:
		for i, c := range v {
			v[i] = normalize(c)
		}
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		return v
	case uint64:
		if v > math.MaxInt64 {
			return float64(v)
		}
		return int64(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case int, int64, string, bool, nil:
		return v
	}
	return fmt.Sprint(v)
}

// Validate checks c as it stands (call ApplyDefaults first when c was built in code and leaves
// settings to their defaults): every value against the config schema, then the semantic rules —
// routes and fallbacks name configured models, a "default" route exists, the section of each
// chosen transport, store and result store is complete, and so on. It returns nil or a
// *ValidationError listing every problem. It does not modify c.
func (c *Config) Validate() error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return &ValidationError{Problems: []schemas.FieldError{{Message: "encode config: " + err.Error()}}}
	}
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return &ValidationError{Problems: []schemas.FieldError{{Message: "re-read config: " + err.Error()}}}
	}
	doc := normalize(raw)
	if doc == nil {
		doc = map[string]any{}
	}
	if problems := schemas.ValidateConfig(doc); len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	if verr := c.semantic(); verr != nil {
		return verr
	}
	return nil
}
