package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/infleet/infleet/schemas"
)

// EnvPrefix starts every infleet environment variable.
const EnvPrefix = "INFLEET_"

// Environment variables infleet reads that are not config keys.
const (
	// EnvConfig names the config file when --config is not given.
	EnvConfig = "INFLEET_CONFIG"
	// EnvServer is the API base URL of the client subcommands.
	EnvServer = "INFLEET_SERVER"
	// EnvAPIKey is the API key of the client subcommands.
	EnvAPIKey = "INFLEET_API_KEY"
	// EnvAWSEndpoint is the endpoint of every AWS client whose section sets none.
	EnvAWSEndpoint = "INFLEET_AWS_ENDPOINT"
	// EnvAWSEmulator, set to true (or 1), says the AWS endpoint overrides point at an emulator on
	// purpose, so AWS clients may sign with placeholder credentials although the endpoint is not
	// a loopback address (an emulator in another container or on another host).
	EnvAWSEmulator = "INFLEET_AWS_EMULATOR"
)

// valueKind is how an environment value is turned into a config value.
type valueKind int

const (
	kindString valueKind = iota
	kindInteger
	kindNumber
	kindBoolean
	kindStringList // comma-separated
)

// envVar is one override: INFLEET_ + path in upper case joined with _.
type envVar struct {
	name string
	path []string
	kind valueKind
}

// envVars lists every override, derived once from the config schema: each scalar (or list of
// strings) reachable through object properties. Arrays of objects (models, triggers, API keys)
// and maps (routes) have no variables.
var envVars = sync.OnceValue(func() map[string]envVar {
	var schema map[string]any
	if err := json.Unmarshal(schemas.ConfigSchema(), &schema); err != nil {
		panic(fmt.Sprintf("config: config schema is not JSON: %v", err))
	}
	defs, _ := schema["$defs"].(map[string]any)
	out := map[string]envVar{}
	var walk func(node map[string]any, path []string)
	walk = func(node map[string]any, path []string) {
		node = deref(node, defs)
		if props, ok := node["properties"].(map[string]any); ok {
			for key, sub := range props {
				if subm, ok := sub.(map[string]any); ok {
					walk(subm, append(slices.Clip(path), key))
				}
			}
			return
		}
		kind, ok := scalarKind(node, defs)
		if !ok || len(path) == 0 {
			return
		}
		name := EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
		if prev, dup := out[name]; dup {
			panic(fmt.Sprintf("config: %s would set both %s and %s; rename a key", name,
				strings.Join(prev.path, "."), strings.Join(path, ".")))
		}
		out[name] = envVar{name: name, path: path, kind: kind}
	}
	walk(schema, nil)
	return out
})

// deref follows local "$ref": "#/$defs/name" chains.
func deref(node map[string]any, defs map[string]any) map[string]any {
	for range 8 {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		target, _ := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		if target == nil {
			return node
		}
		node = target
	}
	return node
}

func scalarKind(node map[string]any, defs map[string]any) (valueKind, bool) {
	if _, isEnum := node["enum"]; isEnum {
		return kindString, true
	}
	switch node["type"] {
	case "string":
		return kindString, true
	case "integer":
		return kindInteger, true
	case "number":
		return kindNumber, true
	case "boolean":
		return kindBoolean, true
	case "array":
		items, _ := node["items"].(map[string]any)
		if items != nil && deref(items, defs)["type"] == "string" {
			return kindStringList, true
		}
	}
	return 0, false
}

// EnvNames returns, sorted, every INFLEET_ variable that overrides a config key. Safe for
// concurrent use.
func EnvNames() []string {
	vars := envVars()
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// EnvKey returns the dotted config key that the variable name overrides ("transport.kind" for
// INFLEET_TRANSPORT_KIND) and whether there is one.
func EnvKey(name string) (string, bool) {
	v, ok := envVars()[name]
	return strings.Join(v.path, "."), ok
}

// UnknownEnv returns, sorted, the INFLEET_ variables in environ ("KEY=value" form) that are
// neither a config override nor one of the known non-config variables: most likely typos, worth
// a warning at start-up.
func UnknownEnv(environ []string) []string {
	var out []string
	vars := envVars()
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, ok := vars[name]; ok {
			continue
		}
		switch name {
		case EnvConfig, EnvServer, EnvAPIKey, EnvAWSEndpoint, EnvAWSEmulator:
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lookupEnv returns the value of name in environ; the last one wins, as in os.Getenv.
func lookupEnv(environ []string, name string) (string, bool) {
	val, found := "", false
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val, found = v, true
		}
	}
	return val, found
}

// applyEnv sets every override found in environ on doc, a decoded YAML document, typed by the
// schema. It returns the problems with values that cannot be typed, and the config keys set
// (dotted path -> variable name) to point at the variable in later messages. Empty values are
// ignored, as if unset.
func applyEnv(doc map[string]any, environ []string) ([]schemas.FieldError, map[string]string) {
	var problems []schemas.FieldError
	set := map[string]string{}
	vars := envVars()
	for _, name := range EnvNames() {
		raw, ok := lookupEnv(environ, name)
		if !ok || strings.TrimSpace(raw) == "" {
			continue
		}
		v := vars[name]
		key := strings.Join(v.path, ".")
		val, err := typed(raw, v.kind)
		if err != nil {
			problems = append(problems, schemas.FieldError{Field: key, Message: fmt.Sprintf("%s=%q: %v", name, raw, err)})
			continue
		}
		if setPath(doc, v.path, val) {
			set[key] = name
		}
	}
	return problems, set
}

func typed(raw string, kind valueKind) (any, error) {
	raw = strings.TrimSpace(raw)
	switch kind {
	case kindInteger:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("must be an integer")
		}
		return int(n), nil
	case kindNumber:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("must be a number")
		}
		return f, nil
	case kindBoolean:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return nil, fmt.Errorf("must be true or false")
		}
		return b, nil
	case kindStringList:
		var list []any
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		return list, nil
	}
	return raw, nil
}

// setPath sets doc[path...] = val, creating missing mappings. It reports false, leaving doc as
// it is, when an intermediate value is not a mapping: the schema reports that value's type.
func setPath(doc map[string]any, path []string, val any) bool {
	cur := doc
	for _, key := range path[:len(path)-1] {
		next, exists := cur[key]
		if !exists || next == nil {
			m := map[string]any{}
			cur[key] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return false
		}
		cur = m
	}
	cur[path[len(path)-1]] = val
	return true
}
