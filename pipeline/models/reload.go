package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// DefaultReloadInterval is how often WatchFile checks the file when WatchConfig.Interval is 0.
const DefaultReloadInterval = 5 * time.Second

// WatchConfig says which file or object to watch and what to do when it changes.
type WatchConfig struct {
	// Path of the file, or the name of the object in logs. Required.
	Path string
	// Version, when set, replaces the file check: it returns a string that changes whenever
	// the watched object does (an S3 ETag). An error skips that check.
	Version func(ctx context.Context) (string, error)
	// Interval between checks of the file's modification time and size. Default 5s.
	Interval time.Duration
	// Apply loads, validates and applies the file. It must change nothing when it returns an
	// error, so that the last good configuration stays in force.
	Apply  func() error
	Logger zerolog.Logger
}

// WatchFile starts polling cfg.Path (or cfg.Version) and calls cfg.Apply after each change, until
// the returned stop is called (stop waits for the poller to end). A change applies once two
// checks in a row see the same new version, so a file caught half-written (truncated, then
// written) is not applied; an empty file is never a version (a writer starved between the
// truncation and the write can leave it empty for two checks), so emptying the file changes
// nothing. The file as it is when WatchFile is called counts as applied. A rejected change is
// logged and counted in
// infleet_config_reloads_total{result="rejected"}; it is not retried until the file changes
// again. Metrics go to f's collectors (f may be nil).
func WatchFile(f *Fleet, cfg WatchConfig) (stop func()) {
	interval := cmpPos(cfg.Interval, DefaultReloadInterval)
	ctx, cancel := context.WithCancel(context.Background())
	version := cfg.Version
	if version == nil {
		version = func(context.Context) (string, error) { return stamp(cfg.Path) }
	}
	last, _ := version(ctx)
	pending := last // a new version seen once, applied when the next check sees it again
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
			now, err := version(ctx)
			if err != nil || now == last {
				pending = last
				continue
			}
			if now != pending {
				pending = now
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

// stamp identifies a version of a file by its modification time and size; an empty file is
// errEmptyFile, no version.
func stamp(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() == 0 {
		return "", errEmptyFile
	}
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size()), nil
}

// errEmptyFile says a watched file is empty: being written, or emptied, and not applied.
var errEmptyFile = errors.New("the file is empty")

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
