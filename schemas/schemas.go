// Package schemas holds infleet's JSON Schemas (the job body, the batch body and the config file)
// and its OpenAPI description, embedded in the binary, and validates documents against them.
//
// It is a leaf package: it imports nothing of infleet's. Validation reports every problem of a
// document as a flat list of FieldErrors, each naming the field by a dotted path and saying what to
// do, which is what the HTTP API returns in a problem+json "errors" list and what a bad config file
// prints at start-up.
package schemas

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	//go:embed job.schema.json
	jobSchema []byte
	//go:embed batch.schema.json
	batchSchema []byte
	//go:embed config.schema.json
	configSchema []byte
	//go:embed openapi.json
	openAPI []byte
)

// Canonical identifiers ($id) of the schemas; relative references between them resolve against
// these.
const (
	JobSchemaID    = "https://github.com/infleet/infleet/schemas/job.schema.json"
	BatchSchemaID  = "https://github.com/infleet/infleet/schemas/batch.schema.json"
	ConfigSchemaID = "https://github.com/infleet/infleet/schemas/config.schema.json"
)

// FieldError is one problem with a document: Field is a dotted path ("params.max_tokens",
// "input.messages[0].role"; "" for the whole document), Message says what is wrong and how to fix
// it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// String renders the problem as "field: message" (just the message for the whole document).
func (e FieldError) String() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// JobSchema returns the JSON Schema of a job (the POST /v1/jobs body and a job message body).
// The returned slice is a copy; callers may keep or change it.
func JobSchema() []byte { return bytes.Clone(jobSchema) }

// BatchSchema returns the JSON Schema of the POST /v1/jobs:batch body. The slice is a copy.
func BatchSchema() []byte { return bytes.Clone(batchSchema) }

// ConfigSchema returns the JSON Schema of the YAML config file. The slice is a copy.
func ConfigSchema() []byte { return bytes.Clone(configSchema) }

// ValidateJob checks doc, a job body decoded from JSON (numbers as json.Number or float64),
// against the job schema and returns every problem found, or nil when the job is valid. It is safe
// for concurrent use and does not modify doc.
func ValidateJob(doc any) []FieldError {
	if jobSurelyValid(doc) {
		return nil
	}
	return validate(loaded().job, doc)
}

// ValidateBatch checks doc, a batch body decoded from JSON, against the batch schema; fields of
// the jobs are reported as "jobs[3].task". Safe for concurrent use.
func ValidateBatch(doc any) []FieldError { return validate(loaded().batch, doc) }

// ValidateConfig checks doc, a config document decoded from YAML or JSON into maps, slices and
// scalars (int, float64, json.Number, string, bool, nil), against the config schema. Safe for
// concurrent use.
func ValidateConfig(doc any) []FieldError { return validate(loaded().config, doc) }

// compiled is every schema compiled once, with the raw documents kept to look up "x-errors"
// messages and known property names when reporting problems.
type compiled struct {
	job, batch, config *jsonschema.Schema
	raw                map[string]any // schema $id -> decoded schema document
}

var (
	compileOnce sync.Once
	compiledSet *compiled
)

// loaded compiles the embedded schemas on first use. The schemas are part of the binary, so a
// failure is a programming error caught by the package's tests: it panics.
func loaded() *compiled {
	compileOnce.Do(func() {
		c, err := compileAll()
		if err != nil {
			panic(fmt.Sprintf("schemas: embedded schemas do not compile: %v", err))
		}
		compiledSet = c
	})
	return compiledSet
}

func compileAll() (*compiled, error) {
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft2020)
	comp.AssertFormat()
	comp.RegisterFormat(&jsonschema.Format{Name: "go-duration", Validate: validateGoDuration})
	out := &compiled{raw: map[string]any{}}
	for id, src := range map[string][]byte{JobSchemaID: jobSchema, BatchSchemaID: batchSchema, ConfigSchemaID: configSchema} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", id, err)
		}
		if err := comp.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add %s: %w", id, err)
		}
		out.raw[id] = doc
	}
	var err error
	if out.job, err = comp.Compile(JobSchemaID); err != nil {
		return nil, err
	}
	if out.batch, err = comp.Compile(BatchSchemaID); err != nil {
		return nil, err
	}
	if out.config, err = comp.Compile(ConfigSchemaID); err != nil {
		return nil, err
	}
	return out, nil
}

// validateGoDuration implements the "go-duration" format: a non-negative duration that
// time.ParseDuration accepts (so it also catches values too large for a time.Duration).
func validateGoDuration(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("negative duration")
	}
	return nil
}

func validate(sch *jsonschema.Schema, doc any) []FieldError {
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return []FieldError{{Message: err.Error()}}
	}
	return flatten(verr, doc, loaded().raw)
}

// openAPIOnce builds the served OpenAPI document: openapi.json with the job and batch schemas
// inlined under components.schemas, so the document stands alone.
var openAPIOnce = sync.OnceValue(func() []byte {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		panic(fmt.Sprintf("schemas: embedded openapi.json is not JSON: %v", err))
	}
	comps, _ := doc["components"].(map[string]any)
	schemasObj, _ := comps["schemas"].(map[string]any)
	if schemasObj == nil {
		panic("schemas: embedded openapi.json has no components.schemas")
	}
	for name, src := range map[string][]byte{"Job": jobSchema, "Batch": batchSchema} {
		var s map[string]any
		if err := json.Unmarshal(src, &s); err != nil {
			panic(fmt.Sprintf("schemas: embedded %s schema is not JSON: %v", name, err))
		}
		delete(s, "$schema") // OpenAPI 3.1 uses its own dialect; the body is 2020-12 compatible
		// An $id would make every $ref inside resolve against the schema's own URL, which
		// OpenAPI tools (Redocly, Prism, generators) do not follow; the component's place in the
		// document is its identity here.
		delete(s, "$id")
		stripExtensions(s)
		hoistDefs(s, name, schemasObj)
		schemasObj[name] = s
	}
	// The batch schema refers to the job schema by relative URL; inside OpenAPI point it at the
	// component instead.
	if b, ok := schemasObj["Batch"].(map[string]any); ok {
		if props, ok := b["properties"].(map[string]any); ok {
			if jobs, ok := props["jobs"].(map[string]any); ok {
				jobs["items"] = map[string]any{"$ref": "#/components/schemas/Job"}
			}
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("schemas: encode openapi: %v", err))
	}
	return append(out, '\n')
})

// hoistDefs moves the $defs of schema, the component named owner, to components.schemas as
// owner+Name ("input" of Job becomes JobInput) and points every "#/$defs/name" reference inside
// schema at the new component, so that every $ref of the served document is a plain pointer into
// it. It panics when a hoisted name is already taken: the embedded documents are fixed, so that is
// a build mistake a test catches.
func hoistDefs(schema map[string]any, owner string, components map[string]any) {
	defs, _ := schema["$defs"].(map[string]any)
	delete(schema, "$defs")
	renamed := make(map[string]string, len(defs))
	for name := range defs {
		comp := owner + strings.ToUpper(name[:1]) + name[1:]
		if _, taken := components[comp]; taken {
			panic(fmt.Sprintf("schemas: hoisting %s.$defs.%s: components.schemas.%s already exists", owner, name, comp))
		}
		renamed["#/$defs/"+name] = "#/components/schemas/" + comp
	}
	var rewrite func(v any)
	rewrite = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if to, ok := renamed[ref]; ok {
					v["$ref"] = to
				}
			}
			for _, c := range v {
				rewrite(c)
			}
		case []any:
			for _, c := range v {
				rewrite(c)
			}
		}
	}
	rewrite(schema)
	for name, def := range defs {
		rewrite(def)
		components[renamed["#/$defs/"+name][len("#/components/schemas/"):]] = def
	}
}

// stripExtensions removes the "x-errors" keywords, which only this package reads, from a schema.
func stripExtensions(v any) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "x-errors")
		for _, c := range v {
			stripExtensions(c)
		}
	case []any:
		for _, c := range v {
			stripExtensions(c)
		}
	}
}

// OpenAPI returns the OpenAPI 3.1 description of infleet's HTTP API, as served at GET
// /openapi.json, with the job schemas inlined. The slice is a copy.
func OpenAPI() []byte { return bytes.Clone(openAPIOnce()) }
