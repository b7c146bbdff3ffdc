// Package storecodec is how the SQL and DynamoDB job stores encode a JobRecord the same way:
// the JSON columns of its usage, guardrail report, error and model call, and the opaque list
// cursor of a page. It is a room of the pipeline that only stores import; its functions are
// pure and safe for concurrent use.
package storecodec

import (
	"encoding/json"
	"fmt"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
)

// JSONColumns are the parts of a JobRecord that stores keep as JSON text: each is a string, or
// nil (NULL) when the record has nothing there. Every store encodes and decodes them the same
// way through EncodeJSONColumns and DecodeJSONColumns.
type JSONColumns struct {
	Usage, Guardrail, Error, ModelCall any
}

// EncodeJSONColumns returns rec's usage, guardrail report, error and model call as JSON
// column values.
func EncodeJSONColumns(rec messages.JobRecord) (JSONColumns, error) {
	var c JSONColumns
	enc := func(name string, v any) (any, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s of job %s: %w", name, rec.JobID, err)
		}
		return string(b), nil
	}
	var err error
	if rec.Usage != nil {
		if c.Usage, err = enc("usage", rec.Usage); err != nil {
			return c, err
		}
	}
	if rec.Guardrail != nil {
		if c.Guardrail, err = enc("guardrail", rec.Guardrail); err != nil {
			return c, err
		}
	}
	if rec.Error != nil {
		if c.Error, err = enc("error", rec.Error); err != nil {
			return c, err
		}
	}
	if call := pipeline.ModelCallOf(rec); call != nil {
		if c.ModelCall, err = enc("model call", call); err != nil {
			return c, err
		}
	}
	return c, nil
}

// DecodeJSONColumns fills rec from the JSON column values a store read (nil: NULL). A column
// that does not decode is an error naming the job and the column.
func DecodeJSONColumns(rec *messages.JobRecord, usage, guardrail, jobErr, modelCall []byte) error {
	dec := func(name string, b []byte, v any) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("job %s has a corrupt %s column (fix or delete the row): %w", rec.JobID, name, err)
		}
		return nil
	}
	if usage != nil {
		rec.Usage = new(messages.Usage)
		if err := dec("usage", usage, rec.Usage); err != nil {
			return err
		}
	}
	if guardrail != nil {
		rec.Guardrail = new(messages.GuardrailReport)
		if err := dec("guardrail", guardrail, rec.Guardrail); err != nil {
			return err
		}
	}
	if jobErr != nil {
		rec.Error = new(messages.JobError)
		if err := dec("error", jobErr, rec.Error); err != nil {
			return err
		}
	}
	if modelCall != nil {
		var call pipeline.ModelCall
		if err := dec("model_call", modelCall, &call); err != nil {
			return err
		}
		rec.Degraded, rec.Fallbacks, rec.Prompt, rec.BatchJob = call.Degraded, call.Fallbacks, call.Prompt, call.BatchJob
	}
	return nil
}
