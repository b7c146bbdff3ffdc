package main

import (
	"context"

	"github.com/infleet/infleet/adapters/s3"
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
	ctx := context.Background()
	client, err := a.aws.s3(ctx)
	if err != nil {
		return models.WatchConfig{}, err
	}
	obj, err := s3.NewObject(client, uri, maxConfigObject)
	if err != nil {
		return models.WatchConfig{}, err
	}
	apply := func() error {
		data, err := obj.Read(ctx)
		if err != nil {
			return err
		}
		cfg, err := config.LoadBytes(data, uri, environ)
		if err != nil {
			return err
		}
		return a.applyModels(cfg, fleet, p)
	}
	if err := apply(); err != nil {
		return models.WatchConfig{}, err
	}
	return models.WatchConfig{
		Path:     uri,
		Interval: a.cfg.Routing.ReloadInterval,
		Version:  obj.Version,
		Apply:    apply,
		Logger:   a.log.With().Str("component", "reload").Logger(),
	}, nil
}
