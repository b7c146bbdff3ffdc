package pipeline

import (
	"context"
	"time"
)

// Pace is a model's call rate shared by every process of a fleet: the one row a PaceStore
// keeps per model. What the numbers mean is the pacer's business (pipeline/models); a store
// keeps them as they are given. The zero value is a model nobody paced.
type Pace struct {
	// Rate is the fleet's calls per second to the model; 0 when unpaced.
	Rate float64
	// Base is the rate the last decrease set, which sizes the additive increases.
	Base float64
	// CutAt is when the rate was last decreased; HoldUntil is when decreases may come again
	// after one was undone (zero: none held).
	CutAt, HoldUntil time.Time
	// Second is a Unix second; Answers counts the fleet's answered calls reported during it
	// and PrevAnswers those of the second before it, so that any process can read the rate
	// at which the fleet is answered.
	Second, Answers, PrevAnswers int64
	// Version counts the writes of the row: 0 when it does not exist. The store sets it.
	Version int64
}

// PaceStore keeps one Pace per model where every process of a fleet sees it, so that the
// processes pace a throttled model as one limiter: the fleet's rate is cut once per back-off
// window, whichever process saw the throttling, and raised by whichever process's write
// wins. It is an optional ability of a fleet's shared store (a LimitStore), found by type
// assertion. Implementations are safe for concurrent use, also by several processes sharing
// the store; each call is atomic. Times round to the microsecond.
type PaceStore interface {
	// Pace returns the model's pace; the zero Pace (Version 0) when there is none.
	Pace(ctx context.Context, model string) (Pace, error)
	// SwapPace writes next as the model's pace when the stored row's version is still
	// next.Version (0: no row yet), and stores it with the version incremented by one;
	// ok is false, and nothing is written, when another write came first. A compare-and-set:
	// read with Pace, change, swap, and read again when it fails.
	SwapPace(ctx context.Context, model string, next Pace) (ok bool, err error)
}
