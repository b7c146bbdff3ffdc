package config

import (
	"encoding/base64"
	"strings"
)

// MinConsoleSessionKeyBytes is the least key material console.session_key must decode to.
const MinConsoleSessionKeyBytes = 32

// Console configures the operator console at /ui/.
type Console struct {
	// SessionKey is base64 (standard or URL alphabet, padded or not) of at least 32 random
	// bytes that seal the console's session cookies. Give every process of a fleet the same
	// key and a session made by one is served by all, with no sticky routing. A secret: set it
	// through the environment (INFLEET_CONSOLE_SESSION_KEY) and never log it. Default none: each
	// process seals with a random key of its own, so an operator's /ui/ must reach one process.
	SessionKey string `yaml:"session_key,omitempty"`
}

// SessionKeyBytes returns the decoded console.session_key, nil when it is unset, or ok false
// when it is not base64 of at least MinConsoleSessionKeyBytes bytes (Validate reports that).
func (c Console) SessionKeyBytes() (key []byte, ok bool) {
	s := strings.TrimSpace(c.SessionKey)
	if s == "" {
		return nil, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, len(b) >= MinConsoleSessionKeyBytes
		}
	}
	return nil, false
}

// checkConsole checks that console.session_key, when set, is base64 of enough key material. The
// message never repeats the key.
func (c *Config) checkConsole(p *problems) {
	if c.Console.SessionKey == "" {
		return
	}
	if b, ok := c.Console.SessionKeyBytes(); !ok {
		if b == nil {
			p.add("console.session_key", "is not base64; give base64 of at least %d random bytes (openssl rand -base64 32)", MinConsoleSessionKeyBytes)
		} else {
			p.add("console.session_key", "decodes to %d bytes, fewer than %d; give base64 of at least %d random bytes (openssl rand -base64 32)",
				len(b), MinConsoleSessionKeyBytes, MinConsoleSessionKeyBytes)
		}
	}
}
