package config

import "cmp"

// Defaults of the log section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "auto"
)

// Log configures logging.
type Log struct {
	// Level is trace, debug, info, warn or error. Default info.
	Level string `yaml:"level,omitempty"`
	// Format is json, pretty (for people) or auto (pretty on a terminal, else json). Default auto.
	Format string `yaml:"format,omitempty"`
}

// applyDefaults fills the log section's unset settings.
func (l *Log) applyDefaults() {
	l.Level = cmp.Or(l.Level, DefaultLogLevel)
	l.Format = cmp.Or(l.Format, DefaultLogFormat)
}
