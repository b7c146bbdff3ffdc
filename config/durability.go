package config

// Durability settings (durability): what an accepted job survives.
const (
	// DurabilityProcess: a job answered 202 survives a crash of the process (even SIGKILL), not
	// necessarily a power loss or an operating-system crash. The embedded queue hands each
	// message to the operating system and SQLite commits with WAL synchronous=NORMAL.
	DurabilityProcess = "process"
	// DurabilityFsync: a job answered 202 survives a power loss too. The embedded queue fsyncs
	// every write and SQLite commits with synchronous=FULL, at a cost in throughput.
	DurabilityFsync = "fsync"
)

// DefaultDurability is the durability applied by ApplyDefaults (and so by Load) when the setting
// is left unset.
const DefaultDurability = DurabilityProcess

// Fsync reports whether c.Durability asks for every accepted job to be fsynced before its 202.
// It governs the embedded transport and the SQLite store only: PostgreSQL, DynamoDB, SQS and
// Kafka keep their own durability whatever the setting.
func (c Config) Fsync() bool { return c.Durability == DurabilityFsync }
