package models

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
)

// DefaultUsageFlush is how often a Fleet writes the usage it gathered to its UsageStore.
const DefaultUsageFlush = time.Second

// usageRecorder sums answered calls per day, tenant, model and task in memory and adds the
// sums to a pipeline.UsageStore every interval, so that a call costs a map update, not a
// store round trip. Sums a write could not store are kept for the next one. Safe for
// concurrent use.
type usageRecorder struct {
	store pipeline.UsageStore
	log   *zerolog.Logger

	mu   sync.Mutex
	rows map[pipeline.UsageKey]pipeline.UsageRow

	flushMu  sync.Mutex // one flush at a time, so sums put back keep their order
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newUsageRecorder(store pipeline.UsageStore, every time.Duration, log *zerolog.Logger) *usageRecorder {
	u := &usageRecorder{store: store, log: log, rows: map[pipeline.UsageKey]pipeline.UsageRow{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go u.run(cmpPos(every, DefaultUsageFlush))
	return u
}

// add counts one row.
func (u *usageRecorder) add(r pipeline.UsageRow) {
	k := r.Key()
	u.mu.Lock()
	sum := u.rows[k]
	if sum.Day == "" {
		sum = pipeline.UsageRow{Day: r.Day, Tenant: r.Tenant, Model: r.Model, Task: r.Task}
	}
	sum.Add(r)
	u.rows[k] = sum
	u.mu.Unlock()
}

func (u *usageRecorder) run(every time.Duration) {
	defer close(u.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), spendWriteBound)
			if err := u.flush(ctx); err != nil {
				u.log.Warn().Err(err).Msg("could not write model usage to the store; it is kept and written with the next flush")
			}
			cancel()
		}
	}
}

// flush adds the sums gathered so far to the store; on error they are kept.
func (u *usageRecorder) flush(ctx context.Context) error {
	u.flushMu.Lock()
	defer u.flushMu.Unlock()
	u.mu.Lock()
	if len(u.rows) == 0 {
		u.mu.Unlock()
		return nil
	}
	taken := u.rows
	u.rows = map[pipeline.UsageKey]pipeline.UsageRow{}
	u.mu.Unlock()
	rows := make([]pipeline.UsageRow, 0, len(taken))
	for _, r := range taken {
		rows = append(rows, r)
	}
	err := u.store.AddUsage(ctx, rows)
	if err != nil {
		// A failed batch may have stored some rows: putting them all back may count those
		// twice, which is the lesser evil for figures that must not lose spend.
		for _, r := range rows {
			u.add(r)
		}
	}
	return err
}

// close stops the timer and writes what is left, within ctx.
func (u *usageRecorder) close(ctx context.Context) error {
	u.stopOnce.Do(func() { close(u.stop) })
	<-u.done
	return u.flush(ctx)
}
