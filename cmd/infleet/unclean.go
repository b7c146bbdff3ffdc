package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/config"
)

// runningMarker is the file a worker process on the embedded transport keeps in its data dir
// while it runs and removes when it stops cleanly: found at start, it says the last worker
// died (SIGKILL, out of memory, a lost host).
const runningMarker = "workers.running"

// eagerAfterUncleanStop is how long a worker that starts after an unclean stop claims every job
// before it runs (see claimEagerUntil).
const eagerAfterUncleanStop = time.Minute

// claimEagerUntil returns until when a worker process on cfg claims every job before it runs,
// and what to call once it stopped cleanly.
//
// A deferred claim (workers.claim_after) counts on the transport to tell a first delivery from
// a redelivery. JetStream's consumer writes its delivery counts to disk at most ten times a
// second, so a process that dies within that tenth of a second of a delivery — a job that
// crashes its process — gets the message back as a first delivery, and a deferred claim would
// never count that job's attempts. Such a message comes back among the first a restarted
// consumer delivers: claiming every job for a minute after an unclean stop counts it, so a job
// that kills its worker every time still fails after workers.max_attempts. SQS counts receives
// itself and Kafka's claims are never deferred, so only the embedded transport needs this.
func claimEagerUntil(cfg config.Config, log zerolog.Logger) (time.Time, func()) {
	if cfg.Transport.Kind != config.TransportEmbedded {
		return time.Time{}, func() {}
	}
	path := filepath.Join(cfg.DataDir, runningMarker)
	var until time.Time
	if _, err := os.Stat(path); err == nil {
		until = time.Now().Add(eagerAfterUncleanStop)
		log.Warn().Dur("for", eagerAfterUncleanStop).
			Msg("the last worker on this data dir did not stop cleanly: every job is claimed before it runs for a while")
	}
	if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		// Without the marker the next start could not tell: never defer a claim.
		log.Warn().Err(err).Str("path", path).Msg("cannot mark the data dir as in use by a worker; every job is claimed before it runs")
		return time.Now().Add(100 * 365 * 24 * time.Hour), func() {}
	}
	return until, func() {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			log.Warn().Err(err).Str("path", path).Msg("remove the worker's running marker")
		}
	}
}
