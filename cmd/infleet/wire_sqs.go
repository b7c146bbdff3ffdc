package main

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/infleet/infleet/adapters/sqs"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/intake"
)

// queueName accepts a queue's name or URL (transport.sqs.queues may hold either) and returns
// its name.
func queueName(nameOrURL string) string {
	if u, err := url.Parse(nameOrURL); err == nil && u.Scheme != "" && u.Host != "" {
		return path.Base(strings.TrimSuffix(u.Path, "/"))
	}
	return nameOrURL
}

// sqsTopics are the queue names of transport.sqs.
func sqsTopics(c config.Config) pipeline.Topics {
	q := c.Transport.SQS
	return pipeline.Topics{High: queueName(q.Queues.High), Normal: queueName(q.Queues.Normal),
		Low: queueName(q.Queues.Low), Dead: queueName(q.DeadLetterQueue)}
}

// openSQS connects the SQS transport: one queue per priority, dead letters in the redrive
// queue. Start-up fails, naming them, when queues are missing.
func (a *app) openSQS(ctx context.Context) error {
	a.topics = sqsTopics(a.cfg)
	client, err := a.aws.sqs(ctx)
	if err != nil {
		return err
	}
	if err := sqs.CheckQueues(ctx, client, a.topics.High, a.topics.Normal, a.topics.Low, a.topics.Dead); err != nil {
		return fmt.Errorf("transport.sqs: %w", err)
	}
	log := a.log.With().Str("component", "sqs").Logger()
	pub, err := sqs.NewPublisher(sqs.PublisherConfig{Client: client, Logger: log})
	if err != nil {
		return fmt.Errorf("transport.sqs: %w", err)
	}
	a.onClose(pub.Close)
	sub, err := sqs.NewSubscriber(sqs.SubscriberConfig{
		Client:            client,
		VisibilityTimeout: a.cfg.Transport.SQS.VisibilityTimeout,
		MaxInFlight:       a.cfg.Unacked(),
		// As many long polls as the messages the workers take need: the acknowledgements
		// held for the archive (Unacked beyond InFlight) need none of their own.
		Pollers: max(1, a.cfg.Workers.InFlight()/10),
		Logger:  log,
	})
	if err != nil {
		return fmt.Errorf("transport.sqs: %w", err)
	}
	a.onClose(sub.Close)
	a.publisher, a.subscriber, a.depth = pub, sub, sub
	a.ready = append(a.ready, intake.NamedChecker{Name: "queue", Checker: sub})
	return nil
}

// initSQS creates the missing queues with their redrive policy to the dead-letter queue.
func initSQS(ctx context.Context, clients *awsClients) (string, error) {
	c := clients.cfg
	client, err := clients.sqs(ctx)
	if err != nil {
		return "", err
	}
	t := sqsTopics(c)
	if err := sqs.EnsureQueues(ctx, client, sqs.QueueSpec{
		Queues:            []string{t.High, t.Normal, t.Low},
		DeadLetterQueue:   t.Dead,
		MaxReceiveCount:   c.Transport.SQS.MaxReceiveCount,
		VisibilityTimeout: c.Transport.SQS.VisibilityTimeout,
	}); err != nil {
		return "", fmt.Errorf("create the SQS queues: %w", err)
	}
	return fmt.Sprintf("transport sqs: %s, %s, %s ready (redrive to %s after %d receives)",
		t.High, t.Normal, t.Low, t.Dead, c.Transport.SQS.MaxReceiveCount), nil
}
