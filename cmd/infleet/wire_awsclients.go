package main

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
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
// endpoint override ("" for AWS itself). Credentials and region come from the standard chain.
// Against an endpoint override a missing region defaults to us-east-1; missing credentials become
// a placeholder pair only when the endpoint is an emulator (see usesPlaceholderCredentials), since
// emulators accept any. Everywhere else (AWS itself, a VPC endpoint, a proxy) the standard chain
// must yield credentials, and start-up fails naming it when it does not.
func (c *awsClients) config(ctx context.Context, section string) (aws.Config, string, error) {
	c.once.Do(func() { c.base, c.err = awsconfig.LoadDefaultConfig(ctx) })
	if c.err != nil {
		return aws.Config{}, "", fmt.Errorf("%s: load the AWS configuration (AWS_PROFILE, AWS_REGION, ~/.aws/config): %w", section, c.err)
	}
	ac := c.base.Copy()
	endpoint := config.AWSEndpoint(c.cfg, section)
	if endpoint != "" && ac.Region == "" {
		ac.Region = defaultEmulatorRegion
	}
	if usesPlaceholderCredentials(endpoint, c.cfg.AWSEmulator) {
		ac.Credentials = credentials.NewStaticCredentialsProvider("infleet", "infleet", "")
	}
	if ac.Region == "" {
		return aws.Config{}, "", fmt.Errorf("%s: no AWS region: set AWS_REGION or a region in the AWS profile", section)
	}
	if _, err := ac.Credentials.Retrieve(ctx); err != nil {
		hint := ""
		if endpoint != "" {
			hint = fmt.Sprintf("; if %s is an emulator, set %s=true to sign with placeholder credentials", endpoint, config.EnvAWSEmulator)
		}
		return aws.Config{}, "", fmt.Errorf("%s: no AWS credentials from the SDK's default credential chain "+
			"(environment, AWS_PROFILE and ~/.aws, web identity/IRSA, ECS task role, EC2 instance role): "+
			"give the process a role, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY%s: %w", section, hint, err)
	}
	return ac, endpoint, nil
}

// usesPlaceholderCredentials reports whether clients of endpoint sign with a placeholder pair:
// only for an endpoint override that is an emulator — a loopback address, or any address when
// INFLEET_AWS_EMULATOR says so (emulator) — and only when the environment names no credentials
// (AWS_ACCESS_KEY_ID or AWS_PROFILE), which then win.
func usesPlaceholderCredentials(endpoint string, emulator bool) bool {
	if endpoint == "" || os.Getenv("AWS_ACCESS_KEY_ID") != "" || os.Getenv("AWS_PROFILE") != "" {
		return false
	}
	return emulator || isLoopbackEndpoint(endpoint)
}

// isLoopbackEndpoint reports whether endpoint, a URL, names this machine: localhost (or a name
// under .localhost) or a loopback IP address. Names are not resolved.
func isLoopbackEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
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
