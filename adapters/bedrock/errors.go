package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/infleet/infleet/adapters/internal/retryafter"
	"github.com/infleet/infleet/pipeline"
)

// mapError turns an SDK error into a *pipeline.ModelError, or ctx's error when the caller
// cancelled.
func (c *Client) mapError(ctx context.Context, err error) error {
	var me *pipeline.ModelError
	if errors.As(err, &me) {
		return err
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("bedrock call to %s cancelled: %w", c.modelID, context.Canceled)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &pipeline.ModelError{Kind: pipeline.ModelTimeout,
			Err: fmt.Errorf("no answer from %s in time (raise the model's timeout or the job's deadline): %w", c.modelID, err)}
	}
	out := &pipeline.ModelError{Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		out.Status = re.HTTPStatusCode()
		out.RetryAfter = RetryAfter(re.Response.Header, time.Now())
	}
	var api smithy.APIError
	var params smithy.InvalidParamsError
	var ser *smithy.SerializationError
	if errors.As(err, &params) || errors.As(err, &ser) {
		out.Kind = pipeline.ModelInvalidRequest
		return out
	}
	if !errors.As(err, &api) {
		switch {
		case out.Status >= 500:
			out.Kind = pipeline.ModelUnavailable
		case strings.Contains(err.Error(), "retrieve credentials"):
			out.Kind = pipeline.ModelAccessDenied
			out.Err = fmt.Errorf("%w (no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", err)
		default:
			// Connection refused or reset, DNS, TLS: the endpoint may come back.
			out.Kind = pipeline.ModelUnavailable
		}
		return out
	}
	code, msg := api.ErrorCode(), strings.ToLower(api.ErrorMessage())
	switch code {
	case "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException":
		out.Kind = pipeline.ModelThrottled
	case "ServiceUnavailableException", "InternalServerException", "ModelErrorException", "ModelStreamErrorException":
		out.Kind = pipeline.ModelUnavailable
	case "ModelTimeoutException":
		out.Kind = pipeline.ModelTimeout
	case "ModelNotReadyException":
		out.Kind = pipeline.ModelNotReady
	case "ValidationException":
		if contextOverflow(msg) {
			out.Kind = pipeline.ModelContextOverflow
		} else {
			out.Kind = pipeline.ModelInvalidRequest
		}
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
		out.Kind = pipeline.ModelAccessDenied
		out.Err = fmt.Errorf("%w (check the credentials and that model access to %s is granted in this region)", err, c.modelID)
	case "ResourceNotFoundException":
		out.Kind = pipeline.ModelNotFound
		out.Err = fmt.Errorf("%w (check model_id %s and the region)", err, c.modelID)
	default:
		switch {
		case out.Status == http.StatusTooManyRequests:
			out.Kind = pipeline.ModelThrottled
		case out.Status >= 500 || out.Status == 0:
			out.Kind = pipeline.ModelUnavailable
		case out.Status == http.StatusRequestTimeout:
			out.Kind = pipeline.ModelTimeout
		case out.Status == http.StatusForbidden || out.Status == http.StatusUnauthorized:
			out.Kind = pipeline.ModelAccessDenied
		case out.Status == http.StatusNotFound:
			out.Kind = pipeline.ModelNotFound
		default:
			out.Kind = pipeline.ModelInvalidRequest
		}
	}
	return out
}

// contextOverflow reports whether a lower-cased ValidationException message says the input is
// longer than the model's context window.
func contextOverflow(msg string) bool {
	for _, s := range []string{"too long", "context limit", "context length", "context window", "maximum context", "too many tokens", "too many input tokens"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// RetryAfter reads the wait a response asked for: x-amz-retry-after (milliseconds), else
// Retry-After in seconds or as an HTTP date, relative to now. It returns 0 when there is none.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	return retryafter.FromHeader(h, now, "X-Amz-Retry-After")
}
