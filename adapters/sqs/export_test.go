package sqs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/infleet/infleet/internal/awstest"
)

// NewTestClient returns a client on the SQS emulator at INFLEET_TEST_AWS_ENDPOINT, started by
// .ci/peers/with-aws.sh, or skips the test when it is unset. It serves the package's tests,
// internal and external.
func NewTestClient(t testing.TB) *awssqs.Client {
	t.Helper()
	endpoint := awstest.Endpoint(t)
	return awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}
