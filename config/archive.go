package config

import (
	"cmp"
	"time"
)

// Defaults of the archive section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultArchiveRetention = 7 * 24 * time.Hour
)

// Archive keeps every accepted job message for replay, in the result store.
type Archive struct {
	// Retention is how long archived job messages are kept, and so how far back `infleet
	// replay` reaches. Default 168h.
	Retention time.Duration `yaml:"retention,omitempty"`
}

// applyDefaults fills the archive section's unset settings.
func (a *Archive) applyDefaults() {
	a.Retention = cmp.Or(a.Retention, DefaultArchiveRetention)
}
