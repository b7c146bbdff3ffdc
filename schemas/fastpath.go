package schemas

import (
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// jobSurelyValid is ValidateJob's fast path: a hand-written check that accepts a job only when it
// is certainly valid under job.schema.json, without allocating. It may reject valid jobs (unusual
// number spellings, long strings counted in bytes rather than characters, rare URL forms): those
// go through the full validator, which also writes the error messages. FuzzValidateJob checks that
// it never accepts a job the schema rejects. Keep it in step with job.schema.json.
func jobSurelyValid(doc any) bool {
	m, ok := doc.(map[string]any)
	if !ok {
		return false
	}
	hasTask, hasInput := false, false
	for k, v := range m {
		switch k {
		case "task":
			if !identOK(v) {
				return false
			}
			hasTask = true
		case "input":
			if !inputOK(v) {
				return false
			}
			hasInput = true
		case "model", "job_id":
			if !identOK(v) {
				return false
			}
		case "params":
			if !paramsOK(v) {
				return false
			}
		case "priority":
			if s, ok := v.(string); !ok || (s != "high" && s != "normal" && s != "low") {
				return false
			}
		case "callback_url":
			if !callbackOK(v) {
				return false
			}
		case "metadata":
			if _, ok := v.(map[string]any); !ok {
				return false
			}
		case "idempotency_key":
			if s, ok := v.(string); !ok || s == "" || len(s) > 256 {
				return false
			}
		case "replay_name":
			if s, ok := v.(string); !ok || len(s) > 256 {
				return false
			}
		case "context":
			if s, ok := v.(string); !ok || len(s) > 200000 {
				return false
			}
		case "stream":
			if _, ok := v.(bool); !ok {
				return false
			}
		default:
			return false
		}
	}
	return hasTask && hasInput
}

// identOK matches the schema's identifier: 1..128 characters, ^[A-Za-z0-9][A-Za-z0-9._:-]*$.
func identOK(v any) bool {
	s, ok := v.(string)
	if !ok || s == "" || len(s) > 128 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func inputOK(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	if t, ok := m["text"]; ok {
		s, ok := t.(string)
		return ok && s != ""
	}
	if u, ok := m["s3_uri"]; ok {
		s, ok := u.(string)
		return ok && s3URIOK(s)
	}
	msgs, ok := m["messages"].([]any)
	if !ok || len(msgs) == 0 {
		return false
	}
	for _, mv := range msgs {
		msg, ok := mv.(map[string]any)
		if !ok || len(msg) != 2 {
			return false
		}
		role, ok := msg["role"].(string)
		if !ok || (role != "user" && role != "assistant" && role != "system") {
			return false
		}
		if _, ok := msg["content"].(string); !ok {
			return false
		}
	}
	return true
}

// s3URIOK matches ^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+ (the key checked only for a first
// character that is not a line break, which "." requires).
func s3URIOK(s string) bool {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return false
	}
	bucket, key, ok := strings.Cut(rest, "/")
	if !ok || len(bucket) < 3 || len(bucket) > 63 || key == "" || key[0] == '\n' {
		return false
	}
	for i := 0; i < len(bucket); i++ {
		c := bucket[i]
		lowerAlnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !lowerAlnum && ((i == 0 || i == len(bucket)-1) || (c != '.' && c != '-')) {
			return false
		}
	}
	return true
}

func paramsOK(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for k, pv := range m {
		switch k {
		case "max_tokens":
			n, ok := number(pv)
			if !ok || n != math.Trunc(n) || n < 1 || n > 200000 {
				return false
			}
		case "temperature":
			n, ok := number(pv)
			if !ok || n < 0 || n > 2 {
				return false
			}
		case "top_p":
			n, ok := number(pv)
			if !ok || n < 0 || n > 1 {
				return false
			}
		case "stop":
			stops, ok := pv.([]any)
			if !ok || len(stops) > 16 {
				return false
			}
			for _, sv := range stops {
				if s, ok := sv.(string); !ok || s == "" {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// number returns v as a float64 when it is a JSON number whose float64 value is exact enough for
// the range checks of the schema: json.Number spellings that are plain decimals (digits, an
// optional fraction, at most 12 characters), or finite float64s.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case json.Number:
		return plainDecimal(string(n))
	}
	return 0, false
}

// plainDecimal reads s when it is digits with an optional fraction, in at most 12 characters:
// a form whose float64 is exact enough for the schema's range checks.
func plainDecimal(s string) (float64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if !digits(whole) || (hasDot && !digits(frac)) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// callbackOK accepts plain absolute http(s) URLs: what the schema's pattern and "uri" format
// both accept, minus IPv6 hosts, which are left to the full validator.
func callbackOK(v any) bool {
	s, ok := v.(string)
	if !ok || len(s) > 2048 || !(strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && !strings.Contains(u.Hostname(), ":")
}
