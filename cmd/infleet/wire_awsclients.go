package main

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awseventbridge "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/infleet/infleet/config"
)

// defaultEmulatorRegion is the region used against an endpoint override (an emulator) when the
// SDK chain names none.
const defaultEmulatorRegion = "us-east-1"

// awsClients makes the AWS service clients of one process from one SDK configuration, loaded
// (with its credential chain) the first time a client is asked for and shared by every client
// after. It is safe for concurrent use.
type awsClients struct {
	cfg config.Config

	once sync.Once
	base aws.Config
	err  error
}

func newAWSClients(cfg config.Config) *awsClients { return &awsClients{cfg: cfg} }

// config returns the SDK configuration for one AWS-backed config section, with the section's
// endpoint override ("" for AWS itself). Credentials and region come from the standard chain;
// against an endpoint override (an emulator) a missing region defaults to us-east-1 and missing
// credentials to a placeholder pair, since emulators accept any.
func (c *awsClients) config(ctx context.Context, section string) (aws.Config, string, error) {
	c.once.Do(func() { c.base, c.err = awsconfig.LoadDefaultConfig(ctx) })
	if c.err != nil {
		return aws.Config{}, "", fmt.Errorf("%s: load the AWS configuration (AWS_PROFILE, AWS_REGION, ~/.aws/config): %w", section, c.err)
	}
	ac := c.base.Copy()
	endpoint := config.AWSEndpoint(c.cfg, section)
	if endpoint != "" {
		if ac.Region == "" {
			ac.Region = defaultEmulatorRegion
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			ac.Credentials = credentials.NewStaticCredentialsProvider("infleet", "infleet", "")
		}
	}
	if ac.Region == "" {
		return aws.Config{}, "", fmt.Errorf("%s: no AWS region: set AWS_REGION or a region in the AWS profile", section)
	}
	if _, err := ac.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, "", fmt.Errorf("%s: no AWS credentials: give the process a role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (%w)", section, err)
	}
	return ac, endpoint, nil
}

// shared returns a copy of the process's SDK configuration for adapters that lay their own
// region and credentials over it (Bedrock models and guardrails); nil when c is nil or the
// configuration could not be loaded, and the adapter then loads the default chain itself and
// reports what is wrong.
func (c *awsClients) shared(ctx context.Context) *aws.Config {
	if c == nil {
		return nil
	}
	c.once.Do(func() { c.base, c.err = awsconfig.LoadDefaultConfig(ctx) })
	if c.err != nil {
		return nil
	}
	ac := c.base.Copy()
	return &ac
}

func (c *awsClients) sqs(ctx context.Context) (*awssqs.Client, error) {
	ac, endpoint, err := c.config(ctx, "transport.sqs")
	if err != nil {
		return nil, err
	}
	return awssqs.NewFromConfig(ac, func(o *awssqs.Options) { o.BaseEndpoint = endpointOrNil(endpoint) }), nil
}

func (c *awsClients) dynamo(ctx context.Context) (*awsdynamodb.Client, error) {
	ac, endpoint, err := c.config(ctx, "store.dynamodb")
	if err != nil {
		return nil, err
	}
	return awsdynamodb.NewFromConfig(ac, func(o *awsdynamodb.Options) { o.BaseEndpoint = endpointOrNil(endpoint) }), nil
}

func (c *awsClients) s3(ctx context.Context) (*awss3.Client, error) {
	ac, endpoint, err := c.config(ctx, "results.s3")
	if err != nil {
		return nil, err
	}
	return awss3.NewFromConfig(ac, func(o *awss3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
			// S3-compatible stores and emulators often lack the newer default checksums.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	}), nil
}

func (c *awsClients) sns(ctx context.Context) (*awssns.Client, error) {
	ac, endpoint, err := c.config(ctx, "notify.sns")
	if err != nil {
		return nil, err
	}
	return awssns.NewFromConfig(ac, func(o *awssns.Options) { o.BaseEndpoint = endpointOrNil(endpoint) }), nil
}

func (c *awsClients) eventBridge(ctx context.Context) (*awseventbridge.Client, error) {
	ac, endpoint, err := c.config(ctx, "notify.eventbridge")
	if err != nil {
		return nil, err
	}
	return awseventbridge.NewFromConfig(ac, func(o *awseventbridge.Options) { o.BaseEndpoint = endpointOrNil(endpoint) }), nil
}

// endpointOrNil is a client's BaseEndpoint: nil (the service's own) for "".
func endpointOrNil(endpoint string) *string {
	if endpoint == "" {
		return nil
	}
	return aws.String(endpoint)
}
