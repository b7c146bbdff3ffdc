package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
)

func TestClaimsAreEagerAfterAnUncleanStop(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	marker := filepath.Join(cfg.DataDir, runningMarker)

	until, stopped := claimEagerUntil(cfg, zerolog.Nop())
	if !until.IsZero() {
		t.Fatalf("first start: eager until %v, want deferred claims at once", until)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("no running marker while the worker runs: %v", err)
	}
	stopped()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker left after a clean stop: %v", err)
	}

	until, _ = claimEagerUntil(cfg, zerolog.Nop()) // then killed: never told it stopped
	if !until.IsZero() {
		t.Fatalf("start after a clean stop: eager until %v", until)
	}
	until, stopped = claimEagerUntil(cfg, zerolog.Nop())
	if d := time.Until(until); d < eagerAfterUncleanStop-time.Second || d > eagerAfterUncleanStop {
		t.Fatalf("start after an unclean stop: eager for %v, want %v", d, eagerAfterUncleanStop)
	}
	stopped()

	cfg.Transport.Kind = config.TransportKafka
	if until, _ := claimEagerUntil(cfg, zerolog.Nop()); !until.IsZero() {
		t.Fatalf("kafka: eager until %v (its claims are never deferred)", until)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("kafka: a marker was written: %v", err)
	}
}
