package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/infleet/infleet/internal/pipelinetest"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/ops"
	"github.com/infleet/infleet/pipeline/worker"
)

// archiveWrites counts the archive writes that returned.
type archiveWrites struct {
	pipeline.BlobStore
	written atomic.Int64
}

func (s *archiveWrites) Put(ctx context.Context, key string, data []byte) error {
	err := s.BlobStore.Put(ctx, key, data)
	if err == nil {
		s.written.Add(1)
	}
	return err
}

// runRouter stands in for a Watermill router: it runs every message of out through the
// worker, one at a time, and acks it, or nacks it when the worker asks for a retry.
func runRouter(w *worker.Worker, out <-chan *message.Message) {
	for msg := range out {
		o := w.Process(msg.Context(), worker.Delivery{MessageID: msg.UUID, Payload: msg.Payload, Metadata: msg.Metadata})
		if o.Retry {
			msg.Nack()
		} else {
			msg.Ack()
		}
	}
}

func TestSchedulerReusesAPlaceWhileAnAckWaitsForTheArchive(t *testing.T) {
	t.Parallel()
	blobs := &archiveWrites{}
	var a *ops.Archive
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		blobs.BlobStore = c.Results
		var err error
		a, err = ops.NewArchive(ops.ArchiveConfig{Store: blobs, Window: time.Hour}) // written on Flush
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		c.Archive = a
		c.Concurrency = 1
	})
	const n = 3
	sub := &readySubscriber{topics: map[string][]*message.Message{}}
	// archivedAtAck[i] is how many archive writes had returned when message i was acked.
	var archivedAtAck [n]atomic.Int64
	acked := make(chan int, n)
	for i := range n {
		job := pipelinetest.TextJob(fmt.Sprintf("held-%d", i))
		body, err := json.Marshal(job)
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(job.JobID, body)
		msg.Metadata.Set(messages.MetaJobID, job.JobID)
		topic := pipelinetest.Topics.For(messages.PriorityNormal)
		sub.topics[topic] = append(sub.topics[topic], msg)
		go func() {
			select {
			case <-msg.Acked():
				archivedAtAck[i].Store(blobs.written.Load())
				acked <- i
			case <-msg.Nacked():
				acked <- -1
			}
		}()
	}
	// One message handled at a time, and up to n acks held for the archive.
	s, err := worker.NewScheduler(worker.SchedulerConfig{Subscriber: sub, Topics: pipelinetest.Topics, Concurrency: 1, HeldAcks: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	out, err := s.Subscribe(ctx, worker.SchedulerTopic)
	if err != nil {
		t.Fatal(err)
	}
	go runRouter(b.Worker, out)

	// Every job runs to COMPLETED through the one place while the first one's message still
	// waits for the archive, which is not written yet.
	pipelinetest.WaitFor(t, func() bool {
		for i := range n {
			rec, err := b.Store.Get(context.Background(), fmt.Sprintf("held-%d", i))
			if err != nil || rec.Status != messages.StatusCompleted {
				return false
			}
		}
		return true
	})
	select {
	case i := <-acked:
		t.Fatalf("message %d answered before the archive was written", i)
	case <-time.After(20 * time.Millisecond):
	}
	if got := blobs.written.Load(); got != 0 {
		t.Fatalf("%d archive writes, want none before the flush", got)
	}
	ackCtx, cancelAck := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelAck()
	if s.WaitAnswered(ackCtx) {
		t.Fatal("WaitAnswered reported every message answered while their acks wait for the archive")
	}

	// The write returns: every message is acked, none before it.
	a.Flush(context.Background())
	for range n {
		select {
		case i := <-acked:
			if i < 0 {
				t.Fatal("a message was nacked after its archive write returned")
			}
			if got := archivedAtAck[i].Load(); got == 0 {
				t.Fatalf("message %d acked before its archive write returned", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the messages were not acked after the archive write")
		}
	}
	if !s.WaitAnswered(ctx) {
		t.Fatal("WaitAnswered did not return once every message was acked")
	}
	if got := archived(t, b.Results); len(got) != n {
		t.Fatalf("archive %v, want %d jobs", got, n)
	}
}

func TestSchedulerNacksAHeldAckWhoseArchiveWriteFailed(t *testing.T) {
	t.Parallel()
	blobs := &flakyBlobs{}
	blobs.fail.Store(true)
	var a *ops.Archive
	b := pipelinetest.SetupWith(t, nil, func(c *worker.Config) {
		blobs.BlobStore = c.Results
		var err error
		a, err = ops.NewArchive(ops.ArchiveConfig{Store: blobs, Window: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		c.Archive = a
	})
	d := pipelinetest.JobDelivery(t, pipelinetest.TextJob("fails"))
	msg := message.NewMessage(d.MessageID, d.Payload)
	msg.Metadata = d.Metadata
	topic := pipelinetest.Topics.For(messages.PriorityNormal)
	sub := &readySubscriber{topics: map[string][]*message.Message{topic: {msg}}}
	s, err := worker.NewScheduler(worker.SchedulerConfig{Subscriber: sub, Topics: pipelinetest.Topics, Concurrency: 1, HeldAcks: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	out, err := s.Subscribe(ctx, worker.SchedulerTopic)
	if err != nil {
		t.Fatal(err)
	}
	go runRouter(b.Worker, out)
	pipelinetest.WaitFor(t, func() bool {
		rec, err := b.Store.Get(context.Background(), "fails")
		return err == nil && rec.Status == messages.StatusCompleted
	})
	a.Flush(context.Background()) // the write fails
	select {
	case <-msg.Nacked():
	case <-msg.Acked():
		t.Fatal("acked although its archive write failed")
	case <-time.After(5 * time.Second):
		t.Fatal("not answered after the failed archive write")
	}
	if d, ok := messages.NackDelay(msg.Metadata); !ok || d <= 0 {
		t.Fatalf("nack delay %q, want the infrastructure backoff", msg.Metadata.Get(messages.MetaNackDelay))
	}
	if rec := b.Record(t, "fails"); rec.Attempts != 1 {
		t.Fatalf("record %+v, want its one attempt, none spent on the archive", rec)
	}
}

// BenchmarkHeldAcks burns down b.N job messages (0 ms model, the archive written before the
// ack with its default 2 ms batch window) through a Scheduler of 32 messages and 16 places,
// each message run in its own goroutine as a Watermill router does: without held acks a
// message keeps its handler until its archive batch is written, with them only until its
// outcome is recorded.
//
// background=true is the archive written in the background (archive.write: background), for
// the cost of the wait against none.
func BenchmarkHeldAcks(b *testing.B) {
	for _, tc := range []struct {
		held       int
		background bool
	}{{0, false}, {500, false}, {0, true}} {
		held := tc.held
		b.Run(fmt.Sprintf("held=%d/background=%v", held, tc.background), func(b *testing.B) {
			bundle := pipelinetest.SetupWith(b, nil, func(c *worker.Config) {
				a, err := ops.NewArchive(ops.ArchiveConfig{Store: c.Results, Background: tc.background})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = a.Close() })
				c.Archive = a
				c.Concurrency = 16
			})
			topic := pipelinetest.Topics.For(messages.PriorityNormal)
			sub := &readySubscriber{topics: map[string][]*message.Message{}}
			answered := make(chan struct{}, b.N)
			for i := range b.N {
				d := pipelinetest.JobDelivery(b, pipelinetest.TextJob(fmt.Sprintf("bench-%d", i)))
				msg := message.NewMessage(d.MessageID, d.Payload)
				msg.Metadata = d.Metadata
				sub.topics[topic] = append(sub.topics[topic], msg)
				go func() {
					select {
					case <-msg.Acked():
					case <-msg.Nacked():
					}
					answered <- struct{}{}
				}()
			}
			s, err := worker.NewScheduler(worker.SchedulerConfig{Subscriber: sub, Topics: pipelinetest.Topics, Concurrency: 32, HeldAcks: held})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			b.ResetTimer()
			out, err := s.Subscribe(context.Background(), worker.SchedulerTopic)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for msg := range out {
					go func() {
						o := bundle.Worker.Process(msg.Context(), worker.Delivery{MessageID: msg.UUID, Payload: msg.Payload, Metadata: msg.Metadata})
						if o.Retry {
							msg.Nack()
						} else {
							msg.Ack()
						}
					}()
				}
			}()
			for range b.N {
				<-answered
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
