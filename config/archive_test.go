package config

import (
	"strings"
	"testing"
	"time"
)

func TestArchiveReplayLease(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, "archive: {replay_lease: 30s}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Archive.ReplayLease != 30*time.Second {
		t.Fatalf("replay_lease = %s, want 30s", c.Archive.ReplayLease)
	}
	_, err = Load(writeConfig(t, "archive: {replay_lease: 500ms}\n"), nil)
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Field != "archive.replay_lease" || !strings.Contains(got[0].Message, "at least 2s") {
		t.Fatalf("problems %v, want one about archive.replay_lease", got)
	}
}

// TestArchiveHeldAcks checks the held acks' window: 64 by default with local result files
// (at most batch_max), batch_max with S3, archive.held_acks when set, none in the background.
func TestArchiveHeldAcks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml string
		want int
	}{
		{"", DefaultArchiveHeldAcksLocal},
		{"archive: {batch_max: 10}\n", 10},
		{"archive: {held_acks: 300}\n", 300},
		{"results: {kind: s3, s3: {bucket: b}}\n", DefaultArchiveBatchMax},
		{"results: {kind: s3, s3: {bucket: b}}\narchive: {held_acks: 100}\n", 100},
		{"archive: {write: background, held_acks: 100}\n", 0},
	} {
		c, err := Load(writeConfig(t, tc.yaml), nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if got := c.HeldAcks(); got != tc.want {
			t.Errorf("%q: HeldAcks() = %d, want %d", tc.yaml, got, tc.want)
		}
		if got, want := c.Unacked(), c.Workers.InFlight()+tc.want; got != want {
			t.Errorf("%q: Unacked() = %d, want %d", tc.yaml, got, want)
		}
	}
}
