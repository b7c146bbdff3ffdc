package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.ModelStatsStore = (*Store)(nil)

// modelStatsPrune is how often a process deletes the figures older than
// pipeline.ModelStatsKeep, at its next write.
const modelStatsPrune = 10 * time.Minute

// modelStatsPutSQL writes a process's figures, one row per element of the arrays, in one
// statement; a process writes only its own rows, so processes never wait on each other's.
const modelStatsPutSQL = `INSERT INTO model_stats (model, minute, process, calls, errors, throttles, input_tokens, output_tokens, latency, circuit, seen_ms)
SELECT m, mi, $3::text, c, e, th, i, o, l, ci, s
FROM unnest($1::text[], $2::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::bigint[])
	AS f(m, mi, c, e, th, i, o, l, ci, s)
ON CONFLICT (model, minute, process) DO UPDATE SET calls = excluded.calls, errors = excluded.errors,
	throttles = excluded.throttles, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
	latency = excluded.latency, circuit = excluded.circuit, seen_ms = excluded.seen_ms`

// modelStatsReadSQL reads the figures of models $1 from minute $2 on, walking the primary key.
const modelStatsReadSQL = `SELECT model, minute, process, calls, errors, throttles, input_tokens, output_tokens, latency, circuit, seen_ms
FROM model_stats WHERE model = ANY($1::text[]) AND minute >= $2`

// PutModelStats implements pipeline.ModelStatsStore in one statement. Every modelStatsPrune
// it also deletes the figures older than pipeline.ModelStatsKeep.
func (s *Store) PutModelStats(ctx context.Context, process string, figures []pipeline.ModelFigures) error {
	if len(figures) == 0 {
		return nil
	}
	n := len(figures)
	var (
		models, latencies, circuits = make([]string, n), make([]string, n), make([]string, n)
		minutes, seen               = make([]int64, n), make([]int64, n)
		calls, errs, throttles      = make([]int64, n), make([]int64, n), make([]int64, n)
		in, out                     = make([]int64, n), make([]int64, n)
	)
	for i, f := range figures {
		models[i], latencies[i], circuits[i] = f.Model, f.Latency.String(), f.Circuit
		minutes[i], seen[i] = f.Minute.Unix(), f.Seen.UnixMilli()
		calls[i], errs[i], throttles[i], in[i], out[i] = f.Calls, f.Errors, f.Throttles, f.InputTokens, f.OutputTokens
	}
	if _, err := s.pool.Exec(ctx, modelStatsPutSQL, models, minutes, process, calls, errs, throttles, in, out, latencies, circuits, seen); err != nil {
		return fmt.Errorf("%w: %w", pipeline.ErrUnavailable, s.wrap("write model figures", err))
	}
	if now := time.Now(); now.UnixNano()-s.statsPruned.Load() >= int64(modelStatsPrune) {
		s.statsPruned.Store(now.UnixNano())
		if _, err := s.pool.Exec(ctx, "DELETE FROM model_stats WHERE minute < $1", now.Add(-pipeline.ModelStatsKeep).Unix()); err != nil {
			return s.wrap("delete old model figures", err)
		}
	}
	return nil
}

// ModelStats implements pipeline.ModelStatsStore in one indexed read.
func (s *Store) ModelStats(ctx context.Context, models []string, since time.Time) ([]pipeline.ModelFigures, error) {
	if len(models) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, modelStatsReadSQL, models, since.Truncate(pipeline.ModelStatsStep).Unix())
	if err != nil {
		return nil, s.wrap("read model figures", err)
	}
	defer rows.Close()
	var out []pipeline.ModelFigures
	for rows.Next() {
		var (
			f              pipeline.ModelFigures
			minute, seenMs int64
			latency        string
		)
		if err := rows.Scan(&f.Model, &minute, &f.Process, &f.Calls, &f.Errors, &f.Throttles,
			&f.InputTokens, &f.OutputTokens, &latency, &f.Circuit, &seenMs); err != nil {
			return nil, s.wrap("read model figures", err)
		}
		if f.Latency, err = pipeline.ParseModelLatency(latency); err != nil {
			return nil, fmt.Errorf("postgres store: model figures of %s: %w", f.Model, err)
		}
		f.Minute, f.Seen = time.Unix(minute, 0).UTC(), time.UnixMilli(seenMs).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("read model figures", err)
	}
	return out, nil
}
