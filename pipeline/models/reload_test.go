package models_test

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline/models"
)

// TestWatchFileSkipsAnEmptyFile: a watched file left empty (truncated by a writer that has not
// written yet, or emptied) is not applied however long it stays so; the content written after
// it is applied once.
func TestWatchFileSkipsAnEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "infleet.yaml")
	if err := os.WriteFile(path, []byte("routes: {default: fast}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var applied atomic.Int32
	var sizes []int64
	stop := models.WatchFile(nil, models.WatchConfig{
		Path: path, Interval: 2 * time.Millisecond, Logger: zerolog.Nop(),
		Apply: func() error {
			fi, err := os.Stat(path)
			if err == nil {
				sizes = append(sizes, fi.Size())
			}
			applied.Add(1)
			return nil
		},
	})
	defer stop()
	stamp := time.Now()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	stamp = stamp.Add(time.Second)
	if err := os.Chtimes(path, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // 50 checks
	if n := applied.Load(); n != 0 {
		t.Fatalf("an empty file was applied %d times", n)
	}
	if err := os.WriteFile(path, []byte("routes: {default: big}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stamp = stamp.Add(time.Second)
	if err := os.Chtimes(path, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for applied.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the content written after the empty file was not applied")
		}
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	for _, size := range sizes {
		if size == 0 {
			t.Errorf("applied while the file was empty (sizes seen at each apply: %v)", sizes)
		}
	}
}
