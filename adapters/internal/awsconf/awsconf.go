// Package awsconf resolves the AWS SDK configuration an adapter signs its calls with: the
// process's shared configuration when the wiring hands one over (loaded once, with its
// credential chain, for every AWS client of the process), else the SDK's default chain; with
// the adapter's own region and credentials laid over it.
package awsconf

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// ErrNoRegion is returned when neither the options nor the configuration name a region and no
// endpoint override allows the emulator default.
var ErrNoRegion = errors.New("no AWS region")

// DefaultEmulatorRegion signs requests to an endpoint override when nothing names a region.
const DefaultEmulatorRegion = "us-east-1"

// Options says what one adapter adds to the shared configuration.
type Options struct {
	// Base is the process's shared configuration; nil loads the SDK's default chain.
	Base *aws.Config
	// Region and Credentials, when set, replace the configuration's.
	Region      string
	Credentials aws.CredentialsProvider
	// Endpoint is the adapter's endpoint override (an emulator): with one, a configuration
	// without a region signs for DefaultEmulatorRegion instead of failing.
	Endpoint string
}

// Resolve returns the configuration o describes. Base is copied, never changed. An error is
// ErrNoRegion, or the SDK's failure to load its configuration.
func Resolve(ctx context.Context, o Options) (aws.Config, error) {
	var ac aws.Config
	if o.Base != nil {
		ac = o.Base.Copy()
	} else {
		loaded, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, err
		}
		ac = loaded
	}
	if o.Region != "" {
		ac.Region = o.Region
	}
	if o.Credentials != nil {
		ac.Credentials = aws.NewCredentialsCache(o.Credentials)
	}
	if ac.Region == "" {
		if o.Endpoint == "" {
			return aws.Config{}, ErrNoRegion
		}
		ac.Region = DefaultEmulatorRegion
	}
	return ac, nil
}
