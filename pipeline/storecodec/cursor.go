package storecodec

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/infleet/infleet/pipeline"
)

// EncodeListCursor returns the opaque cursor of the page after the job created at createdAtMs
// (Unix milliseconds) with id jobID, for stores that list newest first by (created_at, job_id).
func EncodeListCursor(createdAtMs int64, jobID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdAtMs, 10) + ":" + jobID))
}

// DecodeListCursor reads a cursor made by EncodeListCursor; a malformed one is an error
// wrapping pipeline.ErrInvalidCursor.
func DecodeListCursor(c string) (createdAtMs int64, jobID string, err error) {
	bad := fmt.Errorf("%w: %q", pipeline.ErrInvalidCursor, c)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	msPart, jobID, ok := strings.Cut(string(raw), ":")
	if !ok {
		return 0, "", bad
	}
	createdAtMs, err = strconv.ParseInt(msPart, 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return createdAtMs, jobID, nil
}
