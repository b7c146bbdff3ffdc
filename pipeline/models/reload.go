package models

import (
	"context"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// DefaultReloadInterval is how often WatchFile checks the file when WatchConfig.Interval is 0.
const DefaultReloadInterval = 5 * time.Second

// WatchConfig says which file to watch and what to do when it changes.
type WatchConfig struct {
	// Path of the file. Required.
	Path string
	// Interval between checks of the file's modification time and size. Default 5s.
	Interval time.Duration
	// Apply loads, validates and applies the file. It must change nothing when it returns an
	// error, so that the last good configuration stays in force.
	Apply  func() error
	Logger zerolog.Logger
}

// WatchFile starts polling cfg.Path and calls cfg.Apply after each change, until the returned
// stop is called (stop waits for the poller to end). The file as it is when WatchFile is
// called counts as applied. A rejected change is logged and counted in
// infleet_config_reloads_total{result="rejected"}; it is not retried until the file changes
// again. Metrics go to f's collectors (f may be nil).
func WatchFile(f *Fleet, cfg WatchConfig) (stop func()) {
	interval := cmpPos(cfg.Interval, DefaultReloadInterval)
	last, _ := stamp(cfg.Path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now, err := stamp(cfg.Path)
			if err != nil || now == last {
				continue
			}
			last = now
			log := cfg.Logger.With().Str("path", cfg.Path).Logger()
			if err := cfg.Apply(); err != nil {
				log.Error().Err(err).Msg("config change rejected; the last good models, routing, prompts and budgets stay in force (fix the file and save it again)")
				f.recordReload(false)
				continue
			}
			log.Info().Msg("config change applied to models, routing, prompts and budgets")
			f.recordReload(true)
		}
	}()
	return func() { cancel(); <-done }
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

func (f *Fleet) recordReload(ok bool) {
	if f == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "rejected"
	}
	f.metrics.reloads.WithLabelValues(result).Inc()
}
