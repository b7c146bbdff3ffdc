package s3_test

import (
	"fmt"

	"github.com/infleet/infleet/adapters/s3"
)

func ExampleParseURI() {
	bucket, key, err := s3.ParseURI("s3://inbox/docs/report.txt")
	fmt.Println(bucket, key, err)
	_, _, err = s3.ParseURI("s3://inbox")
	fmt.Println(err)
	// Output:
	// inbox docs/report.txt <nil>
	// input "s3://inbox" names no bucket or no key: give it as s3://bucket/key
}
