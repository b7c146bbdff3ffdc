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
