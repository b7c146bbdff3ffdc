package schemas_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/infleet/infleet/schemas"
)

func ExampleValidateJob() {
	body := `{"task": "summarize", "input": {"text": "hi", "s3_uri": "s3://inbox/a.txt"},
	          "priority": "urgent", "params": {"max_tokens": 0}}`
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		panic(err)
	}
	for _, p := range schemas.ValidateJob(doc) {
		fmt.Println(p)
	}
	// Output:
	// input: give exactly one of text, messages or s3_uri
	// params.max_tokens: must be at least 1
	// priority: must be one of high, normal, low
}
