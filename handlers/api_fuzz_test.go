package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/schemas"
)

// FuzzPostJob checks that no body, however broken, makes POST /v1/jobs or POST /v1/jobs:batch
// answer a server error: a client mistake is always a 4xx.
func FuzzPostJob(f *testing.F) {
	for _, seed := range []string{
		validJob,
		`{"jobs":[` + validJob + `]}`,
		`{"task":"t","input":{"messages":[{"role":"user","content":"hi"}]},"params":{"temperature":1e400}}`,
		`{"task":"t","input":{"text":"x"},"params":{"max_tokens":1.5}}`,
		`{"task":"t","input":{"text":"x"},"params":{"max_tokens":99999999999999999999999}}`,
		`{"task":"t","input":{"s3_uri":"s3://bucket/key"},"metadata":{"a":[1,{"b":null}]}}`,
		`{"task":"\u0000","input":{"text":"\ud800"}}`,
		`{"jobs":[{},[],null,1,"x"]}`,
		`{"task":"t","input":{"text":"x"},"replay_name":""}`,
		`{"jobs":[{"task":"t","input":{"text":"x"},"idempotency_key":"own"},{"task":"u","input":{"text":"y"}}]}`,
		`{"jobs":[{"task":"t","input":{"text":"x"},"replay_name":""}]}`,
		`{"task":"t","input":{"text":"x"},"idempotency_key":"j"}`,
		`[]`, `null`, `"x"`, `{`, `{"task":}`, "\xff\xfe",
	} {
		f.Add(seed, "")
		f.Add(seed, "k")
	}
	// A header key that leaves room for "/0" to "/9" but not for "/10".
	f.Add(`{"jobs":[`+strings.TrimSuffix(strings.Repeat(validJob+",", 11), ",")+`]}`, strings.Repeat("k", maxIdempotencyKeyLen-2))
	jobs := newMemJobs()
	h, err := NewAPI(APIConfig{Jobs: jobs, MaxBodyBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, key string) {
		checkJobFromDoc(t, body)
		checkDecodeJob(t, body, key)
		checkDecodeBatch(t, body, key)
		for _, path := range []string{"/v1/jobs", "/v1/jobs:batch"} {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if key != "" && validHeaderValue(key) {
				r.Header.Set(HeaderIdempotencyKey, key)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("POST %s %q answered %d: %s", path, body, w.Code, w.Body)
			}
		}
	})
}

// validHeaderValue reports whether net/http would send s as a header value.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// checkDecodeJob fails t when POST /v1/jobs's decode, which takes schemas.DecodeValidJob's
// job when it can, answers body and an Idempotency-Key header otherwise than its generic
// path alone does: the same job, or a refusal with the same status.
func checkDecodeJob(t *testing.T, body, key string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/jobs", nil)
	fastW, slowW := httptest.NewRecorder(), httptest.NewRecorder()
	fast, fastOK := decodeJob(fastW, r, []byte(body), key)
	slow, slowOK := decodeJobGeneric(slowW, r, []byte(body), key)
	if fastOK != slowOK || fastW.Code != slowW.Code || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("POST /v1/jobs %q with key %q: decoded %v (%d) %+v, the generic path %v (%d) %+v",
			body, key, fastOK, fastW.Code, fast, slowOK, slowW.Code, slow)
	}
}

// checkDecodeBatch is checkDecodeJob for POST /v1/jobs:batch: the same results and jobs as
// the generic path alone, or a refusal with the same status.
func checkDecodeBatch(t *testing.T, body, key string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/jobs:batch", nil)
	fastW, slowW := httptest.NewRecorder(), httptest.NewRecorder()
	fastRes, fast, fastOK := decodeBatch(fastW, r, []byte(body), key)
	slowRes, slow, slowOK := decodeBatchGeneric(slowW, r, []byte(body), key)
	if fastOK != slowOK || fastW.Code != slowW.Code || !reflect.DeepEqual(fast, slow) || !reflect.DeepEqual(fastRes, slowRes) {
		t.Fatalf("POST /v1/jobs:batch %q with key %q: decoded %v (%d) %+v %+v, the generic path %v (%d) %+v %+v",
			body, key, fastOK, fastW.Code, fastRes, fast, slowOK, slowW.Code, slowRes, slow)
	}
}

// checkJobFromDoc fails t when body is a valid job whose messages.JobFromDoc differs from json.Unmarshal.
func checkJobFromDoc(t *testing.T, body string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil || len(schemas.ValidateJob(doc)) > 0 {
		return
	}
	got, err := messages.JobFromDoc(doc)
	if err != nil {
		t.Fatalf("JobFromDoc of a valid job %s: %v", body, err)
	}
	var want messages.Job
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		// encoding/json refuses what the schema admits (e.g. invalid UTF-8 is replaced either way,
		// numbers out of float range): the handler's own path answers 400 for such input.
		return
	}
	if !sameJSON(t, got.Metadata, want.Metadata) {
		t.Fatalf("metadata of %s: got %s, want %s", body, got.Metadata, want.Metadata)
	}
	got.Metadata, want.Metadata = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JobFromDoc(%s) = %+v, json.Unmarshal = %+v", body, got, want)
	}
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func TestJobFromDocMatchesUnmarshal(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		validJob,
		benchBody,
		`{"task":"t","input":{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":""}]},` +
			`"params":{"max_tokens":200000,"temperature":0,"top_p":1,"stop":["a","b"]},"model":"m.1:x",` +
			`"callback_url":"https://example.com/hook?a=1","idempotency_key":"k","replay_name":"r",` +
			`"metadata":{"n":1.50,"s":"<&>","nested":{"a":[true,null]}}}`,
		`{"task":"t","input":{"s3_uri":"s3://bucket/key.txt"},"params":{},"metadata":{}}`,
		`{"task":"t","input":{"text":"x"},"stream":true,"context":"c"}`,
	} {
		if errs := schemas.ValidateJob(mustDoc(t, body)); len(errs) > 0 {
			t.Fatalf("test job %s is not valid: %v", body, errs)
		}
		checkJobFromDoc(t, body)
	}
}

func mustDoc(t *testing.T, body string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}
