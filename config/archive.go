package config

import (
	"cmp"
	"time"
)

// Archive write settings (archive.write): when a job's message is in the archive.
const (
	// ArchiveWriteBeforeAck: a worker acknowledges a job's message only once the archive batch
	// holding it has been written (and fsynced, at durability fsync), so a killed worker never
	// loses a job from the archive.
	ArchiveWriteBeforeAck = "before_ack"
	// ArchiveWriteBackground: the archive is written in the background, about every second,
	// and a worker killed before a write loses that second of archive (the jobs themselves run).
	ArchiveWriteBackground = "background"
)

// Defaults of the archive section, applied by ApplyDefaults (and so by Load) to every setting left
// unset.
const (
	DefaultArchiveRetention   = 7 * 24 * time.Hour
	DefaultArchiveWrite       = ArchiveWriteBeforeAck
	DefaultArchiveBatchWindow = 2 * time.Millisecond
	DefaultArchiveBatchMax    = 500
	DefaultArchiveReplayLease = 15 * time.Second
	// DefaultArchiveHeldAcksLocal is archive.held_acks with local result files.
	DefaultArchiveHeldAcksLocal = 64
)

// MinArchiveReplayLease is the shortest archive.replay_lease: a replay writes its progress
// every 500ms, and a lease must outlast a few writes held up by a slow store.
const MinArchiveReplayLease = 2 * time.Second

// Archive keeps every accepted job message for replay, in the result store.
type Archive struct {
	// Retention is how long archived job messages are kept, and so how far back `infleet
	// replay` reaches. Default 168h.
	Retention time.Duration `yaml:"retention,omitempty"`
	// Write is when a job's message is in the archive: before_ack (default; the worker acks a
	// message only once its archive write returned) or background (written about every second,
	// not waited for).
	Write string `yaml:"write,omitempty"`
	// BatchWindow is how long an archive batch waits for more messages after its first before
	// it is written, at write before_ack (group commit). Default 2ms.
	BatchWindow time.Duration `yaml:"batch_window,omitempty"`
	// BatchMax writes a batch as soon as it holds this many messages. Default 500. With S3
	// it is also the default of HeldAcks.
	BatchMax int `yaml:"batch_max,omitempty"`
	// HeldAcks is, at write before_ack, how many messages whose outcome is recorded a process
	// holds unacknowledged beyond Workers.InFlight while they wait for their archive write
	// (their workers already on the next message). Default DefaultArchiveHeldAcksLocal with
	// local result files, where a write takes a millisecond or two and a few dozen wait at
	// once; BatchMax with S3, whose PUTs take tens of milliseconds. A larger window than the
	// writes need only lets a process claim more jobs at once than it can run, which costs
	// throughput (see Config.HeldAcks).
	HeldAcks int `yaml:"held_acks,omitempty"`
	// ReplayLease is how long a replay stays with the process running it without word from
	// it (it writes its progress to the job store every 500ms); after that any serve or
	// ingress process continues it from where it got. Default 15s, at least 2s.
	ReplayLease time.Duration `yaml:"replay_lease,omitempty"`
}

// applyDefaults fills the archive section's unset settings.
func (a *Archive) applyDefaults() {
	a.Retention = cmp.Or(a.Retention, DefaultArchiveRetention)
	a.Write = cmp.Or(a.Write, DefaultArchiveWrite)
	a.BatchWindow = cmp.Or(a.BatchWindow, DefaultArchiveBatchWindow)
	a.BatchMax = cmp.Or(a.BatchMax, DefaultArchiveBatchMax)
	a.ReplayLease = cmp.Or(a.ReplayLease, DefaultArchiveReplayLease)
}

// checkArchive checks the archive section's settings that the schema cannot.
func (c *Config) checkArchive(p *problems) {
	if c.Archive.ReplayLease < MinArchiveReplayLease {
		p.add("archive.replay_lease", "is %s; make it at least %s (a replay renews its lease every 500ms)", c.Archive.ReplayLease, MinArchiveReplayLease)
	}
}

// BeforeAck reports whether a job's message must be in the archive before it is acknowledged.
func (a Archive) BeforeAck() bool { return a.Write != ArchiveWriteBackground }

// HeldAcks is how many messages a process holds beyond Workers.InFlight whose jobs are
// recorded and whose acknowledgements wait for their archive write: archive.held_acks at
// before_ack (default DefaultArchiveHeldAcksLocal, at most archive.batch_max, with local
// result files; archive.batch_max with S3), none in the background. The transports are sized
// by it (Unacked), and so is how many jobs a process claims ahead: a 0 ms burn-down on local
// files ran at 0.93 of the background's rate with 500 and 0.98 with 64.
func (c Config) HeldAcks() int {
	switch {
	case !c.Archive.BeforeAck():
		return 0
	case c.Archive.HeldAcks > 0:
		return c.Archive.HeldAcks
	case c.Results.Kind == ResultsS3:
		return c.Archive.BatchMax
	}
	return min(DefaultArchiveHeldAcksLocal, c.Archive.BatchMax)
}

// Unacked is how many messages a process holds unacknowledged at most: Workers.InFlight plus
// HeldAcks. The transports are sized by it.
func (c Config) Unacked() int { return c.Workers.InFlight() + c.HeldAcks() }
