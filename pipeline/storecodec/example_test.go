package storecodec_test

import (
	"errors"
	"fmt"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// A store hands out the cursor of the last job on a page and reads it back for the next page;
// a cursor it did not make is an error the API answers with 400.
func ExampleDecodeListCursor() {
	c := storecodec.EncodeListCursor(1700000000000, "job-1")
	ms, id, err := storecodec.DecodeListCursor(c)
	fmt.Println(ms, id, err)
	_, _, err = storecodec.DecodeListCursor("not a cursor!")
	fmt.Println(errors.Is(err, pipeline.ErrInvalidCursor))
	// Output:
	// 1700000000000 job-1 <nil>
	// true
}
