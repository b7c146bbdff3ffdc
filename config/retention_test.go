package config

import (
	"strings"
	"testing"
	"time"
)

func TestStoreRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		yaml          string
		env           []string
		want, wantDDB time.Duration
	}{
		{"unset is 30 days, for DynamoDB too", "", nil, 720 * time.Hour, 720 * time.Hour},
		{"set", "store: {retention: 48h}", nil, 48 * time.Hour, 48 * time.Hour},
		{"0s keeps forever", "store: {retention: 0s}", nil, 0, 0},
		{"quoted 0 keeps forever", `store: {retention: "0"}`, nil, 0, 0},
		{"environment 0 keeps forever", "", []string{"INFLEET_STORE_RETENTION=0"}, 0, 0},
		{"dynamodb's own wins", "store: {retention: 48h, dynamodb: {retention: 2h}}", nil, 48 * time.Hour, 2 * time.Hour},
		{"dynamodb's own wins over forever", "store: {retention: 0s, dynamodb: {retention: 2h}}", nil, 0, 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(writeConfig(t, tc.yaml), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Store.RetentionPeriod(); got != tc.want {
				t.Errorf("RetentionPeriod() = %s, want %s", got, tc.want)
			}
			if got := c.Store.DynamoDB.Retention; got != tc.wantDDB {
				t.Errorf("store.dynamodb.retention = %s, want %s", got, tc.wantDDB)
			}
			if c.Store.RetentionInterval != time.Minute {
				t.Errorf("store.retention_interval = %s, want the default 1m", c.Store.RetentionInterval)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate of the loaded config: %v", err)
			}
			again := c
			again.ApplyDefaults()
			if again.Store.RetentionPeriod() != tc.want {
				t.Errorf("ApplyDefaults changed the retention from %s to %s", tc.want, again.Store.RetentionPeriod())
			}
		})
	}
}

func TestStoreRetentionOfAConfigBuiltInCode(t *testing.T) {
	t.Parallel()
	if got := (Store{}).RetentionPeriod(); got != DefaultStoreRetention {
		t.Fatalf("RetentionPeriod of an unset Store = %s, want %s", got, DefaultStoreRetention)
	}
}

func TestStoreRetentionZeroMustBeADuration(t *testing.T) {
	t.Parallel()
	_, err := Load(writeConfig(t, "store: {retention: 0}"), nil)
	got := problemsOf(t, err)
	if len(got) != 1 || got[0].Field != "store.retention" || !strings.Contains(got[0].Message, "0s") {
		t.Fatalf("problems %v, want one on store.retention saying to write 0s", got)
	}
}
