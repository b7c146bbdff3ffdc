package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// DefaultCheckTimeout bounds Check when its context has no earlier deadline.
const DefaultCheckTimeout = 10 * time.Second

// handshakeTimeout bounds Check's TLS handshake with one broker: a broker answers one in
// milliseconds, a plaintext listener never.
const handshakeTimeout = 3 * time.Second

// Stages of a connection, as CheckError reports them.
const (
	// StageConnect is reaching the broker (TCP, or a first request answered).
	StageConnect = "connect"
	// StageTLS is the TLS handshake: the broker's certificate, or the client's refused.
	StageTLS = "tls"
	// StageSASL is the SASL exchange: the mechanism, the credentials or their signing.
	StageSASL = "sasl"
)

// CheckError is Check's failure: the broker last tried, the stage that failed there, and why.
type CheckError struct {
	Broker string
	Stage  string // StageConnect, StageTLS or StageSASL
	Err    error
}

// Error says where the connection failed and what to look at.
func (e *CheckError) Error() string {
	hint := ""
	switch e.Stage {
	case StageTLS:
		hint = " (check the CA file, the client certificate and the server name)"
	case StageSASL:
		hint = " (check the mechanism and the credentials)"
	default:
		if errors.Is(e.Err, io.EOF) || errors.Is(e.Err, syscall.ECONNRESET) || errors.Is(e.Err, context.DeadlineExceeded) {
			hint = " (the broker hung up or did not answer: does its listener need TLS or SASL?)"
		}
	}
	return fmt.Sprintf("kafka broker %s: %s failed: %v%s", e.Broker, e.Stage, e.Err, hint)
}

// Unwrap returns the cause.
func (e *CheckError) Unwrap() error { return e.Err }

// Check connects to the brokers with c's TLS and SASL and asks for the cluster's metadata,
// trying each broker in turn until one answers, within ctx and at most DefaultCheckTimeout.
// It returns nil once one broker has answered, else a *CheckError naming the stage that
// failed: the first TLS or SASL refusal, or the last broker's connect failure. It never waits past its bound: a wrong password or
// certificate is an error at once, a broker that does not answer one at the deadline.
func (c Cluster) Check(ctx context.Context) error {
	if len(c.Brokers) == 0 {
		return &CheckError{Stage: StageConnect, Err: errors.New("no brokers (give at least one host:port)")}
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultCheckTimeout)
	defer cancel()
	var last *CheckError
	for _, broker := range c.Brokers {
		err := c.checkBroker(ctx, broker)
		if err == nil {
			return nil
		}
		last = err
		if err.Stage != StageConnect || ctx.Err() != nil {
			break // TLS and SASL settings hold for every broker: the next would refuse them too
		}
	}
	return last
}

// checkBroker connects to broker and reads the cluster's brokers through it. With TLS, a
// handshake of its own comes first, bounded by handshakeTimeout, so that a certificate
// problem or a plaintext listener (which waits for the rest of what it takes for a huge
// request) is told apart from what follows.
func (c Cluster) checkBroker(ctx context.Context, broker string) *CheckError {
	if c.TLS != nil {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: c.TLS}
		conn, err := d.DialContext(hctx, "tcp", broker)
		cancel()
		var opErr *net.OpError
		switch {
		case err == nil:
			_ = conn.Close()
		case errors.As(err, &opErr) && opErr.Op == "dial" && ctx.Err() == nil:
			return &CheckError{Broker: broker, Stage: StageConnect, Err: err}
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return &CheckError{Broker: broker, Stage: StageTLS, Err: fmt.Errorf(
				"no TLS handshake within %s (is the listener plaintext?): %w", handshakeTimeout, err)}
		default:
			return &CheckError{Broker: broker, Stage: StageTLS, Err: err}
		}
	}
	dialer := &kafkago.Dialer{Timeout: dialTimeout, DualStack: true, TLS: c.TLS}
	if c.SASL != nil {
		dialer.SASLMechanism = stagedMechanism{c.SASL}
	}
	conn, err := dialer.DialContext(ctx, "tcp", broker)
	if err != nil {
		return classify(broker, err, c.TLS != nil, c.SASL != nil)
	}
	defer func() { _ = conn.Close() }()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Brokers(); err != nil {
		return classify(broker, err, c.TLS != nil, c.SASL != nil)
	}
	return nil
}

// classify turns err, met at broker after the TLS handshake (if any), into a CheckError at
// the stage to fix. A broker that hangs up on the first request points at what the client
// left out: a TLS listener hangs up on plaintext, a SASL listener on a request before
// authentication.
func classify(broker string, err error, withTLS, withSASL bool) *CheckError {
	var opErr *net.OpError
	stage := stageOf(err, withTLS)
	hungUp := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	switch {
	case stage == StageTLS && errors.As(err, &opErr) && opErr.Op == "remote error":
		err = fmt.Errorf("the broker refused the TLS session: %w", opErr)
	case stage != StageConnect || !hungUp:
	case !withTLS && withSASL:
		stage, err = StageTLS, fmt.Errorf("the broker hung up on the first request, as a TLS listener does on plaintext: %w", err)
	case withTLS && !withSASL:
		stage, err = StageSASL, fmt.Errorf("the broker hung up on the first request, as a listener that requires SASL does: %w", err)
	}
	return &CheckError{Broker: broker, Stage: stage, Err: err}
}

// stageOf tells which stage err comes from. A TLS alert from the broker counts as TLS
// whenever it comes: with TLS 1.3 a refused client certificate surfaces at the first read,
// during the SASL handshake.
func stageOf(err error, withTLS bool) string {
	var (
		saslErr     *saslStageError
		verifyErr   *tls.CertificateVerificationError
		authorityEr x509.UnknownAuthorityError
		hostnameErr x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		headerErr   tls.RecordHeaderError
		opErr       *net.OpError
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &authorityEr), errors.As(err, &hostnameErr),
		errors.As(err, &invalidErr),
		withTLS && errors.As(err, &opErr) && opErr.Op == "remote error", // crypto/tls's received alert
		withTLS && errors.As(err, &headerErr):
		return StageTLS
	case errors.As(err, &saslErr),
		errors.Is(err, kafkago.SASLAuthenticationFailed),
		errors.Is(err, kafkago.UnsupportedSASLMechanism),
		errors.Is(err, kafkago.IllegalSASLState):
		return StageSASL
	}
	return StageConnect
}

// saslStageError marks an error of the SASL mechanism itself (say, AWS credentials that
// cannot be had), which kafka-go passes on wrapped in text only.
type saslStageError struct{ err error }

func (e *saslStageError) Error() string { return e.err.Error() }
func (e *saslStageError) Unwrap() error { return e.err }

// stagedMechanism marks the errors of the mechanism it wraps as saslStageErrors.
type stagedMechanism struct{ sasl.Mechanism }

func (m stagedMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	sm, ir, err := m.Mechanism.Start(ctx)
	if err != nil {
		return nil, nil, &saslStageError{err}
	}
	return stagedMachine{sm}, ir, nil
}

type stagedMachine struct{ sasl.StateMachine }

func (m stagedMachine) Next(ctx context.Context, challenge []byte) (bool, []byte, error) {
	done, resp, err := m.StateMachine.Next(ctx, challenge)
	if err != nil {
		err = &saslStageError{err}
	}
	return done, resp, err
}
