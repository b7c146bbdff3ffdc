package pipeline

import (
	"context"
	"time"
)

// ReplaysMaxList is the most replays ReplayStore.Replays returns at once.
const ReplaysMaxList = 1000

// Replay is the record of one replay of archived jobs, as a ReplayStore keeps it: who runs
// it, how far it got and where to continue from. What Filters and Cursor hold is the
// operator's business (pipeline/ops); a store keeps them as they are given.
type Replay struct {
	// Name is the replay_name put on the replayed jobs, and the record's key.
	Name string
	// Tenant is the tenant the replay was started for ("" for operators: every tenant).
	Tenant string
	// Filters is the replay's request (time range, task, status, job ids, rate, priority) as
	// JSON, for continuing it and for telling a repeated start from a different one.
	Filters string
	// Matched counts the archived jobs selected; Published those re-published so far.
	Matched, Published int
	// Cursor is the position in the selection up to which every job was re-published ("":
	// none yet); a process taking the replay over continues after it.
	Cursor string
	Done   bool
	// Error says why the replay stopped or skipped a job ("" when it did not).
	Error  string
	DryRun bool
	// StartedAt is when the replay started; UpdatedAt when its record was last written.
	StartedAt, UpdatedAt time.Time
	// Process names the process running the replay; it holds the replay's lease until
	// LeaseUntil and renews it with every write.
	Process    string
	LeaseUntil time.Time
}

// Interrupted reports whether r is unfinished and its lease ran out at now: the process
// running it died or lost its store, and no other has taken it over yet.
func (r Replay) Interrupted(now time.Time) bool { return !r.Done && r.LeaseUntil.Before(now) }

// ReplayStore keeps the replays of a fleet where every process sees them, so that a replay's
// progress reads the same from any process and an unfinished replay whose process died is
// continued by another. It is an optional ability of a fleet's shared store (a LimitStore),
// found by type assertion. Implementations are safe for concurrent use, also by several
// processes sharing the store; each call is atomic. Times round to the microsecond.
type ReplayStore interface {
	// StartReplay records r as a new replay unless a replay of the same name is unfinished:
	// then it writes nothing and returns that replay with started false. A finished replay of
	// the same name is replaced. Only one of several concurrent starts of a name wins.
	StartReplay(ctx context.Context, r Replay) (current Replay, started bool, err error)
	// SaveReplay writes r's progress (Matched, Published, Cursor, Done, Error, UpdatedAt,
	// LeaseUntil) when r.Process still holds the replay; ok is false, and nothing is written,
	// when another process took it over or it does not exist.
	SaveReplay(ctx context.Context, r Replay) (ok bool, err error)
	// ClaimReplay gives process the replay named name until until, when it is unfinished and
	// its lease expired before now; it returns the record as claimed. ok is false, and
	// nothing is written, when the replay is finished, still leased, or claimed by another
	// first. A missing replay is ErrNotFound.
	ClaimReplay(ctx context.Context, name, process string, now, until time.Time) (r Replay, ok bool, err error)
	// GetReplay returns the replay named name, or ErrNotFound.
	GetReplay(ctx context.Context, name string) (Replay, error)
	// Replays returns up to limit replays (at most ReplaysMaxList), the latest started first
	// (ties by name); of tenant only, unless tenant is "".
	Replays(ctx context.Context, tenant string, limit int) ([]Replay, error)
	// ForgetReplays deletes the replays last written before before whose lease ran out
	// before it too (finished ones, and unfinished ones no process continued), and returns
	// how many it deleted. A replay written or leased since is kept, however old its start.
	ForgetReplays(ctx context.Context, before time.Time) (int, error)
}
