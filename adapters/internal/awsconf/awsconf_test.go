package awsconf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/infleet/infleet/adapters/internal/awsconf"
)

func TestResolveLaysTheAdapterOverTheSharedConfiguration(t *testing.T) {
	ctx := context.Background()
	base := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("base", "s", "")}
	got, err := awsconf.Resolve(ctx, awsconf.Options{Base: &base})
	if err != nil || got.Region != "eu-west-1" {
		t.Fatalf("shared: %+v %v", got.Region, err)
	}
	got, err = awsconf.Resolve(ctx, awsconf.Options{Base: &base, Region: "us-west-2",
		Credentials: credentials.NewStaticCredentialsProvider("own", "s", "")})
	if err != nil || got.Region != "us-west-2" {
		t.Fatalf("own region: %+v %v", got.Region, err)
	}
	creds, err := got.Credentials.Retrieve(ctx)
	if err != nil || creds.AccessKeyID != "own" {
		t.Fatalf("own credentials: %+v %v", creds, err)
	}
	if base.Region != "eu-west-1" {
		t.Fatal("Resolve changed the shared configuration")
	}
}

func TestResolveRegion(t *testing.T) {
	ctx := context.Background()
	empty := aws.Config{}
	if _, err := awsconf.Resolve(ctx, awsconf.Options{Base: &empty}); !errors.Is(err, awsconf.ErrNoRegion) {
		t.Fatalf("no region, no endpoint: %v, want ErrNoRegion", err)
	}
	got, err := awsconf.Resolve(ctx, awsconf.Options{Base: &empty, Endpoint: "http://127.0.0.1:9"})
	if err != nil || got.Region != awsconf.DefaultEmulatorRegion {
		t.Fatalf("endpoint without region: %q %v", got.Region, err)
	}
}
