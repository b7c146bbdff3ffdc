package main

import (
	"context"
	"fmt"
	"os"

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

// awsConfig loads the SDK configuration for one AWS-backed config section and returns it with
// the section's endpoint override ("" for AWS itself). Credentials and region come from the
// standard chain; against an endpoint override (an emulator) a missing region defaults to
// us-east-1 and missing credentials to a placeholder pair, since emulators accept any.
func awsConfig(ctx context.Context, c config.Config, section string) (aws.Config, string, error) {
	endpoint := config.AWSEndpoint(c, section)
	var opts []func(*awsconfig.LoadOptions) error
	if endpoint != "" {
		if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, awsconfig.WithRegion(defaultEmulatorRegion))
		}
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_PROFILE") == "" {
			opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("infleet", "infleet", "")))
		}
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, "", fmt.Errorf("%s: load the AWS configuration (AWS_PROFILE, AWS_REGION, ~/.aws/config): %w", section, err)
	}
	if ac.Region == "" {
		return aws.Config{}, "", fmt.Errorf("%s: no AWS region: set AWS_REGION or a region in the AWS profile", section)
	}
	if _, err := ac.Credentials.Retrieve(ctx); err != nil {
		return aws.Config{}, "", fmt.Errorf("%s: no AWS credentials: give the process a role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (%w)", section, err)
	}
	return ac, endpoint, nil
}

func sqsClient(ctx context.Context, c config.Config) (*awssqs.Client, error) {
	ac, endpoint, err := awsConfig(ctx, c, "transport.sqs")
	if err != nil {
		return nil, err
	}
	return awssqs.NewFromConfig(ac, func(o *awssqs.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

func dynamoClient(ctx context.Context, c config.Config) (*awsdynamodb.Client, error) {
	ac, endpoint, err := awsConfig(ctx, c, "store.dynamodb")
	if err != nil {
		return nil, err
	}
	return awsdynamodb.NewFromConfig(ac, func(o *awsdynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

func s3Client(ctx context.Context, c config.Config) (*awss3.Client, error) {
	ac, endpoint, err := awsConfig(ctx, c, "results.s3")
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

func snsClient(ctx context.Context, c config.Config) (*awssns.Client, error) {
	ac, endpoint, err := awsConfig(ctx, c, "notify.sns")
	if err != nil {
		return nil, err
	}
	return awssns.NewFromConfig(ac, func(o *awssns.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

func eventBridgeClient(ctx context.Context, c config.Config) (*awseventbridge.Client, error) {
	ac, endpoint, err := awsConfig(ctx, c, "notify.eventbridge")
	if err != nil {
		return nil, err
	}
	return awseventbridge.NewFromConfig(ac, func(o *awseventbridge.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
