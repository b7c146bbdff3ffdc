package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/infleet/infleet/adapters/eventbridge"
	"github.com/infleet/infleet/adapters/sns"
	"github.com/infleet/infleet/adapters/webhook"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/events"
	"github.com/infleet/infleet/pipeline/intake"
)

// openNotifiers builds every configured sink of lifecycle events: the webhook (always, for
// callback_url), SNS, EventBridge and a Kafka topic. Start-up fails when a configured SNS topic
// is missing.
func (a *app) openNotifiers(ctx context.Context) error {
	c := a.cfg.Notify
	wh, err := webhook.New(webhook.Config{
		URL:          c.Webhook.URL,
		Secret:       c.Webhook.Secret,
		AllowPrivate: c.Webhook.AllowPrivate,
		MaxAttempts:  c.Webhook.MaxAttempts,
		Logger:       a.log.With().Str("component", "webhook").Logger(),
	})
	if err != nil {
		return fmt.Errorf("notify.webhook: %w", err)
	}
	sinks := pipeline.Notifiers{wh}
	if arn := c.SNS.TopicARN; arn != "" {
		client, err := a.aws.sns(ctx)
		if err != nil {
			return err
		}
		n, err := sns.New(sns.Config{Client: client, TopicARN: arn, Logger: a.log.With().Str("component", "sns").Logger()})
		if err != nil {
			return fmt.Errorf("notify.sns: %w", err)
		}
		if err := n.Check(ctx); err != nil {
			return fmt.Errorf("notify.sns: %w", err)
		}
		a.ready = append(a.ready, intake.NamedChecker{Name: "sns", Checker: n})
		sinks = append(sinks, n)
	}
	if bus := c.EventBridge.Bus; bus != "" {
		client, err := a.aws.eventBridge(ctx)
		if err != nil {
			return err
		}
		n, err := eventbridge.New(eventbridge.Config{Client: client, Bus: bus, Source: c.EventBridge.Source,
			Logger: a.log.With().Str("component", "eventbridge").Logger()})
		if err != nil {
			return fmt.Errorf("notify.eventbridge: %w", err)
		}
		a.onClose(n.Close)
		sinks = append(sinks, n)
	}
	k, err := a.kafkaNotifier(ctx)
	if err != nil {
		return err
	}
	if k != nil {
		sinks = append(sinks, k)
	}
	a.notifier = sinks
	if ob, ok := a.store.(pipeline.Outbox); ok {
		d, err := events.New(events.Config{Outbox: ob, Notifier: sinks, Lease: c.Outbox.Lease, Poll: c.Outbox.Poll,
			CallbackOnly: len(sinks) == 1 && c.Webhook.URL == "", Logger: a.log})
		if err != nil {
			return fmt.Errorf("notify.outbox: %w", err)
		}
		a.events = d
	}
	return nil
}

// outboxWaker is the dispatcher that events kept in the store's outbox wake, or nil when the
// store keeps none and events go straight to the notifier.
func (a *app) outboxWaker() pipeline.OutboxWaker {
	if a.events == nil {
		return nil
	}
	return a.events
}

// startEvents runs this process's outbox dispatcher, when the store keeps events. serve and
// worker processes run one each, so delivery spreads over the workers and goes on when one of
// them dies; an ingress process keeps the events of its cancels for them. The returned stop
// ends it: events it was delivering stay kept and are delivered again after their lease.
func (a *app) startEvents(ctx context.Context) (stop func()) {
	if a.events == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.events.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

// initSNS creates the SNS topic notify.sns.topic_arn names when it is missing.
func initSNS(ctx context.Context, clients *awsClients) (string, error) {
	c := clients.cfg
	client, err := clients.sns(ctx)
	if err != nil {
		return "", err
	}
	arn := c.Notify.SNS.TopicARN
	name := arn[strings.LastIndexByte(arn, ':')+1:]
	got, err := sns.EnsureTopic(ctx, client, name)
	if err != nil {
		return "", fmt.Errorf("create the SNS topic %s: %w", name, err)
	}
	if got != arn {
		return "", fmt.Errorf("created the SNS topic %s as %s, which is not notify.sns.topic_arn %s: fix the region or account in the ARN", name, got, arn)
	}
	return "notify sns: topic " + got + " ready", nil
}
