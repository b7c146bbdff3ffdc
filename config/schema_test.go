package config

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/infleet/infleet/schemas"
)

// schemaPaths lists every key the config schema allows, as dotted paths with "[]" for array
// items and "<task>" for the keys of routes.
func schemaPaths(t *testing.T) []string {
	t.Helper()
	var schema map[string]any
	if err := json.Unmarshal(schemas.ConfigSchema(), &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	var out []string
	var walk func(node map[string]any, path string)
	walk = func(node map[string]any, path string) {
		node = deref(node, defs)
		if props, ok := node["properties"].(map[string]any); ok {
			for k, sub := range props {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(sub.(map[string]any), p)
			}
			return
		}
		if items, ok := node["items"].(map[string]any); ok {
			if _, isObj := deref(items, defs)["properties"]; isObj {
				walk(items, path+"[]")
				return
			}
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			walk(ap, path+".<task>")
			return
		}
		out = append(out, path)
	}
	walk(schema, "")
	slices.Sort(out)
	return out
}

// structPaths lists the same for the Config struct, from its yaml tags.
func structPaths(typ reflect.Type, path string, out *[]string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			structPaths(ft, p, out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			structPaths(ft.Elem(), p+"[]", out)
		case ft.Kind() == reflect.Map:
			*out = append(*out, p+".<task>")
		default:
			*out = append(*out, p)
		}
	}
}

func TestSchemaAndStructAgree(t *testing.T) {
	t.Parallel()
	var fromStruct []string
	structPaths(reflect.TypeFor[Config](), "", &fromStruct)
	slices.Sort(fromStruct)
	fromSchema := schemaPaths(t)
	if !slices.Equal(fromStruct, fromSchema) {
		t.Errorf("Config struct and config schema disagree:\n struct %v\n schema %v", fromStruct, fromSchema)
	}
	if len(fromSchema) < 60 {
		t.Errorf("only %d schema paths; the walk is broken", len(fromSchema))
	}
}

// readmeConfigSection returns ../README.md's first ```yaml block after <!-- config-example -->
// and the keys of its settings table (brace alternatives expanded).
func readmeConfigSection(t *testing.T) (example string, tableKeys []string) {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	_, after, ok := strings.Cut(string(readme), "\n<!-- config-example -->\n")
	if !ok {
		t.Fatal("README.md has no line <!-- config-example -->")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("README.md has no ```yaml block after <!-- config-example -->")
	}
	example, rest, ok := strings.Cut(block, "\n```")
	if !ok {
		t.Fatal("README.md's config example is not closed")
	}
	for line := range strings.Lines(rest) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			tableKeys = append(tableKeys, expandBraces(m[1])...)
		}
	}
	return example, tableKeys
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// expandBraces expands one {a,b,c} group: "x.{a,b}.y" -> "x.a.y", "x.b.y".
func expandBraces(s string) []string {
	before, rest, ok := strings.Cut(s, "{")
	if !ok {
		return []string{s}
	}
	alts, after, ok := strings.Cut(rest, "}")
	if !ok {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(alts, ",") {
		out = append(out, expandBraces(before+alt+after)...)
	}
	return out
}

func TestREADMEExampleValidates(t *testing.T) {
	t.Parallel()
	example, _ := readmeConfigSection(t)
	c, err := Load(writeConfig(t, example), nil)
	if err != nil {
		t.Fatalf("README's config example does not load: %v", err)
	}
	if len(c.Models) != 3 || c.Routes["summarize"] != "main" {
		t.Errorf("README example loaded oddly: %+v", c)
	}
}

func TestREADMETableCoversEveryKey(t *testing.T) {
	t.Parallel()
	_, keys := readmeConfigSection(t)
	for _, p := range schemaPaths(t) {
		if !slices.Contains(keys, p) {
			t.Errorf("README settings table lacks %s", p)
		}
	}
	schemaSet := schemaPaths(t)
	for _, k := range keys {
		if !slices.Contains(schemaSet, k) {
			t.Errorf("README settings table has %s, which the schema does not know", k)
		}
	}
}
