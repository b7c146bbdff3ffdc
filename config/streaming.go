package config

import (
	"net/url"
	"strings"
)

// MinStreamingRelayKeyBytes is the shortest streaming.relay_key accepted.
const MinStreamingRelayKeyBytes = 16

// Streaming configures how the answers of streaming jobs ("stream": true) reach the event
// streams of other processes.
type Streaming struct {
	// RelayKey is the shared secret a process's API presents to the worker that streams a
	// job's answer, on that worker's internal relay route (GET /internal/v1/streams/{id}).
	// Give every process of a fleet the same key. A secret: set it through the environment
	// (INFLEET_STREAMING_RELAY_KEY) and never log it. Default none: no relay, so a job's
	// deltas reach only the event streams of the process that runs it (serve on one host);
	// others get the whole answer when the job ends.
	RelayKey string `yaml:"relay_key,omitempty"`
	// AdvertiseURL is the base URL other processes reach this process's HTTP listener at, for
	// the relay (e.g. http://10.0.3.7:8080). Default: http(s)://HOSTNAME:PORT of addr, or
	// the host of addr when it names one.
	AdvertiseURL string `yaml:"advertise_url,omitempty"`
}

// checkStreaming checks the relay settings. The message never repeats the key.
func (c *Config) checkStreaming(p *problems) {
	if k := c.Streaming.RelayKey; k != "" && len(strings.TrimSpace(k)) < MinStreamingRelayKeyBytes {
		p.add("streaming.relay_key", "is shorter than %d characters; give a random secret (openssl rand -base64 32), the same on every process", MinStreamingRelayKeyBytes)
	}
	if a := c.Streaming.AdvertiseURL; a != "" {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("streaming.advertise_url", "%q is not an http(s) URL; give the base URL other processes reach this one at, e.g. http://10.0.3.7:8080", a)
		}
	}
}
