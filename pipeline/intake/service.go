package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/telemetry"
)

// defaultIntakeTimeout bounds each of a Submit's two steps: the key lookup and publish, then the
// record write after it.
const defaultIntakeTimeout = 10 * time.Second

// Config wires a Service. Store, Results, Publisher and Topics are required.
type Config struct {
	Store     pipeline.JobStore
	Results   pipeline.BlobStore
	Publisher message.Publisher
	Topics    pipeline.Topics
	// Hub announces job changes within this process; nil makes Watch poll the store.
	Hub *pipeline.Hub
	// Notifier receives job.cancelled events; nil sends none.
	Notifier pipeline.Notifier
	// Outbox, when set, makes job.cancelled go through the job store's outbox instead: the
	// cancel keeps its event in the same write (Transition.EventID) and Outbox is woken; a
	// dispatcher in a worker process delivers it. Set it only when Store is a pipeline.Outbox.
	Outbox pipeline.OutboxWaker
	// Ready lists named dependencies checked by Ready, in order.
	Ready []NamedChecker
	// ResultURLs, when set, makes ResultURL hand out links to results (presigned URLs)
	// instead of the API streaming them. nil streams.
	ResultURLs pipeline.BlobURLSigner
	// PollInterval is how often Watch re-reads the job (default 250ms; with a Hub, a safety net).
	PollInterval time.Duration
	// IntakeTimeout bounds each of a Submit's two steps (the key lookup and publish, then the
	// record write), which run to their end whatever happens to the caller's context (default
	// 10s; so one Submit takes at most twice it).
	IntakeTimeout time.Duration
	Metrics       *telemetry.Metrics
	Logger        zerolog.Logger
}

// NamedChecker is a dependency Ready checks, with the name its failure is reported under.
type NamedChecker struct {
	Name    string
	Checker pipeline.Checker
}

// Service is the intake and query side of the pipeline: it records and queues jobs and answers
// questions about them. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("service: no job store configured (set store.kind)"))
	}
	if cfg.Results == nil {
		errs = append(errs, errors.New("service: no result store configured (set results.kind)"))
	}
	if cfg.Publisher == nil {
		errs = append(errs, errors.New("service: no queue publisher configured (set transport.kind)"))
	}
	if err := cfg.Topics.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.PollInterval = cmpDuration(cfg.PollInterval, defaultPollInterval)
	cfg.IntakeTimeout = cmpDuration(cfg.IntakeTimeout, defaultIntakeTimeout)
	return &Service{cfg: cfg}, nil
}

// Ready checks every configured dependency and returns the first failure, naming it.
func (s *Service) Ready(ctx context.Context) error {
	for _, c := range s.cfg.Ready {
		if err := c.Checker.Check(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}

// cmpDuration is d, or def when d is not positive.
func cmpDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
