package schemas

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
)

// decodeGeneric is the full decode DecodeValidJob stands in for: the body decoded with
// UseNumber as one JSON value, checked against the compiled job schema (not ValidateJob's
// own fast path) and turned into a Job by messages.JobFromDoc. ok is false when any step
// refuses the body.
func decodeGeneric(body []byte) (messages.Job, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return messages.Job{}, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return messages.Job{}, false
	}
	if loaded().job.Validate(doc) != nil {
		return messages.Job{}, false
	}
	job, err := messages.JobFromDoc(doc)
	return job, err == nil
}

// checkDecodeValidJob fails t when DecodeValidJob accepts body and the full decode does not,
// or gives another Job. It returns DecodeValidJob's ok.
func checkDecodeValidJob(t *testing.T, body []byte) bool {
	t.Helper()
	return checkDecoder(t, "DecodeValidJob", body, DecodeValidJob, decodeGeneric)
}

// checkDecoder fails t when decoder (named name) accepts body and full does not, or full
// gives another value. It returns decoder's ok.
func checkDecoder[T any](t *testing.T, name string, body []byte, decoder, full func([]byte) (T, bool)) bool {
	t.Helper()
	got, ok := decoder(body)
	if !ok {
		return false
	}
	want, fullOK := full(body)
	if !fullOK {
		t.Fatalf("%s accepted a body the schema refuses: %s", name, body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s of %s\n gave %#v\nwant %#v", name, body, got, want)
	}
	return true
}

func TestDecodeValidJobTakesCommonBodies(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"minimal text":     `{"task":"summarize","input":{"text":"hello"}}`,
		"benchmark body":   benchJob,
		"white space":      " \t\r\n{ \"task\" : \"t\" ,\n \"input\" : { \"text\" : \"x\" } }\n",
		"messages":         `{"task":"chat","input":{"messages":[{"role":"system","content":""},{"content":"hi","role":"user"},{"role":"assistant","content":"yo"}]}}`,
		"s3 uri":           `{"task":"summarize","input":{"s3_uri":"s3://my-bucket.v2/docs/a b.txt"}}`,
		"escapes":          `{"task":"t","input":{"text":"line one\nline \"two\"\t\u00e9\ud83d\ude00 \/"}}`,
		"invalid UTF-8":    "{\"task\":\"t\",\"input\":{\"text\":\"caf\xe9\"}}",
		"job id and more":  `{"job_id":"0199a1b2-c3d4-7e8f-9a0b-1c2d3e4f5a6b","task":"t","input":{"text":"x"},"replay_name":"r-1","context":"ctx","stream":true,"model":"m.1:x_y-z"}`,
		"stream false":     `{"task":"t","input":{"text":"x"},"stream":false}`,
		"params":           `{"task":"t","input":{"text":"x"},"params":{"max_tokens":200000,"temperature":2,"top_p":0.95,"stop":["a","\n"]}}`,
		"empty params":     `{"task":"t","input":{"text":"x"},"params":{}}`,
		"empty stop":       `{"task":"t","input":{"text":"x"},"params":{"stop":[]}}`,
		"zero temperature": `{"task":"t","input":{"text":"x"},"params":{"temperature":0.0,"top_p":0}}`,
		"sorted metadata":  `{"task":"t","input":{"text":"x"},"metadata":{"a":1,"b":"two","c":[true,false,null,-1.5e3,{}],"d":{"x":[]}}}`,
		"spaced metadata":  `{"task":"t","input":{"text":"x"},"metadata":{ "a" : 1 , "b" : [ 1 , 2 ] }}`,
		"unsorted":         `{"task":"t","input":{"text":"x"},"metadata":{"b":1,"a":{"z":1,"y":2}}}`,
		"repeated key":     `{"task":"t","input":{"text":"x"},"metadata":{"a":1,"a":2}}`,
		"html in metadata": `{"task":"t","input":{"text":"x"},"metadata":{"q":"<a & b>","\u2028":"\u2029"}}`,
		"escaped metadata": `{"task":"t","input":{"text":"x"},"metadata":{"k\"ey":"v\\al","caf\u00e9":"\u00e9"}}`,
		"line separators":  "{\"task\":\"t\",\"input\":{\"text\":\"x\"},\"metadata\":{\"k\":\"a\u2028b\u2029\"}}",
		"binary metadata":  "{\"task\":\"t\",\"input\":{\"text\":\"x\"},\"metadata\":{\"k\":\"\xff\xfe\"}}",
		"empty metadata":   `{"task":"t","input":{"text":"x"},"metadata":{}}`,
		"unicode key":      `{"task":"t","input":{"text":"x"},"idempotency_key":"ключ-€"}`,
		"callback":         `{"task":"t","input":{"text":"x"},"callback_url":"https://hooks.example.com:8443/p?q=1#f","priority":"low"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if !checkDecodeValidJob(t, []byte(body)) {
				t.Fatalf("DecodeValidJob left a common body to the full decoder: %s", body)
			}
		})
	}
}

func TestDecodeValidJobRefusesWhatTheSchemaRefuses(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not JSON":            `{"task":"t","input":{"text":"x"}`,
		"two values":          `{"task":"t","input":{"text":"x"}} {}`,
		"trailing comma":      `{"task":"t","input":{"text":"x"},}`,
		"array":               `[{"task":"t","input":{"text":"x"}}]`,
		"no task":             `{"input":{"text":"x"}}`,
		"no input":            `{"task":"t"}`,
		"unknown field":       `{"task":"t","input":{"text":"x"},"tasks":"t"}`,
		"field case":          `{"Task":"t","input":{"text":"x"}}`,
		"bad task":            `{"task":"-t","input":{"text":"x"}}`,
		"long task":           `{"task":"` + strings.Repeat("t", 129) + `","input":{"text":"x"}}`,
		"null task":           `{"task":null,"input":{"text":"x"}}`,
		"empty text":          `{"task":"t","input":{"text":""}}`,
		"two inputs":          `{"task":"t","input":{"text":"x","s3_uri":"s3://abc/k"}}`,
		"no input kind":       `{"task":"t","input":{}}`,
		"bad s3 uri":          `{"task":"t","input":{"s3_uri":"s3://A/k"}}`,
		"no messages":         `{"task":"t","input":{"messages":[]}}`,
		"bad role":            `{"task":"t","input":{"messages":[{"role":"bot","content":"x"}]}}`,
		"no content":          `{"task":"t","input":{"messages":[{"role":"user"}]}}`,
		"extra message field": `{"task":"t","input":{"messages":[{"role":"user","content":"x","name":"n"}]}}`,
		"priority":            `{"task":"t","input":{"text":"x"},"priority":"urgent"}`,
		"max_tokens 0":        `{"task":"t","input":{"text":"x"},"params":{"max_tokens":0}}`,
		"max_tokens big":      `{"task":"t","input":{"text":"x"},"params":{"max_tokens":200001}}`,
		"max_tokens fraction": `{"task":"t","input":{"text":"x"},"params":{"max_tokens":1.5}}`,
		"temperature":         `{"task":"t","input":{"text":"x"},"params":{"temperature":2.0000000001}}`,
		"negative top_p":      `{"task":"t","input":{"text":"x"},"params":{"top_p":-0.1}}`,
		"empty stop string":   `{"task":"t","input":{"text":"x"},"params":{"stop":[""]}}`,
		"too many stops":      `{"task":"t","input":{"text":"x"},"params":{"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]}}`,
		"unknown param":       `{"task":"t","input":{"text":"x"},"params":{"seed":1}}`,
		"metadata array":      `{"task":"t","input":{"text":"x"},"metadata":[]}`,
		"metadata null":       `{"task":"t","input":{"text":"x"},"metadata":null}`,
		"bad metadata":        `{"task":"t","input":{"text":"x"},"metadata":{"a":01}}`,
		"bad escape":          `{"task":"t","input":{"text":"\x"}}`,
		"control character":   "{\"task\":\"t\",\"input\":{\"text\":\"a\tb\"}}",
		"empty key":           `{"task":"t","input":{"text":"x"},"idempotency_key":""}`,
		"long key":            `{"task":"t","input":{"text":"x"},"idempotency_key":"` + strings.Repeat("€", 257) + `"}`,
		"callback scheme":     `{"task":"t","input":{"text":"x"},"callback_url":"ftp://h/p"}`,
		"stream string":       `{"task":"t","input":{"text":"x"},"stream":"true"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if checkDecodeValidJob(t, []byte(body)) {
				t.Fatalf("DecodeValidJob accepted %s", body)
			}
			if _, ok := decodeGeneric([]byte(body)); ok {
				t.Fatalf("the schema accepts %s; the case belongs elsewhere", body)
			}
		})
	}
}

// TestDecodeValidJobLeavesRareFormsToTheFullDecoder lists valid bodies DecodeValidJob does
// not decode itself: a caller still gets them right through the full decoder.
func TestDecodeValidJobLeavesRareFormsToTheFullDecoder(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"escaped key":    `{"t\u0061sk":"t","input":{"text":"x"}}`,
		"repeated field": `{"task":"a","task":"t","input":{"text":"x"}}`,
		"exponent":       `{"task":"t","input":{"text":"x"},"params":{"max_tokens":1e3}}`,
		"whole as float": `{"task":"t","input":{"text":"x"},"params":{"max_tokens":12.0}}`,
		"empty replay":   `{"task":"t","input":{"text":"x"},"replay_name":""}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := decodeGeneric([]byte(body)); !ok {
				t.Fatalf("the schema refuses %s", body)
			}
			if checkDecodeValidJob(t, []byte(body)) {
				t.Fatalf("DecodeValidJob took %s; move the case to TestDecodeValidJobTakesCommonBodies", body)
			}
		})
	}
}

// FuzzDecodeValidJob holds DecodeValidJob to its contract: whatever it accepts, the full
// decode accepts too and turns into the same Job.
func FuzzDecodeValidJob(f *testing.F) {
	for _, s := range []string{
		benchJob,
		`{"task":"t","input":{"text":"x"}}`,
		`{"task":"t","input":{"s3_uri":"s3://abc/k"},"params":{"max_tokens":1000,"top_p":1}}`,
		`{"task":"t","input":{"messages":[{"role":"user","content":"x"}]},"callback_url":"http://h/p"}`,
		`{"task":"t","input":{"text":"x"},"metadata":{"a":[1,{"b":null}],"c":"<"},"context":"c","stream":true}`,
		`{"task":"t","input":{"text":"\u00e9\n"},"idempotency_key":"k","replay_name":"","job_id":"j"}`,
		`{"task":"","input":{},"priority":"urgent","params":{"max_tokens":0}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeValidJob(t, data)
	})
}

// BenchmarkDecodeValidJob is the decode of a typical job body; compare with
// BenchmarkDecodeGenericJob, the generic decode, schema check and JobFromDoc it replaces.
func BenchmarkDecodeValidJob(b *testing.B) {
	body := []byte(benchJob)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, ok := DecodeValidJob(body); !ok {
			b.Fatal("not decoded")
		}
	}
}

// BenchmarkDecodeGenericJob is the generic path for the body of BenchmarkDecodeValidJob.
func BenchmarkDecodeGenericJob(b *testing.B) {
	body := []byte(benchJob)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var doc any
		if dec.Decode(&doc) != nil {
			b.Fatal("not JSON")
		}
		if ValidateJob(doc) != nil {
			b.Fatal("invalid")
		}
		if _, err := messages.JobFromDoc(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// decodeGenericBatch is the full decode DecodeValidBatch stands in for: the body decoded with
// UseNumber, checked against the compiled batch schema, each item turned into a Job by
// messages.JobFromDoc.
func decodeGenericBatch(body []byte) ([]messages.Job, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	if loaded().batch.Validate(doc) != nil {
		return nil, false
	}
	items := doc.(map[string]any)["jobs"].([]any)
	jobs := make([]messages.Job, len(items))
	for i, item := range items {
		var err error
		if jobs[i], err = messages.JobFromDoc(item); err != nil {
			return nil, false
		}
	}
	return jobs, true
}

// checkDecodeValidBatch fails t when DecodeValidBatch accepts body and the full decode does
// not, or gives other jobs. It returns DecodeValidBatch's ok.
func checkDecodeValidBatch(t *testing.T, body []byte) bool {
	t.Helper()
	return checkDecoder(t, "DecodeValidBatch", body, DecodeValidBatch, decodeGenericBatch)
}

func TestDecodeValidBatch(t *testing.T) {
	t.Parallel()
	job := `{"task":"t","input":{"text":"x"},"metadata":{"b":1,"a":2}}`
	many := func(n int) string { return `{"jobs":[` + strings.TrimSuffix(strings.Repeat(job+",", n), ",") + `]}` }
	for name, body := range map[string]string{
		"one":         many(1),
		"a hundred":   many(MaxBatchJobs),
		"white space": " { \"jobs\" : [ " + benchJob + " , " + job + " ] } ",
	} {
		t.Run(name, func(t *testing.T) {
			if !checkDecodeValidBatch(t, []byte(body)) {
				t.Fatalf("DecodeValidBatch left a common batch to the full decoder: %.200s", body)
			}
		})
	}
	for name, body := range map[string]string{
		"empty":         `{"jobs":[]}`,
		"too many":      many(MaxBatchJobs + 1),
		"other key":     `{"jobs":[` + job + `],"more":1}`,
		"no jobs":       `{}`,
		"not an array":  `{"jobs":{}}`,
		"invalid item":  `{"jobs":[` + job + `,{"task":"t"}]}`,
		"item not job":  `{"jobs":[1]}`,
		"two values":    many(1) + ` {}`,
		"repeated jobs": `{"jobs":[` + job + `],"jobs":[` + job + `]}`,
	} {
		t.Run(name, func(t *testing.T) {
			if checkDecodeValidBatch(t, []byte(body)) {
				t.Fatalf("DecodeValidBatch accepted %.200s", body)
			}
		})
	}
}

// FuzzDecodeValidBatch holds DecodeValidBatch to its contract: whatever it accepts, the full
// decode accepts too and turns into the same jobs.
func FuzzDecodeValidBatch(f *testing.F) {
	for _, s := range []string{
		`{"jobs":[` + benchJob + `]}`,
		`{"jobs":[{"task":"t","input":{"text":"x"}},{"task":"u","input":{"s3_uri":"s3://abc/k"},"metadata":{"z":[1],"a":null}}]}`,
		`{"jobs":[{"task":"t","input":{"text":"x"},"replay_name":""}]}`,
		`{"jobs":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeValidBatch(t, data)
	})
}
