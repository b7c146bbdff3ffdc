package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/infleet/infleet/config"
	"github.com/infleet/infleet/pipeline/models"
)

// maxConfigObject caps the size of a config document read from S3.
const maxConfigObject = 4 << 20

// s3ConfigWatch follows the config document in the S3 object uri (s3://bucket/key): its ETag
// is checked every routing.reload_interval, and a changed document that validates has its
// models, routes, routing, resilience, budgets and prompts applied. The object is read once now
// as well, so the workers start on it; a missing or invalid object stops start-up.
func (a *app) s3ConfigWatch(uri string, environ []string, fleet *models.Fleet, p *models.Picker) (models.WatchConfig, error) {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(uri, "s3://"), "/")
	if !strings.HasPrefix(uri, "s3://") || !ok || bucket == "" || key == "" {
		return models.WatchConfig{}, fmt.Errorf("%q is not an S3 object URI (s3://bucket/key)", uri)
	}
	ctx := context.Background()
	client, err := s3Client(ctx, a.cfg)
	if err != nil {
		return models.WatchConfig{}, err
	}
	apply := func() error {
		out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("read %s: %w", uri, err)
		}
		defer out.Body.Close()
		data, err := io.ReadAll(io.LimitReader(out.Body, maxConfigObject+1))
		if err != nil {
			return fmt.Errorf("read %s: %w", uri, err)
		}
		if len(data) > maxConfigObject {
			return fmt.Errorf("%s is larger than %d bytes", uri, maxConfigObject)
		}
		cfg, err := config.LoadBytes(data, uri, environ)
		if err != nil {
			return err
		}
		return applyModels(cfg, fleet, p)
	}
	if err := apply(); err != nil {
		return models.WatchConfig{}, err
	}
	return models.WatchConfig{
		Path:     uri,
		Interval: a.cfg.Routing.ReloadInterval,
		Version: func(ctx context.Context) (string, error) {
			out, err := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return "", err
			}
			return aws.ToString(out.ETag), nil
		},
		Apply:  apply,
		Logger: a.log.With().Str("component", "reload").Logger(),
	}, nil
}
