package eventbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awseb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// Replay states as DescribeReplay reports them.
const (
	ReplayStarting   = "STARTING"
	ReplayRunning    = "RUNNING"
	ReplayCancelling = "CANCELLING"
	ReplayCompleted  = "COMPLETED"
	ReplayCancelled  = "CANCELLED"
	ReplayFailed     = "FAILED"
)

// ReplaySpec says what to replay. Name, Archive, From and To are required.
type ReplaySpec struct {
	// Name of the replay: letters, digits, '.', '-' and '_', up to 64, unique in the region.
	// EventBridge puts it on every replayed event as replay-name.
	Name string
	// Archive is the archive's name or ARN.
	Archive string
	// Bus is the destination bus, a name or an ARN; it must be the bus the archive records.
	// Default: the archive's own bus.
	Bus string
	// From and To bound the time of the archived events replayed.
	From, To time.Time
}

// ReplayStatus is a replay as DescribeReplay last reported it.
type ReplayStatus struct {
	Name, ARN string
	// State is one of the Replay... constants; Reason says why when it failed.
	State, Reason string
	// From and To are the replayed time range; LastReplayed is the time of the last event
	// replayed so far (zero before the first).
	From, To, LastReplayed time.Time
	// StartedAt and EndedAt are when the replay ran (EndedAt zero while it runs).
	StartedAt, EndedAt time.Time
}

// Fraction is how far through its time range the replay is, from 0 to 1.
func (s ReplayStatus) Fraction() float64 {
	if s.State == ReplayCompleted {
		return 1
	}
	span := s.To.Sub(s.From)
	if s.LastReplayed.IsZero() || span <= 0 {
		return 0
	}
	return min(1, max(0, float64(s.LastReplayed.Sub(s.From))/float64(span)))
}

// Done reports whether the replay has ended, well or not.
func (s ReplayStatus) Done() bool {
	return s.State == ReplayCompleted || s.State == ReplayFailed || s.State == ReplayCancelled
}

// Replayer starts replays of EventBridge archives and follows them. Safe for concurrent use.
type Replayer struct {
	client *awseb.Client
}

// NewReplayer returns a Replayer using client.
func NewReplayer(client *awseb.Client) *Replayer { return &Replayer{client: client} }

// Start resolves the archive (DescribeArchive) and the destination bus (DescribeEventBus) to
// their ARNs and starts the replay. It returns once EventBridge has accepted it; follow it with
// Wait. Starting a replay whose name is taken is an error, so Start is not idempotent.
func (r *Replayer) Start(ctx context.Context, spec ReplaySpec) error {
	var errs []error
	if spec.Name == "" {
		errs = append(errs, errors.New("replay: no name"))
	}
	if spec.Archive == "" {
		errs = append(errs, errors.New("replay: no archive: give the archive's name or ARN"))
	}
	if spec.From.IsZero() || spec.To.IsZero() || !spec.From.Before(spec.To) {
		errs = append(errs, fmt.Errorf("replay: the time range %s to %s is empty: give a from time before the to time",
			spec.From.Format(time.RFC3339), spec.To.Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	archiveName := spec.Archive
	if strings.HasPrefix(archiveName, "arn:") {
		archiveName = archiveName[strings.LastIndex(archiveName, "/")+1:]
	}
	arch, err := r.client.DescribeArchive(ctx, &awseb.DescribeArchiveInput{ArchiveName: aws.String(archiveName)})
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("EventBridge archive %q does not exist: check the name (aws events list-archives) or create an archive on the bus", spec.Archive)
		}
		return fmt.Errorf("describe EventBridge archive %q: %w", spec.Archive, err)
	}
	busARN := aws.ToString(arch.EventSourceArn)
	if spec.Bus != "" {
		busARN = spec.Bus
		if !strings.HasPrefix(busARN, "arn:") {
			bus, err := r.client.DescribeEventBus(ctx, &awseb.DescribeEventBusInput{Name: aws.String(spec.Bus)})
			if err != nil {
				if isNotFound(err) {
					return fmt.Errorf("EventBridge bus %q does not exist: check notify.eventbridge.bus", spec.Bus)
				}
				return fmt.Errorf("describe EventBridge bus %q: %w", spec.Bus, err)
			}
			busARN = aws.ToString(bus.Arn)
		}
		if src := aws.ToString(arch.EventSourceArn); src != "" && src != busARN {
			return fmt.Errorf("EventBridge archive %q records bus %s, not %s: a replay goes back to the archive's own bus, so replay an archive of %q",
				spec.Archive, src, busARN, spec.Bus)
		}
	}
	_, err = r.client.StartReplay(ctx, &awseb.StartReplayInput{
		ReplayName:     aws.String(spec.Name),
		EventSourceArn: arch.ArchiveArn,
		Destination:    &types.ReplayDestination{Arn: aws.String(busARN)},
		EventStartTime: aws.Time(spec.From),
		EventEndTime:   aws.Time(spec.To),
		Description:    aws.String("started by infleet replay"),
	})
	if err != nil {
		var exists *types.ResourceAlreadyExistsException
		if errors.As(err, &exists) {
			return fmt.Errorf("an EventBridge replay named %q exists already: choose another name", spec.Name)
		}
		return fmt.Errorf("start EventBridge replay %q of archive %q: %w", spec.Name, spec.Archive, err)
	}
	return nil
}

// Status returns the replay's state now (DescribeReplay).
func (r *Replayer) Status(ctx context.Context, name string) (ReplayStatus, error) {
	out, err := r.client.DescribeReplay(ctx, &awseb.DescribeReplayInput{ReplayName: aws.String(name)})
	if err != nil {
		if isNotFound(err) {
			return ReplayStatus{}, fmt.Errorf("EventBridge replay %q does not exist", name)
		}
		return ReplayStatus{}, fmt.Errorf("describe EventBridge replay %q: %w", name, err)
	}
	return ReplayStatus{
		Name: aws.ToString(out.ReplayName), ARN: aws.ToString(out.ReplayArn),
		State: string(out.State), Reason: aws.ToString(out.StateReason),
		From: aws.ToTime(out.EventStartTime), To: aws.ToTime(out.EventEndTime), LastReplayed: aws.ToTime(out.EventLastReplayedTime),
		StartedAt: aws.ToTime(out.ReplayStartTime), EndedAt: aws.ToTime(out.ReplayEndTime),
	}, nil
}

// Wait follows the replay every interval (default 5s) until it ends, calling progress (when
// not nil) with each status seen. It returns the final status, with an error carrying
// EventBridge's reason when the replay FAILED or was CANCELLED, or ctx's error when ctx ends
// first (the replay goes on).
func (r *Replayer) Wait(ctx context.Context, name string, every time.Duration, progress func(ReplayStatus)) (ReplayStatus, error) {
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := r.Status(ctx, name)
		if err != nil {
			return st, err
		}
		if progress != nil {
			progress(st)
		}
		switch st.State {
		case ReplayCompleted:
			return st, nil
		case ReplayFailed, ReplayCancelled:
			return st, fmt.Errorf("EventBridge replay %q %s: %s", name, strings.ToLower(st.State), cmpReason(st.Reason))
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-t.C:
		}
	}
}

func cmpReason(reason string) string {
	if reason == "" {
		return "EventBridge gave no reason"
	}
	return reason
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}
