package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// JobFromDoc builds the Job of a job document that schemas.ValidateJob accepted (decoded from
// JSON with json.Decoder.UseNumber), without parsing the body a second time: POST /v1/jobs and
// the worker's decode are hot paths. It gives the same Job as json.Unmarshal of the body
// (metadata up to JSON formatting; and a whole number written as 12.0 or 1.2E1 is read as
// max_tokens 12, which JSON Schema counts as an integer and json.Unmarshal refuses):
// handlers' TestJobFromDocMatchesUnmarshal and FuzzPostJob hold it to that. An error means the
// document is not schema-valid after all.
func JobFromDoc(doc any) (Job, error) {
	var job Job
	obj, ok := doc.(map[string]any)
	if !ok {
		return job, errors.New("the job must be a JSON object")
	}
	var err error
	for k, v := range obj {
		switch k {
		case "job_id":
			job.JobID, err = str(k, v)
		case "task":
			job.Task, err = str(k, v)
		case "model":
			job.Model, err = str(k, v)
		case "priority":
			var p string
			p, err = str(k, v)
			job.Priority = Priority(p)
		case "callback_url":
			job.CallbackURL, err = str(k, v)
		case "idempotency_key":
			job.IdempotencyKey, err = str(k, v)
		case "replay_name":
			job.ReplayName, err = str(k, v)
		case "context":
			job.Context, err = str(k, v)
		case "stream":
			b, ok := v.(bool)
			if !ok {
				err = errors.New("stream: must be true or false")
			}
			job.Stream = b
		case "input":
			job.Input, err = inputFromDoc(v)
		case "params":
			job.Params, err = paramsFromDoc(v)
		case "metadata":
			if v != nil {
				job.Metadata, err = json.Marshal(v)
			}
		default:
			err = fmt.Errorf("%s: unknown field", k)
		}
		if err != nil {
			return Job{}, err
		}
	}
	return job, nil
}

func str(field string, v any) (string, error) {
	switch s := v.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("%s: must be a string", field)
}

func inputFromDoc(v any) (Input, error) {
	var in Input
	if v == nil {
		return in, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return in, errors.New("input: must be an object")
	}
	var err error
	for k, v := range obj {
		switch k {
		case "text":
			in.Text, err = str("input.text", v)
		case "s3_uri":
			in.S3URI, err = str("input.s3_uri", v)
		case "messages":
			if v == nil {
				continue
			}
			list, ok := v.([]any)
			if !ok {
				return in, errors.New("input.messages: must be an array")
			}
			in.Messages = make([]ChatMessage, len(list))
			for i, item := range list {
				m, ok := item.(map[string]any)
				if !ok {
					return in, errors.New("input.messages: items must be objects")
				}
				if in.Messages[i].Role, err = str("input.role", m["role"]); err != nil {
					return in, err
				}
				if in.Messages[i].Content, err = str("input.content", m["content"]); err != nil {
					return in, err
				}
			}
		default:
			err = fmt.Errorf("input.%s: unknown field", k)
		}
		if err != nil {
			return in, err
		}
	}
	return in, nil
}

// wholeNumber reads n as an int when it is a whole number that fits one, however it is
// written: 12, 12.0 and 1.2E1 alike (JSON Schema counts each as an integer). A number
// written in more than maxWholeNumberText characters is not read (an exponent such as
// 1e999999999 would cost the exact arithmetic gigabytes).
func wholeNumber(n json.Number) (int, bool) {
	if i, err := n.Int64(); err == nil {
		return int(i), int64(int(i)) == i
	}
	if len(n) > maxWholeNumberText || strings.ContainsAny(string(n), "eE") && exponentTooLarge(string(n)) {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	i := r.Num().Int64()
	return int(i), int64(int(i)) == i
}

// maxWholeNumberText bounds the text of a number wholeNumber reads exactly.
const maxWholeNumberText = 64

// exponentTooLarge reports whether the exponent of a number in E notation is beyond what an
// int can hold a whole number of (|exponent| > 30).
func exponentTooLarge(n string) bool {
	i := strings.IndexAny(n, "eE")
	e, err := strconv.Atoi(n[i+1:])
	return err != nil || e > 30 || e < -30
}

func paramsFromDoc(v any) (*Params, error) {
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("params: must be an object")
	}
	p := &Params{}
	for k, v := range obj {
		if v == nil {
			continue
		}
		switch k {
		case "max_tokens":
			n, ok := v.(json.Number)
			i, whole := wholeNumber(n)
			if !ok || !whole {
				return nil, errors.New("params.max_tokens: must be a whole number")
			}
			p.MaxTokens = i
		case "temperature", "top_p":
			n, ok := v.(json.Number)
			f, err := n.Float64()
			if !ok || err != nil {
				return nil, fmt.Errorf("params.%s: must be a number", k)
			}
			if k == "temperature" {
				p.Temperature = &f
			} else {
				p.TopP = &f
			}
		case "stop":
			list, ok := v.([]any)
			if !ok {
				return nil, errors.New("params.stop: must be an array of strings")
			}
			p.Stop = make([]string, len(list))
			for i, s := range list {
				var err error
				if p.Stop[i], err = str("params.stop", s); err != nil {
					return nil, err
				}
			}
		default:
			return nil, fmt.Errorf("params.%s: unknown field", k)
		}
	}
	return p, nil
}
