package ops

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// OperatorConfig wires an Operator. Store, Box, Publisher, Topics and Hub are required; the
// others are optional, as each says.
type OperatorConfig struct {
	Store pipeline.JobStore
	// Results holds the archive that replays read; nil refuses replays.
	Results pipeline.BlobStore
	Box     pipeline.DeadLetterBox
	// Depth reports the queues' depths for Stats; nil leaves them out.
	Depth     pipeline.DepthReporter
	Publisher message.Publisher
	Topics    pipeline.Topics
	Hub       *pipeline.Hub
	// Replays keeps the replays where every process of the fleet sees them; nil keeps them
	// in this process only (lost with it, and not continued by another).
	Replays pipeline.ReplayStore
	// Process names this process in the replays it runs; set it to a name unique in the
	// fleet when Replays is shared (default "this-process").
	Process string
	// ReplayLease is how long a replay stays with this process without word from it
	// (default DefaultReplayLease).
	ReplayLease time.Duration
	// ReplayRetention is how long a replay's record is kept after it was last written and
	// leased (ContinueReplays deletes older ones every hour); 0 keeps them. Set it to the
	// archive's retention: a replay of jobs the archive no longer holds has nothing to say.
	ReplayRetention time.Duration
	Metrics         *telemetry.Metrics
	Logger          zerolog.Logger
}

// Operator serves operators: it lists dead letters and sends them back to their queues, and
// runs replays of the archive. Safe for concurrent use.
type Operator struct {
	cfg         OperatorConfig
	replayStore pipeline.ReplayStore
	// running holds the names of the replays this process is publishing; runs counts their
	// goroutines, which end with ctx.
	running sync.Map
	runs    sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
	stats   statsCache
}

// ErrNoDeadLetterBox says the transport cannot list its dead letters.
var ErrNoDeadLetterBox = errors.New("this transport cannot list its dead letters")

// NewOperator checks cfg and returns an Operator.
func NewOperator(cfg OperatorConfig) (*Operator, error) {
	if cfg.Store == nil || cfg.Publisher == nil {
		return nil, errors.New("operator: a job store and a publisher are required")
	}
	if cfg.Box == nil {
		return nil, ErrNoDeadLetterBox
	}
	cfg.ReplayLease = cmp.Or(cfg.ReplayLease, DefaultReplayLease)
	cfg.Process = cmp.Or(cfg.Process, "this-process")
	o := &Operator{cfg: cfg, replayStore: cfg.Replays}
	if o.replayStore == nil {
		o.replayStore = &memReplays{}
	}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o, nil
}

// closeWait bounds how long Close waits for the replays to hand themselves back.
const closeWait = 5 * time.Second

// Close stops the replays this process runs and hands each back: its progress is saved with
// its lease ended, so that another process continues it at once. Replays started after Close
// are refused. Safe to call more than once.
func (o *Operator) Close() error {
	o.cancel()
	done := make(chan struct{})
	go func() { o.runs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		o.cfg.Logger.Warn().Dur("wait", closeWait).Msg("replays not handed back in time; their leases run out instead")
	}
	return nil
}
