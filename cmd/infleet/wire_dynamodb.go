package main

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/infleet/infleet/adapters/dynamodb"
	"github.com/infleet/infleet/pipeline/intake"
)

// openDynamoDB opens the DynamoDB job store; start-up fails when the table is missing.
func (a *app) openDynamoDB(ctx context.Context) error {
	client, err := a.aws.dynamo(ctx)
	if err != nil {
		return err
	}
	s, err := dynamodb.Open(ctx, dynamodb.Config{
		Client:    client,
		Table:     a.cfg.Store.DynamoDB.Table,
		Retention: a.cfg.Store.DynamoDB.Retention,
		Logger:    a.log.With().Str("component", "dynamodb").Logger(),
	})
	if err != nil {
		return fmt.Errorf("store.dynamodb: %w", err)
	}
	a.onClose(s.Close)
	a.store = s
	a.ready = append(a.ready, intake.NamedChecker{Name: "store", Checker: s})
	return nil
}

// openDynamoLimits opens the DynamoDB job table as the fleet's shared rate and quota store.
func openDynamoLimits(ctx context.Context, clients *awsClients, log zerolog.Logger) (closableLimits, error) {
	c := clients.cfg
	client, err := clients.dynamo(ctx)
	if err != nil {
		return closableLimits{}, err
	}
	s, err := dynamodb.Open(ctx, dynamodb.Config{Client: client, Table: c.Store.DynamoDB.Table, Logger: log})
	if err != nil {
		return closableLimits{}, fmt.Errorf("open the limit store (store.dynamodb.table; run `infleet init` first): %w", err)
	}
	return closableLimits{LimitStore: s, close: s.Close}, nil
}

// initDynamoDB creates the job table (keys, indexes, TTL) when it is missing.
func initDynamoDB(ctx context.Context, clients *awsClients) (string, error) {
	c := clients.cfg
	client, err := clients.dynamo(ctx)
	if err != nil {
		return "", err
	}
	if err := dynamodb.EnsureTable(ctx, client, c.Store.DynamoDB.Table); err != nil {
		return "", fmt.Errorf("create the DynamoDB table: %w", err)
	}
	return fmt.Sprintf("store dynamodb: table %s ready", c.Store.DynamoDB.Table), nil
}
