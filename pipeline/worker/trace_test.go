package worker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/worker"
)

// TestWorkerWithoutTracerMakesNoSpans: with no Tracer the worker records nothing, even under a
// caller's sampled traceparent, and passes that traceparent on to the model unchanged.
func TestWorkerWithoutTracerMakesNoSpans(t *testing.T) {
	t.Parallel()
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	var seen string
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		model := c.Router.(pipelinetest.Picker)
		inner := model.Model.Client
		model.Model.Client = modelFunc(func(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
			seen = pipeline.TraceparentFromContext(ctx)
			if pipeline.Tracing(ctx) {
				t.Error("a span records inside the model call with tracing off")
			}
			return inner.Invoke(ctx, req)
		})
		c.Router = model
	})
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("t1"))
	d.Metadata[messages.MetaTraceparent] = tp
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("outcome %+v", out)
	}
	if seen != tp {
		t.Fatalf("model saw traceparent %q, want the message's %q", seen, tp)
	}
}

type modelFunc func(context.Context, pipeline.ModelRequest) (pipeline.ModelResponse, error)

func (f modelFunc) Invoke(ctx context.Context, req pipeline.ModelRequest) (pipeline.ModelResponse, error) {
	return f(ctx, req)
}

// TestWorkerSpansQueueWaitOnceAndFailedStages: a job whose first attempt fails shows the
// queue wait once (its first attempt's), the failing invoke stage as an error, and every
// stage of the second attempt, all under the span that published the message.
func TestWorkerSpansQueueWaitOnceAndFailedStages(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b := pipelinetest.SetupWith(t, &pipelinetest.FlakyModel{Fails: 1, Err: errors.New("throttled")},
		func(c *worker.Config) { c.Tracer = tp.Tracer(pipeline.TracerName) })
	const traceID, publishSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("q1"))
	d.Metadata[messages.MetaTraceparent] = "00-" + traceID + "-" + publishSpan + "-01"
	d.Metadata[messages.MetaPublishedAt] = time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	if out := b.Worker.Process(context.Background(), d); !out.Retry {
		t.Fatalf("first attempt: %+v, want a retry", out)
	}
	if out := b.Worker.Process(context.Background(), d); out.Retry {
		t.Fatalf("second attempt: %+v", out)
	}
	count := map[string]int{}
	for _, s := range rec.Ended() {
		count[s.Name()]++
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %s is in trace %s", s.Name(), s.SpanContext().TraceID())
		}
		switch s.Name() {
		case "queue wait", "process job":
			if s.Parent().SpanID().String() != publishSpan {
				t.Errorf("%s has parent %s, want the publish span", s.Name(), s.Parent().SpanID())
			}
		}
		if s.Name() == "queue wait" && s.EndTime().Sub(s.StartTime()) < time.Second {
			t.Errorf("queue wait lasted %s, want at least the second since published_at", s.EndTime().Sub(s.StartTime()))
		}
		if s.Name() == "invoke" && count["invoke"] == 1 && s.Status().Code != codes.Error {
			t.Errorf("the failed invoke has status %v", s.Status())
		}
	}
	want := map[string]int{"queue wait": 1, "process job": 2, "decode": 2, "admit": 2, "guard_in": 2, "route": 2,
		"invoke": 2, "guard_out": 1, "store": 1, "record": 1, "notify": 1}
	for name, n := range want {
		if count[name] != n {
			t.Errorf("%d spans named %q, want %d (all: %v)", count[name], name, n, count)
		}
	}
}

// BenchmarkProcessTracing is one job through every stage of the worker (SQLite job store, file
// result store) with tracing off (no endpoint: no Tracer), on but not sampled, and on with
// every span recorded and handed to an exporter that drops it.
func BenchmarkProcessTracing(b *testing.B) {
	for _, tc := range []struct {
		name   string
		tracer func(*testing.B) trace.Tracer
	}{
		{"off", func(*testing.B) trace.Tracer { return nil }},
		{"unsampled", func(b *testing.B) trace.Tracer {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			return tp.Tracer(pipeline.TracerName)
		}},
		{"on", func(b *testing.B) trace.Tracer {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			return tp.Tracer(pipeline.TracerName)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tracer := tc.tracer(b)
			bundle := pipelinetest.SetupWith(b, nil, func(c *worker.Config) { c.Tracer, c.Logger = tracer, zerolog.Nop() })
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				d := pipelinetest.JobDelivery(b, pipelinetest.TextJob(fmt.Sprintf("%s-%d", tc.name, i)))
				if out := bundle.Worker.Process(ctx, d); out.Retry {
					b.Fatalf("outcome %+v", out)
				}
			}
		})
	}
}
