package storecodec

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/infleet/infleet/messages"
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

// Page cuts the rows of a list query, read newest first with one row more than limit, to a page
// of at most limit and the cursor of the page after it ("" when recs held no more).
func Page(recs []messages.JobRecord, limit int) ([]messages.JobRecord, string) {
	if len(recs) <= limit {
		return recs, ""
	}
	recs = recs[:limit]
	last := recs[limit-1]
	return recs, EncodeListCursor(last.CreatedAt.UnixMilli(), last.JobID)
}

// Millis returns t at millisecond precision in UTC, the precision the stores keep times at.
func Millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
