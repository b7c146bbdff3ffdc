// Package emftest checks CloudWatch Embedded Metric Format documents against the
// specification's requirements, for tests of what infleet writes. Only tests import it.
package emftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaText is the structure the CloudWatch Embedded Metric Format specification requires of a
// document: the _aws metadata object with a millisecond Timestamp and CloudWatchMetrics, an
// array of MetricDirectives (Namespace of 1 to 255 characters, Dimensions — arrays of at most
// 30 dimension names — and Metrics: at most 100 MetricDefinitions, each a Name of 1 to 255
// characters and an optional CloudWatch Unit), with no members the specification does not
// define inside them.
const schemaText = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["_aws"],
  "properties": {
    "_aws": {
      "type": "object",
      "required": ["Timestamp", "CloudWatchMetrics"],
      "properties": {
        "Timestamp": {"type": "integer", "minimum": 0},
        "CloudWatchMetrics": {
          "type": "array",
          "minItems": 1,
          "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["Namespace", "Dimensions", "Metrics"],
            "properties": {
              "Namespace": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^:]*[^:\\s][^:]*$"},
              "Dimensions": {
                "type": "array",
                "items": {"type": "array", "maxItems": 30, "items": {"type": "string", "minLength": 1, "maxLength": 250}}
              },
              "Metrics": {
                "type": "array",
                "maxItems": 100,
                "items": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": ["Name"],
                  "properties": {
                    "Name": {"type": "string", "minLength": 1, "maxLength": 255},
                    "Unit": {"enum": ["Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
                      "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent",
                      "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
                      "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
                      "Terabits/Second", "Count/Second", "None"]},
                    "StorageResolution": {"enum": [1, 60]}
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}`

// Check checks one document (one line of output) against the specification: the schema, then the references —
// every dimension a string target member of at most 1024 characters, every metric a number or
// an array of at most 100 numbers.
func Check(line []byte) (map[string]any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if err := compiled().Validate(doc); err != nil {
		return nil, fmt.Errorf("not an EMF document: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	var errs []error
	for _, d := range m["_aws"].(map[string]any)["CloudWatchMetrics"].([]any) {
		dir := d.(map[string]any)
		for _, set := range dir["Dimensions"].([]any) {
			for _, name := range set.([]any) {
				if v, ok := m[name.(string)].(string); !ok || len(v) > 1024 {
					errs = append(errs, fmt.Errorf("dimension %s has no string target member", name))
				}
			}
		}
		for _, md := range dir["Metrics"].([]any) {
			name := md.(map[string]any)["Name"].(string)
			switch v := m[name].(type) {
			case float64:
			case []any:
				if len(v) > 100 {
					errs = append(errs, fmt.Errorf("metric %s has %d values, more than 100", name, len(v)))
				}
				for _, x := range v {
					if _, ok := x.(float64); !ok {
						errs = append(errs, fmt.Errorf("metric %s has a value that is not a number", name))
					}
				}
			default:
				errs = append(errs, fmt.Errorf("metric %s has no numeric target member", name))
			}
		}
	}
	return m, errors.Join(errs...)
}

// compiled is the schema, compiled once.
var compiled = sync.OnceValue(func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schemaText))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("emf.json", doc); err != nil {
		panic(err)
	}
	return c.MustCompile("emf.json")
})
