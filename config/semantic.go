package config

import (
	"fmt"

	"github.com/infleet/infleet/schemas"
)

// problems collects semantic problems in the order they are found.
type problems []schemas.FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, schemas.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// semantic checks the rules the schema cannot express. It expects defaults applied.
func (c *Config) semantic() *ValidationError {
	// Each section's checks are in its file; the problems come in this order.
	var p problems
	c.checkModels(&p)
	c.checkRoutes(&p)
	c.checkBatching(&p)
	c.checkBatchInference(&p)
	c.checkTransport(&p)
	c.checkKafkaSecurity(&p)
	c.checkStore(&p)
	c.checkResults(&p)
	c.checkArchive(&p)
	c.checkWorkers(&p)
	c.checkGuardrails(&p)
	c.checkTriggers(&p)
	c.checkAuth(&p)
	c.checkHTTP(&p)
	c.checkConsole(&p)
	c.checkStreaming(&p)
	c.checkMetrics(&p)
	c.checkTelemetry(&p)
	if len(p) == 0 {
		return nil
	}
	return &ValidationError{Problems: p}
}
