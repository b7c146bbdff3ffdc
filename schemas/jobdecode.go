package schemas

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/infleet/infleet/messages"
)

// DecodeValidJob decodes body, one JSON job document, without building a generic document
// first: POST /v1/jobs and a worker's decode call it before anything else. ok is true only when
// the body is a single JSON value that job.schema.json accepts; job is then exactly what
// messages.JobFromDoc gives for the body decoded with json.Decoder.UseNumber (metadata
// included, byte for byte). ok is false for every invalid body and for valid ones written in a
// form left to the full decoder (an escaped object key, a repeated key, a number in exponent
// form, a non-ASCII callback URL, deep nesting, an empty replay_name); the caller then decodes the generic way, which
// also names every problem. FuzzDecodeValidJob holds it to that contract. Safe for concurrent use.
func DecodeValidJob(body []byte) (job messages.Job, ok bool) {
	d := jobDecoder{b: body}
	if !d.job(&job) {
		return messages.Job{}, false
	}
	d.ws()
	if d.i != len(d.b) {
		return messages.Job{}, false
	}
	return job, true
}

// DecodeValidBatch is DecodeValidJob for the body of POST /v1/jobs:batch: ok is true only when
// the body is a single JSON value that batch.schema.json accepts ({"jobs": [...]} with 1 to
// MaxBatchJobs jobs) and DecodeValidJob would take every job in it; jobs are then, in order,
// what messages.JobFromDoc gives for each item of the body decoded with UseNumber.
// FuzzDecodeValidBatch holds it to that. Safe for concurrent use.
func DecodeValidBatch(body []byte) (jobs []messages.Job, ok bool) {
	d := jobDecoder{b: body}
	seen := false
	ok = d.members(func(k []byte) bool {
		if string(k) != "jobs" || seen {
			return false
		}
		seen = true
		return d.elements(func() bool {
			var job messages.Job
			if len(jobs) == MaxBatchJobs || !d.job(&job) {
				return false
			}
			jobs = append(jobs, job)
			return true
		})
	})
	d.ws()
	if !ok || len(jobs) == 0 || d.i != len(d.b) {
		return nil, false
	}
	return jobs, true
}

// MaxBatchJobs is the most jobs a batch holds (maxItems in batch.schema.json).
const MaxBatchJobs = 100

// jobDecoder reads a job document from b; i is the next byte to read.
type jobDecoder struct {
	b []byte
	i int
}

// maxMetadataDepth bounds the nesting of metadata the decoder walks; deeper documents are
// left to the full decoder.
const maxMetadataDepth = 32

// Bits of the job fields seen, to leave repeated keys to the full decoder.
const (
	seenTask = 1 << iota
	seenInput
	seenModel
	seenJobID
	seenParams
	seenPriority
	seenCallback
	seenMetadata
	seenKey
	seenReplay
	seenContext
	seenStream
)

func (d *jobDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c when it is the next byte.
func (d *jobDecoder) next(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawString reads a string token and returns its bytes between the quotes and whether it
// holds an escape. Control characters, which JSON forbids in strings, fail it.
func (d *jobDecoder) rawString() (raw []byte, escaped, ok bool) {
	if !d.next('"') {
		return nil, false, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw = d.b[start:d.i]
			d.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			d.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			d.i++
		}
	}
	return nil, false, false
}

// key reads an object key that is plain (no escape: an escaped key may spell a known one) and
// the colon after it.
func (d *jobDecoder) key() ([]byte, bool) {
	raw, escaped, ok := d.rawString()
	if !ok || escaped || !d.next(':') {
		return nil, false
	}
	return raw, true
}

// str reads a string value as encoding/json decodes it: escapes resolved and invalid UTF-8
// replaced, by encoding/json itself when the string needs either.
func (d *jobDecoder) str() (string, bool) {
	start := d.i
	raw, escaped, ok := d.rawString()
	if !ok {
		return "", false
	}
	if !escaped && utf8.Valid(raw) {
		return string(raw), true
	}
	var s string
	quoted := d.b[start:d.i]
	quoted = quoted[bytes.IndexByte(quoted, '"'):]
	if json.Unmarshal(quoted, &s) != nil {
		return "", false
	}
	return s, true
}

// members reads an object's members, calling member for each key with the decoder at its
// value; member reads the value and reports whether it was valid.
func (d *jobDecoder) members(member func(key []byte) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	for {
		k, ok := d.key()
		if !ok || !member(k) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// elements reads an array's elements, calling elem with the decoder at each one.
func (d *jobDecoder) elements(elem func() bool) bool {
	if !d.next('[') {
		return false
	}
	if d.next(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.next(']') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

func (d *jobDecoder) job(job *messages.Job) bool {
	var seen uint
	once := func(bit uint) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	ok := d.members(func(k []byte) bool {
		var ok bool
		switch string(k) {
		case "task":
			job.Task, ok = d.ident()
			return ok && once(seenTask)
		case "input":
			return once(seenInput) && d.input(&job.Input)
		case "model":
			job.Model, ok = d.ident()
			return ok && once(seenModel)
		case "job_id":
			job.JobID, ok = d.ident()
			return ok && once(seenJobID)
		case "params":
			return once(seenParams) && d.params(job)
		case "priority":
			var p string
			p, ok = d.str()
			job.Priority = messages.Priority(p)
			return ok && (p == "high" || p == "normal" || p == "low") && once(seenPriority)
		case "callback_url":
			job.CallbackURL, ok = d.str()
			return ok && callbackOK(job.CallbackURL) && once(seenCallback)
		case "metadata":
			return once(seenMetadata) && d.metadata(job)
		case "idempotency_key":
			job.IdempotencyKey, ok = d.str()
			return ok && job.IdempotencyKey != "" && utf8.RuneCountInString(job.IdempotencyKey) <= 256 && once(seenKey)
		case "replay_name":
			// An empty one is left to the generic path: a caller that refuses the field
			// (POST /v1/jobs) looks for its presence, which "" would hide.
			job.ReplayName, ok = d.str()
			return ok && job.ReplayName != "" && utf8.RuneCountInString(job.ReplayName) <= 256 && once(seenReplay)
		case "context":
			job.Context, ok = d.str()
			return ok && utf8.RuneCountInString(job.Context) <= 200000 && once(seenContext)
		case "stream":
			job.Stream, ok = d.boolean()
			return ok && once(seenStream)
		}
		return false
	})
	return ok && seen&seenTask != 0 && seen&seenInput != 0
}

// ident reads a string the schema's identifier pattern and length accept.
func (d *jobDecoder) ident() (string, bool) {
	s, ok := d.str()
	return s, ok && identOK(s)
}

func (d *jobDecoder) boolean() (bool, bool) {
	d.ws()
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
		return true, true
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
		return false, true
	}
	return false, false
}

// input reads the job's input: exactly one of text, s3_uri or messages.
func (d *jobDecoder) input(in *messages.Input) bool {
	n := 0
	ok := d.members(func(k []byte) bool {
		n++
		var ok bool
		switch string(k) {
		case "text":
			in.Text, ok = d.str()
			return ok && in.Text != ""
		case "s3_uri":
			in.S3URI, ok = d.str()
			return ok && s3URIOK(in.S3URI)
		case "messages":
			return d.chat(in)
		}
		return false
	})
	return ok && n == 1
}

// chat reads a non-empty array of {role, content} messages.
func (d *jobDecoder) chat(in *messages.Input) bool {
	msgs := make([]messages.ChatMessage, 0, 4)
	ok := d.elements(func() bool {
		var m messages.ChatMessage
		var hasRole, hasContent bool
		ok := d.members(func(k []byte) bool {
			var ok bool
			switch string(k) {
			case "role":
				if hasRole {
					return false
				}
				hasRole = true
				m.Role, ok = d.str()
				return ok && (m.Role == "user" || m.Role == "assistant" || m.Role == "system")
			case "content":
				if hasContent {
					return false
				}
				hasContent = true
				m.Content, ok = d.str()
				return ok
			}
			return false
		})
		msgs = append(msgs, m)
		return ok && hasRole && hasContent
	})
	if !ok || len(msgs) == 0 {
		return false
	}
	// messages.JobFromDoc makes the slice at its length.
	in.Messages = msgs[:len(msgs):len(msgs)]
	return true
}

// params reads the inference parameters as messages.JobFromDoc builds them.
func (d *jobDecoder) params(job *messages.Job) bool {
	p := &messages.Params{}
	var seen uint
	ok := d.members(func(k []byte) bool {
		var bit uint
		var ok bool
		switch string(k) {
		case "max_tokens":
			bit = 1
			p.MaxTokens, ok = d.wholeNumber()
			ok = ok && p.MaxTokens >= 1 && p.MaxTokens <= 200000
		case "temperature":
			bit = 2
			p.Temperature, ok = d.fraction(2)
		case "top_p":
			bit = 4
			p.TopP, ok = d.fraction(1)
		case "stop":
			bit = 8
			stops := make([]string, 0, 4)
			ok = d.elements(func() bool {
				s, ok := d.str()
				stops = append(stops, s)
				return ok && s != ""
			})
			p.Stop = stops[:len(stops):len(stops)]
			ok = ok && len(stops) <= 16
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	job.Params = p
	return ok
}

// fraction reads a decimal (see decimal) from 0 to upTo, as Params holds it.
func (d *jobDecoder) fraction(upTo float64) (*float64, bool) {
	f, ok := d.decimal()
	return &f, ok && f >= 0 && f <= upTo
}

// number reads a JSON number token and returns its text.
func (d *jobDecoder) number() ([]byte, bool) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.skipDigits()
	default:
		return nil, false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if !d.skipDigits() {
			return nil, false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if !d.skipDigits() {
			return nil, false
		}
	}
	return d.b[start:d.i], true
}

// skipDigits consumes a run of digits and reports whether there was one.
func (d *jobDecoder) skipDigits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// wholeNumber reads a number written as plain digits (other spellings are left to the full
// decoder), at most nine of them.
func (d *jobDecoder) wholeNumber() (int, bool) {
	n, ok := d.number()
	if !ok || len(n) > 9 || !digits(string(n)) {
		return 0, false
	}
	i, err := strconv.Atoi(string(n))
	return i, err == nil
}

// decimal reads a number written as plainDecimal accepts it.
func (d *jobDecoder) decimal() (float64, bool) {
	n, ok := d.number()
	if !ok {
		return 0, false
	}
	return plainDecimal(string(n))
}

// metadata reads the metadata object and keeps it as json.Marshal writes the decoded object:
// compact, keys sorted, strings escaped for HTML. Metadata already in that form is copied as
// it is written; any other is decoded and marshalled, as messages.JobFromDoc does.
func (d *jobDecoder) metadata(job *messages.Job) bool {
	d.ws()
	start := d.i
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	out := make([]byte, 0, 64)
	out, canonical, ok := d.value(out, 0)
	if !ok {
		return false
	}
	if canonical {
		job.Metadata = out
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(d.b[start:d.i]))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return false
	}
	m, err := json.Marshal(v)
	if err != nil {
		return false
	}
	job.Metadata = m
	return true
}

// value reads any JSON value, appending to out its compact form while the value is still in
// json.Marshal's form for its decoded self (canonical); once it is not, out is no longer
// appended and only the syntax is checked. ok is false for a value that is not JSON or nests
// deeper than maxMetadataDepth.
func (d *jobDecoder) value(out []byte, depth int) (_ []byte, canonical, ok bool) {
	if depth > maxMetadataDepth {
		return out, false, false
	}
	d.ws()
	if d.i >= len(d.b) {
		return out, false, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		out = append(out, '{')
		canonical = true
		var prev []byte
		first := true
		if d.next('}') {
			return append(out, '}'), true, true
		}
		for {
			raw, escaped, ok := d.rawString()
			if !ok || !d.next(':') {
				return out, false, false
			}
			if canonical {
				// Marshal sorts the keys and keeps one of each.
				canonical = !escaped && plainString(raw) && (first || bytes.Compare(prev, raw) < 0)
				prev, first = raw, false
				if canonical {
					out = append(out, '"')
					out = append(out, raw...)
					out = append(out, '"', ':')
				}
			}
			var more bool
			if out, canonical, more, ok = d.member(out, depth, canonical, '}'); !ok || !more {
				return out, canonical, ok
			}
		}
	case c == '[':
		d.i++
		out = append(out, '[')
		canonical = true
		if d.next(']') {
			return append(out, ']'), true, true
		}
		for {
			var more bool
			if out, canonical, more, ok = d.member(out, depth, canonical, ']'); !ok || !more {
				return out, canonical, ok
			}
		}
	case c == '"':
		raw, escaped, ok := d.rawString()
		if !ok {
			return out, false, false
		}
		if escaped || !plainString(raw) {
			return out, false, true // metadata then decodes the generic way, which checks the escapes
		}
		out = append(out, '"')
		out = append(out, raw...)
		return append(out, '"'), true, true
	case c == 't' || c == 'f':
		start := d.i
		if _, ok := d.boolean(); !ok {
			return out, false, false
		}
		return append(out, d.b[start:d.i]...), true, true
	case c == 'n':
		if !bytes.HasPrefix(d.b[d.i:], []byte("null")) {
			return out, false, false
		}
		d.i += 4
		return append(out, "null"...), true, true
	default:
		n, ok := d.number()
		if !ok {
			return out, false, false
		}
		return append(out, n...), true, true
	}
}

// member reads the value of an object member or an array element in a container at depth,
// then the comma after it (more is set) or the container's closing byte. canonical says
// whether the container is still in json.Marshal's form, and is returned updated.
func (d *jobDecoder) member(out []byte, depth int, canonical bool, closing byte) (_ []byte, _, more, ok bool) {
	out, elemCanonical, ok := d.value(out, depth+1)
	if !ok {
		return out, false, false, false
	}
	canonical = canonical && elemCanonical
	if d.next(closing) {
		return append(out, closing), canonical, false, true
	}
	if !d.next(',') {
		return out, false, false, false
	}
	return append(out, ','), canonical, true, true
}

// plainString reports whether json.Marshal writes the string whose unescaped bytes are raw
// exactly as raw: valid UTF-8 without the characters it escapes (", \, control characters,
// <, >, & and U+2028, U+2029).
func plainString(raw []byte) bool {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}
