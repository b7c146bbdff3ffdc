package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/s3"
	"github.com/infleet/infleet/pipeline/intake"
)

// newS3Store builds the S3 result store of results.s3.
func newS3Store(ctx context.Context, clients *awsClients, log zerolog.Logger) (*s3.Store, error) {
	c := clients.cfg
	client, err := clients.s3(ctx)
	if err != nil {
		return nil, err
	}
	s, err := s3.New(s3.Config{
		Client:        client,
		Bucket:        c.Results.S3.Bucket,
		Prefix:        c.Results.S3.Prefix,
		SSE:           c.Results.S3.SSE,
		KMSKeyID:      c.Results.S3.KMSKeyID,
		MaxInputBytes: c.Results.S3.MaxInputBytes,
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("results.s3: %w", err)
	}
	return s, nil
}

// openS3 opens the S3 result store, which also reads s3_uri inputs and, with
// results.s3.presign, signs result URLs. Start-up fails when the bucket is missing.
func (a *app) openS3(ctx context.Context) error {
	s, err := newS3Store(ctx, a.aws, a.log.With().Str("component", "s3").Logger())
	if err != nil {
		return err
	}
	if err := s.Check(ctx); err != nil {
		return fmt.Errorf("results.s3: %w", err)
	}
	a.results, a.inputs = s, s
	if a.cfg.Results.S3.Presign {
		a.resultURLs = s.Signer(a.cfg.Results.S3.PresignTTL)
	}
	a.ready = append(a.ready, intake.NamedChecker{Name: "results", Checker: s})
	return nil
}

// initS3 creates the result bucket when it is missing.
func initS3(ctx context.Context, clients *awsClients) (string, error) {
	c := clients.cfg
	client, err := clients.s3(ctx)
	if err != nil {
		return "", err
	}
	if err := s3.EnsureBucket(ctx, client, c.Results.S3.Bucket); err != nil {
		return "", fmt.Errorf("create the S3 bucket: %w", err)
	}
	return fmt.Sprintf("results s3: bucket %s ready", c.Results.S3.Bucket), nil
}
