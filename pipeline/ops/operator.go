package ops

import (
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// OperatorConfig wires an Operator. All fields but Logger and Metrics are required.
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
	Metrics   *telemetry.Metrics
	Logger    zerolog.Logger
}

// Operator serves operators: it lists dead letters and sends them back to their queues. Safe
// for concurrent use.
type Operator struct {
	cfg     OperatorConfig
	replays replays
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
	return &Operator{cfg: cfg}, nil
}
