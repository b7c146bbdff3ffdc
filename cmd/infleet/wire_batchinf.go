package main

import (
	"context"
	"fmt"

	"github.com/infleet/infleet/adapters/bedrock"
	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/messages"
	"github.com/infleet/infleet/pipeline"
	"github.com/infleet/infleet/pipeline/batchinf"
	"github.com/infleet/infleet/pipeline/worker"
)

// batchInference builds batch_inference's collector and reconciler; nil when it is off. The
// batches' S3 client is results.s3's (its endpoint, or INFLEET_AWS_ENDPOINT), the control
// plane's endpoint and region the batch model's.
func (a *app) batchInference(ctx context.Context) (*batchinf.Batches, error) {
	bc := a.cfg.BatchInference
	if !bc.Enabled() {
		return nil, nil
	}
	store, ok := a.store.(pipeline.BatchStore)
	if !ok {
		return nil, fmt.Errorf("batch_inference: store.kind %s keeps no batches (use sqlite, postgres or dynamodb)", a.cfg.Store.Kind)
	}
	m, _ := a.cfg.Model(bc.Model)
	s3c, err := a.aws.s3(ctx)
	if err != nil {
		return nil, fmt.Errorf("batch_inference: %w", err)
	}
	provider, err := bedrock.NewBatchJobs(ctx, bedrock.BatchConfig{
		S3: s3c, RoleARN: bc.RoleARN, Region: m.Region,
		Endpoint: config.AWSEndpoint(a.cfg, "models."+m.Name), AWS: a.aws.shared(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("batch_inference: %w", err)
	}
	price := a.cfg.BatchPrice()
	return batchinf.New(batchinf.Config{
		Store: store, Jobs: a.store, Provider: provider,
		Model: m.Name, ModelID: m.ModelID, Tasks: bc.Tasks, Priority: messages.Priority(bc.Priority),
		MinRecords: bc.MinRecords, MaxWait: bc.MaxWait, Bucket: bc.Bucket, Prefix: bc.Prefix,
		PollInterval: bc.PollInterval, Metrics: a.metrics,
		Price:  batchinf.Price{InputPerMTok: price.Input, OutputPerMTok: price.Output},
		Logger: a.log.With().Str("component", "batch_inference").Logger(),
	})
}

// workerBatchInference is b as the worker takes it: a nil interface when batch inference is off.
func workerBatchInference(b *batchinf.Batches) worker.BatchInference {
	if b == nil {
		return nil
	}
	return b
}
