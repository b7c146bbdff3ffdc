package pipeline

import (
	"encoding/json"
	"testing"
)

// TestCallbackURLAnswersAsDecodingDoes checks that the quick check before decoding never
// changes the answer: every spelling encoding/json takes for the key is still found.
func TestCallbackURLAnswersAsDecodingDoes(t *testing.T) {
	specs := []string{
		`{"job_id":"a","task":"t"}`,
		`{"job_id":"a","callback_url":"https://h/x"}`,
		`{"job_id":"a","CALLBACK_URL":"https://h/x"}`,
		`{"job_id":"a","Callback_Url":"https://h/x"}`,
		`{"job_id":"a","callback\u005furl":"https://h/x"}`,
		"{\"job_id\":\"a\",\"callbac\u212a_url\":\"https://h/x\"}", // the Kelvin sign folds to k
		`{"job_id":"a","input":{"text":"no callback here"}}`,
		`{"job_id":"a","input":{"text":"callback_url"}}`,
		`{"job_id":"a","callback_ur":"x"}`,
		`{"job_id":"a","callback_url":""}`,
		`not json callback_url`,
		`{"callback_url":"https://h/x"`,
	}
	for _, spec := range specs {
		var v struct {
			CallbackURL string `json:"callback_url"`
		}
		_ = json.Unmarshal([]byte(spec), &v)
		if got := callbackURL([]byte(spec)); got != v.CallbackURL {
			t.Errorf("callbackURL(%s) = %q, decoding gives %q", spec, got, v.CallbackURL)
		}
	}
}
