// Package webhook delivers job lifecycle events by signed HTTP POST: the pipeline.Notifier
// for a job's callback_url or a configured URL.
//
// Each request carries the JSON of a messages.Event, Content-Type application/json, the
// event type in Infleet-Event, the event's stable id in Infleet-Event-Id when it has one (a
// receiver that sees an id again has the same event again: delivery is at least once) and,
// when a secret is set, an Infleet-Signature header
// "t=UNIX,v1=HEX(HMAC-SHA256(secret, UNIX + "." + body))" that receivers check with Verify.
// Deliveries are retried with exponential backoff on network errors, 5xx, 408 and 429, and
// are never sent to loopback, private, link-local or other internal addresses unless
// Config.AllowPrivate is set.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/internal/retryafter"
	"github.com/infleet/infleet/pipeline"
)

// Header values and limits of a delivery.
const (
	// UserAgent is the User-Agent of every delivery.
	UserAgent = "infleet-webhook/1"
	// EventHeader carries the event type (job.completed, ...), for routing without parsing.
	EventHeader = "Infleet-Event"
	// EventIDHeader carries the event's stable id (the JSON's id), the same on every delivery
	// of one event, for receivers to drop duplicates. Absent when the event has no id.
	EventIDHeader = "Infleet-Event-Id"
	// MaxBackoff caps the wait between two attempts, and the Retry-After a server may ask
	// for: a longer Retry-After ends the delivery.
	MaxBackoff = 30 * time.Second
	// maxResponseBody is how much of a response is read (and discarded) before closing it.
	maxResponseBody = 64 << 10
)

// Defaults of Config.
const (
	DefaultMaxAttempts    = 5
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultTimeout        = 10 * time.Second
)

// Config says where and how events are delivered.
type Config struct {
	// URL is the default target; a Notification's CallbackURL overrides it. With neither,
	// Notify does nothing. Optional; must be an http or https URL.
	URL string
	// Secret is the HMAC key signing each request. Default empty: no signature header.
	Secret string
	// AllowPrivate permits loopback, private, link-local and other internal targets, for
	// development and tests. Default false.
	AllowPrivate bool
	// MaxAttempts is how many times a delivery is tried. Default 5.
	MaxAttempts int
	// InitialBackoff is the first retry's backoff ceiling; it doubles per attempt up to
	// MaxBackoff, and each wait is drawn uniformly below it (full jitter). Default 500ms.
	InitialBackoff time.Duration
	// Timeout bounds each attempt, reading the response included. Default 10s.
	Timeout time.Duration
	// Client sends the requests. Default: a client built here whose dialer refuses internal
	// addresses at connect time. A given Client is used as is except that redirects are never
	// followed; it does not get the connect-time guard (only literal addresses and localhost
	// are then refused), so give one only with a transport you trust.
	Client *http.Client
	// Logger receives one warning per failed attempt. Default: the zero Logger, which
	// discards.
	Logger zerolog.Logger
}

// Validate reports every problem with c, naming the field and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if _, err := parseTarget(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("notify.webhook.url: %w", err))
		} else if !c.AllowPrivate {
			u, _ := url.Parse(c.URL)
			if err := checkHost(u); err != nil {
				errs = append(errs, fmt.Errorf("notify.webhook.url: %w", err))
			}
		}
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("webhook MaxAttempts is %d (use a positive count, or 0 for the default %d)", c.MaxAttempts, DefaultMaxAttempts))
	}
	if c.InitialBackoff < 0 {
		errs = append(errs, fmt.Errorf("webhook InitialBackoff is %s (use a positive duration, or 0 for the default %s)", c.InitialBackoff, DefaultInitialBackoff))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("webhook Timeout is %s (use a positive duration, or 0 for the default %s)", c.Timeout, DefaultTimeout))
	}
	return errors.Join(errs...)
}

// Notifier posts lifecycle events to webhooks. It is safe for concurrent use; each Notify is
// one independent delivery. Deliveries are at least once: a receiver may see an event again
// (after a lost response, for instance) and should deduplicate by job_id and type.
type Notifier struct {
	target         string
	secret         string
	allowPrivate   bool
	maxAttempts    int
	initialBackoff time.Duration
	timeout        time.Duration
	client         *http.Client
	log            zerolog.Logger

	// sleep waits d or until ctx ends; tests replace it to observe the waits.
	sleep func(ctx context.Context, d time.Duration) error
	now   func() time.Time
}

var _ pipeline.Notifier = (*Notifier)(nil)

// New validates cfg and returns a Notifier with its defaults applied.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Notifier{
		target:         cfg.URL,
		secret:         cfg.Secret,
		allowPrivate:   cfg.AllowPrivate,
		maxAttempts:    cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		initialBackoff: cmp.Or(cfg.InitialBackoff, DefaultInitialBackoff),
		timeout:        cmp.Or(cfg.Timeout, DefaultTimeout),
		log:            cfg.Logger,
		sleep:          sleep,
		now:            time.Now,
	}
	if cfg.Client != nil {
		c := *cfg.Client
		c.CheckRedirect = noRedirects
		n.client = &c
	} else {
		n.client = newClient(cfg.AllowPrivate)
	}
	return n, nil
}

// newClient builds the default client: no proxy (a proxy would dial on our behalf, past the
// guard), no redirects, and unless allowPrivate a dialer refusing internal addresses.
func newClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = dialGuard
	}
	return &http.Client{
		CheckRedirect: noRedirects,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Notify posts n's event to n.CallbackURL, or to the configured URL when that is empty, and
// returns nil once a 2xx answer is received. With no target it does nothing and returns nil.
// It retries as the package doc says, waiting between attempts, and returns an error when the
// target is refused (ErrForbiddenAddress), answers with a status not worth retrying, or still
// fails after MaxAttempts, or when ctx ends.
func (nt *Notifier) Notify(ctx context.Context, n pipeline.Notification) error {
	target := cmp.Or(n.CallbackURL, nt.target)
	if target == "" {
		return nil
	}
	ev := n.Event
	u, err := parseTarget(target)
	if err != nil {
		return fmt.Errorf("webhook %s for job %s: %w", ev.Type, ev.JobID, err)
	}
	if !nt.allowPrivate {
		if err := checkHost(u); err != nil {
			return fmt.Errorf("webhook %s for job %s to %s: %w", ev.Type, ev.JobID, u.Host, err)
		}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("webhook %s for job %s: encode event: %w", ev.Type, ev.JobID, err)
	}
	for attempt := 1; ; attempt++ {
		res := nt.attempt(ctx, u.String(), ev.Type, ev.ID, body)
		if res.err == nil {
			return nil
		}
		nt.log.Warn().
			Str("job_id", ev.JobID).
			Str("event", ev.Type).
			Str("target_host", u.Host).
			Int("attempt", attempt).
			Int("status", res.status).
			Bool("will_retry", res.retry && attempt < nt.maxAttempts && ctx.Err() == nil).
			AnErr("error", res.err).
			Msg("webhook attempt failed")
		fail := func(why string) error {
			return fmt.Errorf("webhook %s for job %s to %s: %s after %d attempt(s): %w", ev.Type, ev.JobID, u.Host, why, attempt, res.err)
		}
		if ctx.Err() != nil {
			return fail("stopped")
		}
		if !res.retry {
			return fail("not retried")
		}
		if attempt >= nt.maxAttempts {
			return fail("gave up")
		}
		wait := nt.backoff(attempt)
		if res.retryAfter >= 0 {
			if res.retryAfter > MaxBackoff {
				return fail(fmt.Sprintf("server asked to retry after %s, beyond the %s limit; gave up", res.retryAfter, MaxBackoff))
			}
			wait = res.retryAfter
		}
		if err := nt.sleep(ctx, wait); err != nil {
			return fail("stopped while waiting to retry (" + err.Error() + ")")
		}
	}
}

// result is the outcome of one attempt.
type result struct {
	err        error
	status     int           // 0 when no response arrived
	retry      bool          // whether another attempt may succeed
	retryAfter time.Duration // negative when the server gave none
}

// attempt sends one signed request and reads at most maxResponseBody of the answer, all
// within the per-attempt timeout.
func (nt *Notifier) attempt(ctx context.Context, target, eventType, eventID string, body []byte) result {
	ctx, cancel := context.WithTimeout(ctx, nt.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return result{err: err, retryAfter: -1}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(EventHeader, eventType)
	if eventID != "" {
		req.Header.Set(EventIDHeader, eventID)
	}
	if nt.secret != "" {
		req.Header.Set(SignatureHeader, Sign(nt.secret, nt.now(), body))
	}
	resp, err := nt.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, whose query may hold a receiver's token: keep the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return result{err: err, retry: retryableNetErr(err), retryAfter: -1}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()

	res := result{status: resp.StatusCode, retryAfter: -1}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return res
	case code >= 300 && code < 400:
		res.err = fmt.Errorf("answered %s; redirects are not followed (configure the final URL)", resp.Status)
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		res.err = fmt.Errorf("answered %s", resp.Status)
		res.retry = true
		res.retryAfter = retryAfter(resp.Header.Get("Retry-After"), nt.now())
	default:
		res.err = fmt.Errorf("answered %s, which is not retried (check the receiver accepts this event and its signature)", resp.Status)
	}
	return res
}

// retryableNetErr reports whether a failed request may succeed when repeated: not when the
// target was refused or its certificate is wrong.
func retryableNetErr(err error) bool {
	if errors.Is(err, ErrForbiddenAddress) {
		return false
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return false
	}
	return true
}

// retryAfter parses a Retry-After value, seconds or an HTTP date, into a wait of at most a day;
// negative when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	wait, ok := retryafter.Parse(v, now)
	if !ok {
		return -1
	}
	return min(wait, 24*time.Hour)
}

// backoff returns the wait after failed attempt n (1-based): uniform in [0, ceiling) with the
// ceiling InitialBackoff*2^(n-1), capped at MaxBackoff.
func (nt *Notifier) backoff(n int) time.Duration {
	ceiling := nt.initialBackoff
	for i := 1; i < n && ceiling < MaxBackoff; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, MaxBackoff)
	return rand.N(ceiling)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseTarget checks that s is an absolute http or https URL with a host.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // without the URL, which may hold a token
		}
		return nil, fmt.Errorf("bad webhook URL (want http:// or https://host/path): %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("bad webhook URL %q (want http:// or https://host/path)", u.Redacted())
	}
	return u, nil
}
