package config

import (
	"cmp"
	"path/filepath"
	"time"
)

// Job store kinds (store.kind).
const (
	StoreSQLite   = "sqlite"
	StoreDynamoDB = "dynamodb"
	StorePostgres = "postgres"
)

// Defaults of the store section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultStoreKind         = StoreSQLite
	DefaultSQLiteFile        = "infleet.db" // under data_dir
	DefaultStoreRetention    = 30 * 24 * time.Hour
	DefaultRetentionInterval = time.Minute
)

// Store chooses and configures the job store.
type Store struct {
	// Kind is sqlite, dynamodb or postgres. Default sqlite.
	Kind string `yaml:"kind,omitempty"`
	// Retention is how long a finished job (COMPLETED, FAILED or CANCELLED) is kept after its
	// last update; then it is deleted with its result and idempotency key. On sqlite and
	// postgres a reaper in every serve and worker process deletes it; on dynamodb it is the
	// default of DynamoDB.Retention. nil (unset) means 720h; 0 keeps finished jobs forever.
	// Read it with RetentionPeriod.
	Retention *time.Duration `yaml:"retention,omitempty"`
	// RetentionInterval is how often each reaper looks for expired jobs. Default 1m.
	RetentionInterval time.Duration `yaml:"retention_interval,omitempty"`
	SQLite            SQLite        `yaml:"sqlite,omitempty"`
	DynamoDB          DynamoDB      `yaml:"dynamodb,omitempty"`
	Postgres          Postgres      `yaml:"postgres,omitempty"`
}

// RetentionPeriod returns how long finished jobs are kept: store.retention, DefaultStoreRetention
// when it is unset; 0 means forever.
func (s Store) RetentionPeriod() time.Duration {
	if s.Retention == nil {
		return DefaultStoreRetention
	}
	return *s.Retention
}

// SQLite configures the SQLite job store.
type SQLite struct {
	// Path of the database file. Default {data_dir}/infleet.db.
	Path string `yaml:"path,omitempty"`
}

// DynamoDB configures the DynamoDB job store.
type DynamoDB struct {
	// Table name. Required when store.kind is dynamodb.
	Table string `yaml:"table,omitempty"`
	// Retention is how long finished jobs are kept before DynamoDB's TTL removes them.
	// Default store.retention (an unset or 0 value takes it).
	Retention time.Duration `yaml:"retention,omitempty"`
	// Endpoint overrides INFLEET_AWS_ENDPOINT for this client. Default none.
	Endpoint string `yaml:"endpoint,omitempty"`
}

// Postgres configures the PostgreSQL job store.
type Postgres struct {
	// DSN is the connection string. Required when store.kind is postgres. A secret: never log it.
	DSN string `yaml:"dsn,omitempty"`
}

// applyDefaults fills the store section's unset settings; the SQLite file goes under dataDir.
func (s *Store) applyDefaults(dataDir string) {
	s.Kind = cmp.Or(s.Kind, DefaultStoreKind)
	s.SQLite.Path = cmp.Or(s.SQLite.Path, filepath.Join(dataDir, DefaultSQLiteFile))
	if s.Retention == nil {
		s.Retention = new(DefaultStoreRetention)
	}
	s.RetentionInterval = cmp.Or(s.RetentionInterval, DefaultRetentionInterval)
	s.DynamoDB.Retention = cmp.Or(s.DynamoDB.Retention, *s.Retention)
}

// checkStore checks the chosen job store's section, and that http.max_body_bytes leaves a job
// room in a DynamoDB item.
func (c *Config) checkStore(p *problems) {
	switch c.Store.Kind {
	case StoreDynamoDB:
		if c.Store.DynamoDB.Table == "" {
			p.add("store.dynamodb.table", "is required when store.kind is dynamodb (e.g. infleet-jobs)")
		}
		if c.HTTP.MaxBodyBytes > MaxDynamoDBBodyBytes {
			p.add("http.max_body_bytes", "is %d, but a DynamoDB item (which holds the job) is at most 400 KB: set it to %d or less and send larger inputs as input.s3_uri",
				c.HTTP.MaxBodyBytes, MaxDynamoDBBodyBytes)
		}
	case StorePostgres:
		if c.Store.Postgres.DSN == "" {
			p.add("store.postgres.dsn", "is required when store.kind is postgres (postgres://user:pass@host:5432/db)")
		}
	}
}
