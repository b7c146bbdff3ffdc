package messages

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendResultJSON appends r encoded exactly as json.Marshal(r) encodes it, byte for byte,
// and returns the extended buffer. It is the encoder of every result a worker stores: the
// common fields are written directly, without reflection, and the guardrail report, when
// there is one, by json.Marshal. It fails where json.Marshal fails (a usage cost that is NaN
// or infinite), leaving b as it was.
func AppendResultJSON(b []byte, r Result) ([]byte, error) {
	start := len(b)
	b = append(b, `{"job_id":`...)
	b = AppendJSONString(b, r.JobID)
	b = append(b, `,"output":{"text":`...)
	b = AppendJSONString(b, r.Output.Text)
	b = append(b, `},"model":`...)
	b = AppendJSONString(b, r.Model)
	b = append(b, `,"usage":{"input_tokens":`...)
	b = strconv.AppendInt(b, int64(r.Usage.InputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(r.Usage.OutputTokens), 10)
	if r.Usage.CostUSD != 0 {
		var err error
		b = append(b, `,"cost_usd":`...)
		if b, err = appendJSONFloat(b, r.Usage.CostUSD); err != nil {
			return b[:start], err
		}
	}
	b = append(b, '}')
	if r.Guardrail != nil {
		g, err := json.Marshal(r.Guardrail)
		if err != nil {
			return b[:start], err
		}
		b = append(b, `,"guardrail":`...)
		b = append(b, g...)
	}
	if r.Degraded {
		b = append(b, `,"degraded":true`...)
	}
	if len(r.Fallbacks) > 0 {
		b = append(b, `,"fallbacks":[`...)
		for i, f := range r.Fallbacks {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, f)
		}
		b = append(b, ']')
	}
	if r.Prompt != "" {
		b = append(b, `,"prompt":`...)
		b = AppendJSONString(b, r.Prompt)
	}
	return append(b, '}'), nil
}

// errUnsupportedFloat is what AppendResultJSON returns for a NaN or infinite number, which
// JSON cannot hold.
var errUnsupportedFloat = errors.New("json: unsupported value: a NaN or infinite number")

// appendJSONFloat appends f as encoding/json writes a float64: the shortest decimal that
// reads back as f, in exponent form below 1e-6 and from 1e21 on, with a one-digit negative
// exponent written without its leading zero (1e-7, not 1e-07).
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errUnsupportedFloat
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// plainASCII marks the ASCII bytes AppendJSONString copies as they are.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// hexDigits are the digits of the \u00XX escapes.
const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string exactly as json.Marshal writes a Go string:
// quoted; a quote, a backslash and the control characters escaped (\n, \r, \t, \b, \f by
// name, the others as \u00XX); <, > and & as \u003c, \u003e and \u0026; U+2028 and U+2029
// as \u2028 and \u2029; each byte of invalid UTF-8 as \ufffd. Everything else is copied.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	from := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[from:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			from = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[from:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[from:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		from = i
	}
	b = append(b, s[from:]...)
	return append(b, '"')
}
