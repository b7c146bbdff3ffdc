// Package awstest finds the AWS emulators the tests run beside: fauxqs (SQS, SNS, S3), started
// by .ci/peers/with-aws.sh or make test. Only tests import it.
package awstest

import (
	"os"
	"testing"
)

// EndpointVar names the variable that holds fauxqs's address.
const EndpointVar = "INFLEET_TEST_AWS_ENDPOINT"

// Endpoint returns fauxqs's address from EndpointVar, or skips t, saying how to start it,
// when the variable is unset.
func Endpoint(t testing.TB) string {
	t.Helper()
	endpoint := os.Getenv(EndpointVar)
	if endpoint == "" {
		t.Skip(EndpointVar + " is unset: run the tests with .ci/peers/with-aws.sh (or make test) to start fauxqs")
	}
	return endpoint
}
