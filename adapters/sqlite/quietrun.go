package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// A run of transitions that return nothing (pipeline.Transition.Unreturned, no event: a
// worker's completions) is written by one UPDATE of many rows instead of one statement each:
// each statement costs SQLite its start, its cursors and its halt, and database/sql its
// conversion of the arguments (in the 0 ms burn-down the completions went from 12.6 % to
// 9.2 % of the worker's CPU; the rest is the rows' and indexes' own writes). Rows are
// independent, so a run holds each job once; the rows the UPDATE returns are the transitions
// that applied, and each other one is answered as transition answers a write that changed no
// row (refused).

// quietChunks are the numbers of rows the multi-row statements take, largest first; a run is
// cut into them, and what is left (one transition) runs on its own.
var quietChunks = []int{64, 32, 16, 8, 4, 2}

// transitionArgCount is how many arguments transitionSQL takes.
const transitionArgCount = 15

// quietRunSQL is transitionQuietSQL for n rows: ?1 to ?15 of transitionSQL become the columns
// of one row of the VALUES, and the UPDATE returns the job of each row it changed.
func quietRunSQL(n int) string {
	set := transitionQuietSQL
	set = set[:strings.Index(set, "\nWHERE ")]
	where := transitionQuietSQL[len(set):]
	// ?10 to ?15 first, so that ?1 does not rewrite the start of ?10.
	for i := transitionArgCount; i >= 1; i-- {
		col := "v.column" + strconv.Itoa(i)
		set = strings.ReplaceAll(set, "?"+strconv.Itoa(i), col)
		where = strings.ReplaceAll(where, "?"+strconv.Itoa(i), col)
	}
	where = strings.Replace(where, "WHERE job_id = ", "WHERE jobs.job_id = ", 1)
	var b strings.Builder
	b.WriteString(set)
	b.WriteString("\nFROM (VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", transitionArgCount), ", ") + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(") AS v")
	b.WriteString(where)
	b.WriteString("\nRETURNING jobs.job_id")
	return b.String()
}

// quiet reports whether r is a transition that returns nothing and records no event, whose
// caller still waits for it.
func (r *request) quiet() bool {
	return r.op == opTransition && r.tr.Unreturned && r.tr.EventID == "" && r.ctx.Err() == nil
}

// quietRun returns how many requests from batch[i] on applyQuietRun is to write, 0 or 1 for
// none: quiet transitions of distinct jobs, as many as the largest of quietChunks the run
// holds.
func (s *Store) quietRun(batch []*request, i int) int {
	if s.singleRows {
		return 0
	}
	return quietChunk(quietRunLen(batch, i))
}

// quietRunLen returns how many requests from batch[i] on are quiet transitions of distinct
// jobs, at most the largest chunk.
func quietRunLen(batch []*request, i int) int {
	n := 0
	for j := i; j < len(batch) && n < quietChunks[0] && batch[j].quiet(); j++ {
		for _, r := range batch[i:j] {
			if r.id == batch[j].id {
				return n
			}
		}
		n++
	}
	return n
}

// quietStmt returns the prepared statement of n rows, preparing it on first use.
func (s *Store) quietStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := s.w.quiet[n]; st != nil {
		return st, nil
	}
	st, err := s.wconn.PrepareContext(ctx, quietRunSQL(n))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: prepare the completion of %d jobs: %w", n, err)
	}
	if s.w.quiet == nil {
		s.w.quiet = map[int]*sql.Stmt{}
	}
	s.w.quiet[n] = st
	return st, nil
}

// applyQuietRun applies run, quiet transitions of distinct jobs, whose number is one of
// quietChunks, with one statement, and answers each. An error means the statement, or the read
// of a job it did not change, failed and the transaction can no longer be trusted; the answers
// are then not all set (runBatch runs the batch again, each write alone).
func (s *Store) applyQuietRun(ctx context.Context, run []*request) error {
	st, err := s.quietStmt(ctx, len(run))
	if err != nil {
		return err
	}
	args := s.w.quietArgs[:0]
	for _, r := range run {
		args = append(args, r.args...)
	}
	defer func() {
		clear(args) // the arguments are the requests': hold none of them past the run
		s.w.quietArgs = args[:0]
	}()
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("sqlite store: update %d jobs: %w", len(run), err)
	}
	applied := s.w.quietApplied
	if applied == nil {
		applied = make(map[string]bool, quietChunks[0])
		s.w.quietApplied = applied
	}
	defer clear(applied)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return fmt.Errorf("sqlite store: update %d jobs: %w", len(run), err)
		}
		applied[id] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite store: update %d jobs: %w", len(run), err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite store: update %d jobs: %w", len(run), err)
	}
	s.quietRows.Add(int64(len(run)))
	for _, r := range run {
		if !applied[r.id] {
			r.out, r.err = s.refused(ctx, r.id, r.tr)
			if !expected(r.err) {
				return r.err // as a single transition's failed read would
			}
		}
	}
	return nil
}

// quietChunk is the largest of quietChunks that a run of n holds, or n when it holds none.
func quietChunk(n int) int {
	for _, c := range quietChunks {
		if n >= c {
			return c
		}
	}
	return n
}
