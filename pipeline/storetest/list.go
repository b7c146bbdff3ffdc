package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/storecodec"
)

// listAll pages through q, failing on a page over the limit, and returns every job seen.
func listAll(t *testing.T, s pipeline.JobStore, q pipeline.ListQuery) []messages.JobRecord {
	t.Helper()
	var all []messages.JobRecord
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("List %+v: no end after 1000 pages", q)
		}
		recs, next, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatalf("List %+v: %v", q, err)
		}
		if limit := cmpOr(q.Limit, 50); len(recs) > limit {
			t.Fatalf("List %+v: %d jobs on a page, limit %d", q, len(recs), limit)
		}
		all = append(all, recs...)
		if next == "" {
			return all
		}
		if len(recs) == 0 {
			t.Fatalf("List %+v: empty page with a next cursor %q", q, next)
		}
		q.Cursor = next
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// newestFirst sorts recs as List must return them.
func newestFirst(recs []messages.JobRecord) {
	slices.SortFunc(recs, func(a, b messages.JobRecord) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.JobID, a.JobID)
	})
}

func requireList(t *testing.T, what string, want, got []messages.JobRecord) {
	t.Helper()
	ids := func(recs []messages.JobRecord) []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			out[i] = r.JobID
		}
		return out
	}
	if !slices.Equal(ids(want), ids(got)) {
		t.Fatalf("%s:\n  want %v\n  got  %v", what, ids(want), ids(got))
	}
	for i := range want {
		if diff := recordDiff(want[i], got[i]); diff != "" {
			t.Fatalf("%s: job %s differs:\n%s", what, want[i].JobID, diff)
		}
	}
}

func testListEmpty(t *testing.T, s pipeline.JobStore) {
	recs, next, err := s.List(t.Context(), pipeline.ListQuery{})
	if err != nil || len(recs) != 0 || next != "" {
		t.Fatalf("List of an empty store: %d jobs, cursor %q, err %v; want none", len(recs), next, err)
	}
}

func testListOrderAndPages(t *testing.T, s pipeline.JobStore) {
	// 23 jobs, five to a millisecond, created out of order and with ids that do not sort
	// by creation time.
	const n = 23
	var want []messages.JobRecord
	for _, i := range []int{7, 0, 22, 3, 15, 9, 1, 18, 11, 4, 20, 13, 6, 2, 17, 10, 21, 5, 14, 8, 19, 12, 16} {
		rec := queued(fmt.Sprintf("job-%02d", (i*7)%n), base.Add(time.Duration(i/5)*time.Millisecond))
		want = append(want, mustCreate(t, s, rec))
	}
	newestFirst(want)
	for _, limit := range []int{1, 4, 5, 23, 100} {
		got := listAll(t, s, pipeline.ListQuery{Limit: limit})
		requireList(t, fmt.Sprintf("all jobs in pages of %d", limit), want, got)
	}
}

func testListFilters(t *testing.T, s pipeline.JobStore) {
	var all []messages.JobRecord
	statuses := []messages.Status{messages.StatusQueued, messages.StatusProcessing, messages.StatusCompleted}
	for i := range 18 {
		rec := queued(fmt.Sprintf("job-%02d", i), base.Add(time.Duration(i%4)*time.Second))
		rec.Task = []string{"summarize", "classify"}[i%2]
		rec.Tenant = []string{"acme", "globex", "initech"}[i%3]
		rec.Priority = []messages.Priority{messages.PriorityHigh, messages.PriorityNormal, messages.PriorityLow, messages.PriorityNormal}[i%4]
		mustCreate(t, s, rec)
		if st := statuses[i%3]; st != messages.StatusQueued {
			rec = mustTransition(t, s, rec.JobID, pipeline.Transition{
				From: []messages.Status{messages.StatusQueued}, To: st, At: base.Add(time.Hour),
			})
		} else {
			rec = normalized(rec)
		}
		all = append(all, rec)
	}
	newestFirst(all)
	for _, q := range []pipeline.ListQuery{
		{},
		{Status: messages.StatusProcessing},
		{Task: "classify"},
		{Tenant: "globex"},
		{Tenant: "acme", Task: "classify"},
		{Status: messages.StatusCompleted, Task: "summarize", Tenant: "initech"},
		{Status: messages.StatusFailed},
		{Tenant: "nobody"},
		{Status: messages.StatusQueued, Limit: 2},
		{Task: "summarize", Limit: 1},
		{Priority: messages.PriorityHigh},
		{Priority: messages.PriorityNormal, Tenant: "acme", Limit: 1},
		{CreatedAfter: base.Add(time.Second)},
		{CreatedBefore: base.Add(2 * time.Second), Limit: 3},
		{CreatedAfter: base.Add(time.Second), CreatedBefore: base.Add(3 * time.Second), Status: messages.StatusCompleted, Limit: 2},
		{CreatedAfter: base.Add(time.Second + time.Millisecond), CreatedBefore: base.Add(2*time.Second + time.Millisecond), Priority: messages.PriorityLow},
		{CreatedAfter: base.Add(time.Hour)},
	} {
		var want []messages.JobRecord
		for _, r := range all {
			if q.Matches(r) {
				want = append(want, r)
			}
		}
		requireList(t, fmt.Sprintf("List %+v", q), want, listAll(t, s, q))
	}
}

func testListDefaultLimit(t *testing.T, s pipeline.JobStore) {
	const n = 55
	for i := range n {
		mustCreate(t, s, queued(fmt.Sprintf("job-%02d", i), base.Add(time.Duration(i)*time.Millisecond)))
	}
	recs, next, err := s.List(t.Context(), pipeline.ListQuery{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(recs) != 50 || next == "" {
		t.Fatalf("List with Limit 0 over %d jobs: %d jobs, cursor %q; want 50 and a cursor", n, len(recs), next)
	}
	if recs[0].JobID != "job-54" || recs[49].JobID != "job-05" {
		t.Fatalf("first page runs %s..%s, want job-54..job-05", recs[0].JobID, recs[49].JobID)
	}
	rest := listAll(t, s, pipeline.ListQuery{Cursor: next})
	if len(rest) != n-50 {
		t.Fatalf("second page: %d jobs, want %d", len(rest), n-50)
	}
}

func testListInvalidCursor(t *testing.T, s pipeline.JobStore) {
	for _, c := range []string{"not a cursor!", "bm9jb2xvbg", storecodec.EncodeListCursor(1, "x") + "%"} {
		if _, _, err := s.List(context.Background(), pipeline.ListQuery{Cursor: c}); !errors.Is(err, pipeline.ErrInvalidCursor) {
			t.Errorf("List with cursor %q: %v, want an error wrapping pipeline.ErrInvalidCursor", c, err)
		}
	}
}
