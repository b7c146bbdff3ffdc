package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/infleet/infleet/pipeline"
)

var _ pipeline.ModelStatsStore = (*Limits)(nil)

// modelStatsPrune is how often a process deletes the figures older than
// pipeline.ModelStatsKeep, at its next write.
const modelStatsPrune = 10 * time.Minute

// modelStatsColumns are the columns of model_stats in the order PutModelStats writes them.
const modelStatsColumns = "model, minute, process, calls, errors, throttles, input_tokens, output_tokens, latency, circuit, seen_ms"

// modelStatsReadSQL reads the figures of the models in the JSON array ?1 from minute ?2 on,
// walking the primary key per model.
const modelStatsReadSQL = "SELECT " + modelStatsColumns + " FROM model_stats WHERE model IN (SELECT value FROM json_each(?1)) AND minute >= ?2"

// PutModelStats implements pipeline.ModelStatsStore: one upsert statement for every figure,
// atomic across the processes sharing the file. Every modelStatsPrune it also deletes the
// figures older than pipeline.ModelStatsKeep.
func (l *Limits) PutModelStats(ctx context.Context, process string, figures []pipeline.ModelFigures) error {
	if len(figures) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO model_stats (" + modelStatsColumns + ") VALUES ")
	args := make([]any, 0, 11*len(figures))
	for i, f := range figures {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
		args = append(args, f.Model, f.Minute.Unix(), process, f.Calls, f.Errors, f.Throttles,
			f.InputTokens, f.OutputTokens, f.Latency.String(), f.Circuit, f.Seen.UnixMilli())
	}
	b.WriteString(` ON CONFLICT (model, minute, process) DO UPDATE SET calls = excluded.calls, errors = excluded.errors,
	throttles = excluded.throttles, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
	latency = excluded.latency, circuit = excluded.circuit, seen_ms = excluded.seen_ms`)
	if _, err := l.db.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("sqlite limits: write model figures: %w: %w", pipeline.ErrUnavailable, err)
	}
	if now := time.Now(); now.UnixNano()-l.pruned.Load() >= int64(modelStatsPrune) {
		l.pruned.Store(now.UnixNano())
		if _, err := l.db.ExecContext(ctx, "DELETE FROM model_stats WHERE minute < ?", now.Add(-pipeline.ModelStatsKeep).Unix()); err != nil {
			return fmt.Errorf("sqlite limits: delete old model figures: %w", err)
		}
	}
	return nil
}

// ModelStats implements pipeline.ModelStatsStore with one indexed range read per model.
func (l *Limits) ModelStats(ctx context.Context, models []string, since time.Time) ([]pipeline.ModelFigures, error) {
	if len(models) == 0 {
		return nil, nil
	}
	names, err := jsonStrings(models)
	if err != nil {
		return nil, err
	}
	rows, err := l.db.QueryContext(ctx, modelStatsReadSQL, names, since.Truncate(pipeline.ModelStatsStep).Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlite limits: read model figures: %w", err)
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
			return nil, fmt.Errorf("sqlite limits: read model figures: %w", err)
		}
		if f.Latency, err = pipeline.ParseModelLatency(latency); err != nil {
			return nil, fmt.Errorf("sqlite limits: model figures of %s: %w", f.Model, err)
		}
		f.Minute, f.Seen = time.Unix(minute, 0).UTC(), time.UnixMilli(seenMs).UTC()
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite limits: read model figures: %w", err)
	}
	return out, nil
}

// jsonStrings encodes names as a JSON array for json_each.
func jsonStrings(names []string) (string, error) {
	b, err := json.Marshal(names)
	if err != nil {
		return "", fmt.Errorf("sqlite limits: encode model names: %w", err)
	}
	return string(b), nil
}
