package deploytest

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// k8sDir is where the Kubernetes manifests live.
var k8sDir = filepath.Join(root, "deploy", "k8s")

// decodeYAML returns every non-empty document of a YAML stream.
func decodeYAML(t *testing.T, name string, data []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var d any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: not valid YAML: %v", name, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// readYAML returns every non-empty document of the YAML file at path.
func readYAML(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return decodeYAML(t, rel(path), data)
}

// rel names path from the repository root, for messages.
func rel(path string) string {
	if r, err := filepath.Rel(root, path); err == nil {
		return r
	}
	return path
}

// get walks v through map keys and returns what it finds, or nil.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// str is get for a string; "" when absent or not a string.
func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

// list is get for a sequence; nil when absent or not a sequence.
func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

// num is get for an integer, and whether there was one.
func num(v any, keys ...string) (int, bool) {
	n, ok := get(v, keys...).(int)
	return n, ok
}

// stringMap is get for a mapping of strings (labels, selectors, annotations).
func stringMap(v any, keys ...string) map[string]string {
	m, _ := get(v, keys...).(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, _ := v.(string)
		out[k] = s
	}
	return out
}

// subset reports whether every pair of sel is in labels (a label selector matching).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// kustomization is the part of a kustomization.yaml these tests follow.
type kustomization struct {
	Resources []string `yaml:"resources"`
	Patches   []struct {
		Path   string         `yaml:"path"`
		Patch  string         `yaml:"patch"`
		Target map[string]any `yaml:"target"`
	} `yaml:"patches"`
}

// kustomizeFiles returns, for the kustomization in dir and those it includes, every manifest
// file it names (resources) and every patch file (patches, with whether the patch is a JSON
// patch, which needs a target). It fails the test on a name that does not exist.
func kustomizeFiles(t *testing.T, dir string) (manifests []string, patches map[string]bool) {
	t.Helper()
	patches = map[string]bool{}
	var walk func(dir string)
	walk = func(dir string) {
		path := filepath.Join(dir, "kustomization.yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: no kustomization.yaml: %v", rel(dir), err)
		}
		var k kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			t.Fatalf("%s: %v", rel(path), err)
		}
		for _, r := range k.Resources {
			p := filepath.Join(dir, r)
			fi, err := os.Stat(p)
			switch {
			case err != nil:
				t.Errorf("%s: resource %s does not exist", rel(path), r)
			case fi.IsDir():
				walk(p)
			default:
				manifests = append(manifests, p)
			}
		}
		for _, pt := range k.Patches {
			if pt.Path == "" {
				continue // an inline patch
			}
			p := filepath.Join(dir, pt.Path)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: patch %s does not exist", rel(path), pt.Path)
				continue
			}
			docs := decodeYAML(t, rel(p), data)
			_, jsonPatch := func() (any, bool) {
				if len(docs) == 1 {
					l, ok := docs[0].([]any)
					return l, ok
				}
				return nil, false
			}()
			if jsonPatch && pt.Target == nil {
				t.Errorf("%s: JSON patch %s needs a target", rel(path), pt.Path)
			}
			patches[p] = jsonPatch
		}
	}
	walk(dir)
	return manifests, patches
}

// envEntry is one container environment variable found in a manifest or a patch.
type envEntry struct {
	name      string
	value     string // a literal value
	secret    string // the Secret of a secretKeyRef, "" for a literal
	secretKey string
	optional  bool
}

// envEntries finds every environment variable definition (a mapping with a name and a value or
// valueFrom) anywhere in v: in Deployments and in JSON patches alike.
func envEntries(v any) []envEntry {
	var out []envEntry
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			name, _ := v["name"].(string)
			_, hasValue := v["value"]
			_, hasFrom := v["valueFrom"]
			if name != "" && (hasValue || hasFrom) && strings.ToUpper(name) == name {
				e := envEntry{name: name, value: str(v, "value")}
				if ref := get(v, "valueFrom", "secretKeyRef"); ref != nil {
					e.secret, e.secretKey = str(ref, "name"), str(ref, "key")
					e.optional, _ = get(ref, "optional").(bool)
				}
				out = append(out, e)
				return
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// secretPlaceholder stands for a value the pod reads from a Secret: base64 of more than 32
// bytes, as console.session_key needs, and a plain string to every other secret.
const secretPlaceholder = "dmFsdWUgZnJvbSBhIGt1YmVybmV0ZXMgc2VjcmV0LCAzMisgYnl0ZXM="

// environ turns environment definitions into os.Environ() form; values from Secrets become a
// placeholder.
func environ(entries []envEntry) []string {
	var out []string
	for _, e := range entries {
		v := e.value
		if e.secret != "" {
			v = secretPlaceholder
		}
		out = append(out, e.name+"="+v)
	}
	return out
}

// commands returns the subcommands of cmd/infleet: the keys of the map literal its commands()
// function returns.
func commands(t *testing.T) []string {
	t.Helper()
	files := parseMain(t)
	var names []string
	for _, f := range files {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "commands" || fn.Recv != nil || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				kv, ok := n.(*ast.KeyValueExpr)
				if !ok {
					return true
				}
				if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						names = append(names, s)
					}
				}
				return false
			})
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatal("cmd/infleet has no commands() table of subcommands: has it been renamed? update this test")
	}
	return names
}

// shutdownBound returns the value of cmd/infleet's shutdownBound constant: the bound of each
// last step of shutdown (HTTP, hand-back, router close, closing clients).
func shutdownBound(t *testing.T) time.Duration {
	t.Helper()
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute}
	var eval func(e ast.Expr) (time.Duration, bool)
	eval = func(e ast.Expr) (time.Duration, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			n, err := strconv.ParseInt(e.Value, 0, 64)
			return time.Duration(n), err == nil
		case *ast.SelectorExpr:
			if x, ok := e.X.(*ast.Ident); ok && x.Name == "time" {
				d, ok := units[e.Sel.Name]
				return d, ok
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			a, okA := eval(e.X)
			b, okB := eval(e.Y)
			if okA && okB && e.Op == token.MUL {
				return a * b, true
			}
		}
		return 0, false
	}
	for _, f := range parseMain(t) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name == "shutdownBound" && i < len(vs.Values) {
						if d, ok := eval(vs.Values[i]); ok {
							return d
						}
						t.Fatal("cmd/infleet's shutdownBound is no longer N * time.Unit; teach this test to read it")
					}
				}
			}
		}
	}
	t.Fatal("cmd/infleet declares no shutdownBound constant; update this test with the shutdown's bounds")
	return 0
}

// parseMain parses cmd/infleet's non-test sources.
func parseMain(t *testing.T) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "cmd", "infleet", "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sources in cmd/infleet: %v", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", rel(p), err)
		}
		files = append(files, f)
	}
	return files
}
